"""What a message holds in memory, cheaply: protobuf's ByteSize serializes the whole message to count it."""

from __future__ import annotations

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


def request_bytes(request: pb.ModelInferRequest) -> int:
    """The tensor bytes ``request`` carries (raw contents exactly, typed contents at 8 bytes a value)."""
    total = 0
    for buffer in request.raw_input_contents:
        total += len(buffer)
    if not total:
        for tensor in request.inputs:
            if tensor.HasField("contents"):
                total += _typed(tensor.contents)
    return total


def response_bytes(response: pb.ModelInferResponse) -> int:
    """The tensor bytes ``response`` carries, counted as ``request_bytes`` counts a request's."""
    total = 0
    for buffer in response.raw_output_contents:
        total += len(buffer)
    if not total:
        for tensor in response.outputs:
            if tensor.HasField("contents"):
                total += _typed(tensor.contents)
    return total
