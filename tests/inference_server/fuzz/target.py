"""The fuzz target of request decoding and validation: what the server does with the bytes of one ModelInfer call.

``Harness.check(data)`` parses ``data`` as a ``ModelInferRequest`` (bytes protobuf cannot parse never reach Conduit:
gRPC refuses them first), decodes it as the servicer does, validates the inputs against the model it names and selects
the requested outputs as the data plane does, then runs the model and encodes the answer. The models are real ONNX
graphs loaded by ``OnnxModel``: an identity model of every datatype (as the shared test repository has), a two-input
model with a small ``max_batch_size``, a model with variable dimensions and no batching, a batched BYTES model with a
variable dimension, and a fixed-shape model that does not batch.

A ``ConduitError`` with a client-error code is the one acceptable failure. Anything else is a finding: another
exception (the server would answer INTERNAL and log a traceback), a ``ConduitError`` with another code, or, while
``tracemalloc`` traces, a request that made the server allocate far more than its message holds.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from contract.datatypes import DATATYPES
from contract.errors import ConduitError, ErrorCode
from inference_server.config import ModelConfig
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.runtime import OnnxModel
from inference_server.spec import ModelSpec
from inference_server.transport.converters import decode_infer_request, encode_infer_response
from inference_server.types import InferResponse, Tensor
from inference_server.validation import select_outputs, validate_inputs
from tests.conftest import ONNX_TYPES

__all__ = ["CLIENT_ERRORS", "Finding", "Harness", "memory_allowance"]

# Codes that blame the caller. INTERNAL (or anything else) for a request that only carries bytes is a finding.
CLIENT_ERRORS = frozenset(
    {ErrorCode.INVALID_ARGUMENT, ErrorCode.NOT_FOUND, ErrorCode.FAILED_PRECONDITION, ErrorCode.RESOURCE_EXHAUSTED}
)
# What a request may make the server allocate, past the parsed message: BYTES elements become Python objects (about
# 50 times their size on the wire for empty or two-byte elements, from decoding to the encoded answer), the answer
# holds a copy of the data, and any request costs a couple of KiB. Anything sized by a declared shape, or by a count
# the message repeats, instead of by the data the message holds goes far past this.
MEMORY_PER_MESSAGE_BYTE = 64
MEMORY_SLACK = 16 * 1024

Dims = tuple[int | str, ...]
# name -> (inputs as (name, datatype, ONNX dims), config.json's max_batch_size or None for the default); each input
# ``n`` is answered unchanged as ``y`` (one input) or ``y<n>`` (several).
MODELS: dict[str, tuple[tuple[tuple[str, str, Dims], ...], int | None]] = {
    **{f"identity_{datatype.lower()}": ((("x", datatype, ("batch", 3)),), None) for datatype in DATATYPES},
    "pair": ((("a", "FP32", ("batch", 3)), ("b", "INT64", ("batch", 2))), 4),
    "ragged": ((("x", "FP32", ("n", "m")),), 0),
    "words": ((("x", "BYTES", ("batch", "n")),), 8),
    "fixed": ((("x", "INT32", (2, 3)),), None),
}


class Finding(Exception):
    """What the fuzzer reports besides an unexpected exception: a wrong error code or too much memory."""


def memory_allowance(message_bytes: int) -> int:
    """The most a request of ``message_bytes`` may allocate while it is decoded, validated, run and answered."""
    return MEMORY_PER_MESSAGE_BYTE * message_bytes + MEMORY_SLACK


def _graph(name: str, inputs: tuple[tuple[str, str, Dims], ...]) -> bytes:
    outputs = ["y"] if len(inputs) == 1 else [f"y{input_name}" for input_name, _, _ in inputs]
    graph = helper.make_graph(
        [helper.make_node("Identity", [n], [out]) for (n, _, _), out in zip(inputs, outputs, strict=True)],
        name,
        [helper.make_tensor_value_info(n, ONNX_TYPES[t], list(dims)) for n, t, dims in inputs],
        [
            helper.make_tensor_value_info(out, ONNX_TYPES[t], list(dims))
            for (_, t, dims), out in zip(inputs, outputs, strict=True)
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class Harness:
    """The fuzz target over the models of ``MODELS``, loaded once."""

    def __init__(self) -> None:
        self.models: dict[str, OnnxModel] = {}
        with tempfile.TemporaryDirectory(prefix="conduit-fuzz-") as folder:
            for name, (inputs, max_batch_size) in MODELS.items():
                path = Path(folder) / f"{name}.onnx"
                path.write_bytes(_graph(name, inputs))
                self.models[name] = OnnxModel(name, "1", path, ModelConfig(max_batch_size=max_batch_size))

    @property
    def specs(self) -> list[ModelSpec]:
        return [model.spec for model in self.models.values()]

    def check(self, data: bytes) -> str:
        """Serve ``data`` as the body of one ModelInfer call.

        Returns:
            How it ended: ``"unparsable"`` (gRPC would have refused it), ``"answered"``, or the name of the code of
            the ``ConduitError`` that refused it.

        Raises:
            Finding: for a ``ConduitError`` whose code does not blame the caller, or, while ``tracemalloc`` traces,
                for more memory than ``memory_allowance`` of the message's size.
            Exception: whatever else the server's code raised.
        """
        try:
            message = pb.ModelInferRequest.FromString(data)
        except DecodeError:
            return "unparsable"
        tracing = tracemalloc.is_tracing()
        if tracing:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
        outcome = "answered"
        try:
            self._serve(message)
        except ConduitError as exc:
            if exc.code not in CLIENT_ERRORS:
                raise Finding(f"answered {exc.code.name} ({exc.message})") from exc
            outcome = exc.code.name
        if tracing:
            used = tracemalloc.get_traced_memory()[1] - before
            allowed = memory_allowance(len(data))
            if used > allowed:
                raise Finding(f"a {len(data)}-byte request allocated {used} bytes (at most {allowed})")
        return outcome

    def _serve(self, message: pb.ModelInferRequest) -> None:
        request = decode_infer_request(message)
        model = self.models.get(request.model)
        if model is None:  # decoded first, as the servicer does
            raise ConduitError(ErrorCode.NOT_FOUND, f"unknown model {request.model!r}")
        spec = model.spec
        feeds, _ = validate_inputs(spec, request.inputs)
        wanted = select_outputs(spec, request.outputs)
        outputs = model.run(feeds)
        answer = [Tensor(spec.outputs[i].name, spec.outputs[i].datatype, outputs[i]) for i in wanted]
        encode_infer_response(InferResponse(spec.name, spec.version, request.id, answer, request.raw_output))
