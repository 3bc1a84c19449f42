"""Our .proto files against the descriptors shipped in tritonclient: every message, field and RPC must match."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc
from tritonclient.grpc import model_config_pb2, service_pb2

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def _ours(tmp_path: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    out = tmp_path / "set.pb"
    well_known = str(resources.files("grpc_tools") / "_proto")
    files = ["inference_server/protocol/grpc_service.proto", "inference_server/protocol/model_config.proto"]
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--descriptor_set_out={out}", *files])
    assert rc == 0
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {Path(f.name).name: f for f in fds.file}


def _theirs(module: object) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)  # type: ignore[attr-defined]
    return proto


def _fields(messages: list[descriptor_pb2.DescriptorProto], prefix: str = "") -> dict[str, tuple[object, ...]]:
    table: dict[str, tuple[object, ...]] = {}
    for message in messages:
        name = f"{prefix}{message.name}"
        table[name] = ("message", message.options.map_entry)
        for field in message.field:
            oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else ""
            table[f"{name}.{field.name}"] = (field.number, field.type, field.label, field.type_name, oneof)
        for enum in message.enum_type:
            for value in enum.value:
                table[f"{name}.{enum.name}.{value.name}"] = (value.number,)
        table.update(_fields(list(message.nested_type), f"{name}."))
    return table


def _table(proto: descriptor_pb2.FileDescriptorProto) -> dict[str, tuple[object, ...]]:
    table = _fields(list(proto.message_type))
    for enum in proto.enum_type:
        for value in enum.value:
            table[f"{enum.name}.{value.name}"] = (value.number,)
    for service in proto.service:
        for method in service.method:
            table[f"{service.name}/{method.name}"] = (
                method.input_type,
                method.output_type,
                method.client_streaming,
                method.server_streaming,
            )
    return table


def test_package_and_every_field_match_tritonclient(tmp_path: Path) -> None:
    ours = _ours(tmp_path)
    for name, module in (("grpc_service.proto", service_pb2), ("model_config.proto", model_config_pb2)):
        theirs = _theirs(module)
        assert ours[name].package == theirs.package == "inference"
        mine, reference = _table(ours[name]), _table(theirs)
        assert sorted(set(reference) - set(mine)) == []
        assert sorted(set(mine) - set(reference)) == []
        assert {k: v for k, v in mine.items() if reference[k] != v} == {}
