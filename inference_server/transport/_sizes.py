"""What a message holds in memory, cheaply: protobuf's ByteSize serializes the whole message to count it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from inference_server.protocol import grpc_service_pb2 as pb

__all__ = ["request_bytes", "response_bytes"]

# Typed values are counted at the widest width a field holds (int64, uint64, double, or a bytes pointer).
_TYPED_VALUE_BYTES = 8
_CONTENTS_FIELDS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)


def _typed(contents: pb.InferTensorContents) -> int:
    total = 0
    for field in _CONTENTS_FIELDS:
        values = getattr(contents, field)
        if values:
            total += len(values) * _TYPED_VALUE_BYTES
            if field == "bytes_contents":
                total += sum(len(value) for value in values)
    return total


def _message_bytes(
    raw: Sequence[bytes],
    tensors: Iterable[pb.ModelInferRequest.InferInputTensor | pb.ModelInferResponse.InferOutputTensor],
) -> int:
    total = 0
    for buffer in raw:
        total += len(buffer)
    if not total:
        for tensor in tensors:
            if tensor.HasField("contents"):
                total += _typed(tensor.contents)
    return total


def request_bytes(request: pb.ModelInferRequest) -> int:
    """The tensor bytes ``request`` carries (raw contents exactly, typed contents at 8 bytes a value)."""
    return _message_bytes(request.raw_input_contents, request.inputs)


def response_bytes(response: pb.ModelInferResponse) -> int:
    """The tensor bytes ``response`` carries, counted as ``request_bytes`` counts a request's."""
    return _message_bytes(response.raw_output_contents, response.outputs)
