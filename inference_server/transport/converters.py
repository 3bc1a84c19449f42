"""One converter per message: protobuf <-> data-plane types. No logic beyond the wire format lives here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from contract.datatypes import CONTENTS_FIELD, numpy_dtype
from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode
from inference_server.kernels import cast_checked, decode_bytes, encode_bytes
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import model_config_pb2 as mc
from inference_server.spec import ModelSpec
from inference_server.stats import Duration, ModelStats
from inference_server.types import IndexEntry, InferRequest, InferResponse, Tensor

__all__ = [
    "decode_infer_request",
    "encode_infer_response",
    "model_config",
    "model_metadata",
    "model_statistics",
    "repository_index",
]

# Typed fields wider than the datatype: values are range-checked when narrowed.
_NARROWED = {"INT8", "INT16", "UINT8", "UINT16"}
_CONFIG_TYPE: dict[str, mc.DataType] = {
    "BOOL": mc.TYPE_BOOL,
    "UINT8": mc.TYPE_UINT8,
    "UINT16": mc.TYPE_UINT16,
    "UINT32": mc.TYPE_UINT32,
    "UINT64": mc.TYPE_UINT64,
    "INT8": mc.TYPE_INT8,
    "INT16": mc.TYPE_INT16,
    "INT32": mc.TYPE_INT32,
    "INT64": mc.TYPE_INT64,
    "FP16": mc.TYPE_FP16,
    "FP32": mc.TYPE_FP32,
    "FP64": mc.TYPE_FP64,
    "BYTES": mc.TYPE_STRING,
}
# Request-level parameter, named as in Triton's HTTP protocol, that asks for typed contents in the response.
BINARY_OUTPUT_PARAMETER = "binary_data_output"
# The most dimensions a tensor can have: numpy's limit (NPY_MAXDIMS, 64 since numpy 2.0).
MAX_RANK = 64
# numpy sizes an array as the product of its non-zero dimensions and its element size (8 bytes at most, object
# pointers included) in a signed 64-bit integer, even when another dimension is zero.
_MAX_ELEMENTS = int(np.iinfo(np.intp).max) // 8


def _shape(name: str, dims: Iterable[int]) -> tuple[tuple[int, ...], int]:
    shape = tuple(dims)
    # The common shape costs one comparison more than its product: only an odd one is looked at closely.
    if len(shape) > MAX_RANK or (shape and min(shape) < 1):
        _check_odd_shape(name, shape)
    return shape, math.prod(shape)


def _check_odd_shape(name: str, shape: tuple[int, ...]) -> None:
    """Refuse a shape no tensor can have: more than ``MAX_RANK`` dimensions, a negative one, or an empty tensor whose
    other dimensions multiply past what numpy can size (a non-empty one that large fails the size checks)."""
    if len(shape) > MAX_RANK:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"input {name!r} has {len(shape)} dimensions; at most {MAX_RANK} are supported"
        )
    if min(shape) < 0:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"input {name!r} has a negative dimension in shape {list(shape)}"
        )
    if math.prod(d for d in shape if d) > _MAX_ELEMENTS:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"input {name!r} has shape {list(shape)}: its non-zero dimensions multiply past the {_MAX_ELEMENTS} "
            "elements a tensor can index",
        )


def _text(name: str, values: list[bytes]) -> np.ndarray:
    """BYTES as the text ONNX string tensors hold: UTF-8 decoded here, once, so invalid bytes fail this request and
    never a batch it would have joined."""
    text = np.empty(len(values), dtype=object)
    try:
        text[:] = [value.decode("utf-8") for value in values]
    except UnicodeDecodeError:
        # Find the culprit only on failure, so the common path stays one comprehension.
        for i, value in enumerate(values):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"input {name!r} element {i} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                    "the model's string inputs hold text",
                ) from None
        raise
    return text


def _decode_raw(name: str, datatype: str, shape: tuple[int, ...], count: int, buffer: bytes) -> np.ndarray:
    if datatype == "BYTES":
        return _text(name, decode_bytes(buffer, count).tolist()).reshape(shape)
    dtype = numpy_dtype(datatype)
    if len(buffer) != count * dtype.itemsize:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"input {name!r}: raw contents hold {len(buffer)} bytes, shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize}",
        )
    array: np.ndarray = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    return array


def _decode_typed(
    name: str, datatype: str, shape: tuple[int, ...], count: int, contents: pb.InferTensorContents
) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        numpy_dtype(datatype)  # unknown datatypes get their own message
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"input {name!r}: {datatype} must be sent in raw contents")
    for other, _ in contents.ListFields():
        if other.name != field:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT, f"input {name!r} of type {datatype} has values in {other.name}, not {field}"
            )
    values = getattr(contents, field)
    if len(values) != count:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"input {name!r}: {len(values)} values in {field}, shape {list(shape)} needs {count}",
        )
    if datatype == "BYTES":
        return _text(name, list(values)).reshape(shape)
    if datatype in _NARROWED:
        wide = np.array(values, dtype=np.int64 if datatype.startswith("INT") else np.uint64)
        return cast_checked(wide, numpy_dtype(datatype)).reshape(shape)
    typed: np.ndarray = np.array(values, dtype=numpy_dtype(datatype)).reshape(shape)
    return typed


def decode_infer_request(message: pb.ModelInferRequest, timeout_s: float | None = None) -> InferRequest:
    """Decode a ModelInferRequest into tensors, checking that the contents agree with each declared shape.

    Raises:
        ConduitError: INVALID_ARGUMENT for unknown datatypes, shapes no tensor can have (a negative dimension, more
            than ``MAX_RANK``, an empty tensor whose other dimensions multiply past what an array can index), size
            mismatches, raw and typed contents mixed in one request, and a ``binary_data_output`` parameter that is
            not a bool.
    """
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"raw_input_contents has {len(raw)} buffers for {len(message.inputs)} inputs",
        )
    tensors = []
    for position, tensor in enumerate(message.inputs):
        name, datatype = tensor.name, tensor.datatype
        shape, count = _shape(name, tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"input {name!r} has typed contents in a request with raw_input_contents; use one or the other",
                )
            data = _decode_raw(name, datatype, shape, count, raw[position])
        else:
            data = _decode_typed(name, datatype, shape, count, tensor.contents)
        tensors.append(Tensor(name, datatype, data))
    # Parameters and requested outputs are usually absent: skip building them on the hot path.
    return InferRequest(
        model=message.model_name,
        version=message.model_version,
        id=message.id,
        inputs=tensors,
        outputs=[o.name for o in message.outputs] if message.outputs else None,
        timeout_s=timeout_s,
        raw_output=_raw_output(message.parameters) if message.parameters else True,
    )


def _raw_output(parameters: Mapping[str, pb.InferParameter]) -> bool:
    binary = parameters.get(BINARY_OUTPUT_PARAMETER)
    if binary is None:
        return True
    # Any other kind of value would read as false and silently answer the opposite of what a caller who sent 1 or
    # "true" meant.
    kind = binary.WhichOneof("parameter_choice")
    if kind != "bool_param":
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"parameter {BINARY_OUTPUT_PARAMETER!r} takes a bool_param, not {kind or 'an empty value'}",
        )
    return binary.bool_param


def _raw_bytes(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return encode_bytes(tensor.data)
    raw: bytes = np.ascontiguousarray(tensor.data, dtype=numpy_dtype(tensor.datatype)).tobytes()
    return raw


def _typed(tensor: Tensor) -> pb.InferTensorContents:
    field = CONTENTS_FIELD[tensor.datatype]
    flat = tensor.data.reshape(-1)
    if tensor.datatype == "BYTES":
        values: list[Any] = [v if isinstance(v, bytes) else str(v).encode() for v in flat]
    else:
        values = flat.tolist()
    contents = pb.InferTensorContents()
    getattr(contents, field).extend(values)
    return contents


def encode_infer_response(response: InferResponse) -> pb.ModelInferResponse:
    """Raw contents unless the request asked for typed ones (FP16, which has no typed field, forces raw)."""
    raw = response.raw_output or any(t.datatype not in CONTENTS_FIELD for t in response.outputs)
    message = pb.ModelInferResponse(model_name=response.model, model_version=response.version, id=response.id)
    outputs = message.outputs
    if raw:
        for tensor in response.outputs:
            outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.data.shape)
        message.raw_output_contents.extend([_raw_bytes(tensor) for tensor in response.outputs])
    else:
        for tensor in response.outputs:
            outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.data.shape, contents=_typed(tensor))
    return message


def _tensor_metadata(spec: ModelSpec, tensor: TensorSignature) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor.name, datatype=tensor.datatype, shape=spec.shape_of(tensor)
    )


def model_metadata(spec: ModelSpec, versions: list[str]) -> pb.ModelMetadataResponse:
    return pb.ModelMetadataResponse(
        name=spec.name,
        versions=versions,
        platform=spec.platform,
        inputs=[_tensor_metadata(spec, t) for t in spec.inputs],
        outputs=[_tensor_metadata(spec, t) for t in spec.outputs],
    )


def _model_output(spec: ModelSpec, tensor: TensorSignature) -> mc.ModelOutput:
    output = mc.ModelOutput(name=tensor.name, data_type=_CONFIG_TYPE[tensor.datatype], dims=tensor.shape)
    if spec.batched and not tensor.shape:
        # A batched output of shape [N] is written as Triton does: dims [1], reshaped to no dimensions.
        output.dims[:] = [1]
        output.reshape.SetInParent()
    return output


def model_config(spec: ModelSpec) -> pb.ModelConfigResponse:
    """The model's configuration in Triton's schema (what perf_analyzer and tritonclient read)."""
    config = mc.ModelConfig(
        name=spec.name,
        platform=spec.platform,
        backend="onnxruntime",
        max_batch_size=spec.max_batch_size,
        input=[mc.ModelInput(name=t.name, data_type=_CONFIG_TYPE[t.datatype], dims=t.shape) for t in spec.inputs],
        output=[_model_output(spec, t) for t in spec.outputs],
        version_policy=mc.ModelVersionPolicy(all=mc.ModelVersionPolicy.All()),
        instance_group=[mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)],
    )
    if spec.batched:
        config.dynamic_batching.CopyFrom(
            mc.ModelDynamicBatching(
                preferred_batch_size=spec.config.preferred_batch_sizes,
                max_queue_delay_microseconds=spec.config.max_queue_delay_us,
                default_queue_policy=mc.ModelQueuePolicy(max_queue_size=spec.config.max_queue_size),
            )
        )
    return pb.ModelConfigResponse(config=config)


def _duration(duration: Duration) -> pb.StatisticDuration:
    return pb.StatisticDuration(count=duration.count, ns=duration.ns)


def model_statistics(entries: list[tuple[ModelSpec, ModelStats]]) -> pb.ModelStatisticsResponse:
    return pb.ModelStatisticsResponse(
        model_stats=[
            pb.ModelStatistics(
                name=spec.name,
                version=spec.version,
                last_inference=stats.last_inference_ms,
                inference_count=stats.inference_count,
                execution_count=stats.execution_count,
                inference_stats=pb.InferStatistics(
                    success=_duration(stats.success),
                    fail=_duration(stats.fail),
                    queue=_duration(stats.queue),
                    compute_input=_duration(stats.compute_input),
                    compute_infer=_duration(stats.compute_infer),
                    compute_output=_duration(stats.compute_output),
                ),
                batch_stats=[
                    pb.InferBatchStatistics(
                        batch_size=size,
                        compute_input=_duration(batch.compute_input),
                        compute_infer=_duration(batch.compute_infer),
                        compute_output=_duration(batch.compute_output),
                    )
                    for size, batch in sorted(stats.batch_stats.items())
                ],
            )
            for spec, stats in entries
        ]
    )


def repository_index(entries: list[IndexEntry]) -> pb.RepositoryIndexResponse:
    return pb.RepositoryIndexResponse(
        models=[
            pb.RepositoryIndexResponse.ModelIndex(name=e.name, version=e.version, state=e.state, reason=e.reason)
            for e in entries
        ]
    )
