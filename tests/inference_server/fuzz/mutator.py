"""A structure-aware mutator of serialized ModelInferRequests, in the manner of libprotobuf-mutator.

libFuzzer's own byte mutations rarely keep a protobuf message parseable, and almost never keep a tensor's shape, its
datatype and its contents in agreement, so they stop at the first size check. This mutator parses the message and
changes it the ways callers get requests wrong: odd shapes (zero, huge, negative, too many dimensions), other
datatypes, raw and typed contents mixed or in the wrong field, values out of range, broken BYTES framing and bad
UTF-8, inputs duplicated, missing, renamed or unknown, parameters, requested outputs. It also rebuilds contents that
fit a mutated shape, so the fuzzer gets past the size checks to validation, the model and the answer. A share of
the mutations stays plain byte mutation of the serialized message (``raw``, libFuzzer's ``Mutate``).

Everything random comes from the seed libFuzzer passes, so a run with a fixed ``-seed`` repeats.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable

from google.protobuf.message import DecodeError

from contract.datatypes import CONTENTS_FIELD, DATATYPES, numpy_dtype
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.spec import ModelSpec

__all__ = ["Mutator", "RawMutate"]

RawMutate = Callable[[bytes, int], bytes]
"""libFuzzer's byte mutation: ``(data, max_size) -> data``."""

# Dimensions worth trying: the edges of every integer type a shape passes through on its way to numpy and onnxruntime.
DIMS = (0, 1, 2, 3, 4, 7, 8, 63, 64, 65, -1, -2, 255, 256, 2**16, 2**31 - 1, 2**31, 2**32, 2**53, 2**62, 2**63 - 1)
DIMS += (-(2**63), -(2**31))
BAD_DATATYPES = ("", "FP8", "fp32", "BF16", "STRING", "BYTES\x00", "INT128")
# Values at the edges of the typed fields and of the types they are narrowed to.
INTS = (0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 65535, 65536, 2**31 - 1, -(2**31))
UINTS = (0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1)
FLOATS = (0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 1e38, 3.5e38, 1e-45, 1e308)
TEXT = (b"", b"a", b"hello", "wörld".encode(), "漢字".encode(), b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x00b")
# Contents are rebuilt only for shapes this small; larger ones are left to the size checks.
MAX_BUILT_ELEMENTS = 512


def _typed_range(datatype: str) -> tuple[int, int]:
    if datatype in ("INT8", "INT16", "INT32"):
        return -(2**31), 2**31 - 1
    if datatype == "INT64":
        return -(2**63), 2**63 - 1
    if datatype in ("UINT8", "UINT16", "UINT32"):
        return 0, 2**32 - 1
    return 0, 2**64 - 1


def _value(datatype: str, rng: random.Random) -> object:
    """A value for ``datatype``'s typed field: mostly in the datatype's range, sometimes only in the field's."""
    if datatype == "BOOL":
        return rng.random() < 0.5
    if datatype in ("FP32", "FP64"):
        return rng.choice(FLOATS) if rng.random() < 0.3 else rng.uniform(-10.0, 10.0)
    if datatype == "BYTES":
        return rng.choice(TEXT)
    if rng.random() < 0.3:
        low, high = _typed_range(datatype)
        pool = INTS if datatype.startswith("INT") else UINTS
        return rng.choice([v for v in pool if low <= v <= high] or [0])
    info = numpy_dtype(datatype)
    bits = info.itemsize * 8
    if datatype.startswith("INT"):
        return rng.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return rng.randint(0, 2**bits - 1)


def _frame(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _raw(datatype: str, count: int, rng: random.Random) -> bytes:
    if datatype == "BYTES":
        return _frame([rng.choice(TEXT) for _ in range(count)])
    if datatype not in DATATYPES:
        return rng.randbytes(count * rng.choice((1, 2, 4, 8)))
    if datatype == "BOOL" and rng.random() < 0.8:
        return bytes(rng.randint(0, 1) for _ in range(count))
    return rng.randbytes(count * numpy_dtype(datatype).itemsize)


def _count(shape: list[int]) -> int | None:
    """Elements of ``shape``, or ``None`` when contents of that size are not worth building."""
    if any(d < 0 for d in shape):
        return None
    count = math.prod(shape)
    return count if count <= MAX_BUILT_ELEMENTS else None


class Mutator:
    """``mutate`` and ``crossover`` for ``atheris.Setup``, building requests for the models of ``specs``."""

    def __init__(self, specs: list[ModelSpec], raw: RawMutate) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._raw = raw
        self._mutations: tuple[Callable[[pb.ModelInferRequest, random.Random], None], ...] = (
            self._model,
            self._datatype,
            self._dimension,
            self._rank,
            self._refit,
            self._raw_buffer,
            self._bytes_framing,
            self._inputs,
            self._mixed_contents,
            self._parameters,
            self._outputs,
            self._switch_encoding,
        )

    def mutate(self, data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.2:
            return self._raw(data, max_size)
        try:
            message = pb.ModelInferRequest.FromString(data)
        except DecodeError:
            message = self.valid(rng)
        if rng.random() < 0.05:
            message = self.valid(rng)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            rng.choice(self._mutations)(message, rng)
        mutated = message.SerializeToString()
        return mutated if len(mutated) <= max_size else self._raw(data, max_size)

    def crossover(self, first: bytes, second: bytes, max_size: int, seed: int) -> bytes:
        """The first request with inputs (and their buffers) taken from the second."""
        rng = random.Random(seed)
        try:
            one = pb.ModelInferRequest.FromString(first)
            two = pb.ModelInferRequest.FromString(second)
        except DecodeError:
            return first[: max_size // 2] + second[: max_size - min(len(first), max_size // 2)]
        if two.inputs and rng.random() < 0.5:
            position = rng.randrange(len(two.inputs))
            one.inputs.add().CopyFrom(two.inputs[position])
            if position < len(two.raw_input_contents):
                one.raw_input_contents.append(two.raw_input_contents[position])
        else:
            del one.inputs[:]
            one.inputs.extend(two.inputs)
            one.ClearField("raw_input_contents")
            one.raw_input_contents.extend(two.raw_input_contents)
        crossed = one.SerializeToString()
        return crossed if len(crossed) <= max_size else first

    def valid(self, rng: random.Random, spec: ModelSpec | None = None) -> pb.ModelInferRequest:
        """A well-formed request for ``spec`` (a random model by default), raw or typed, which the model answers
        unless a typed value of a narrow integer type falls outside its range (``_value`` tries those edges)."""
        spec = spec or self._specs[rng.choice(sorted(self._specs))]
        request = pb.ModelInferRequest(model_name=spec.name, id=rng.choice(("", "7", "request-1")))
        rows = rng.choice((1, 1, 2, 3, spec.max_batch_size)) if spec.batched else 0
        raw = rng.random() < 0.6 or any(s.datatype not in CONTENTS_FIELD for s in spec.inputs)
        for signature in spec.inputs:
            dims = [d if d >= 0 else rng.randint(0, 3) for d in signature.shape]
            shape = [rows, *dims] if spec.batched else dims
            tensor = request.inputs.add(name=signature.name, datatype=signature.datatype, shape=shape)
            self._fill(request, len(request.inputs) - 1, raw, rng, tensor)
        if rng.random() < 0.3:
            for output in rng.sample(spec.outputs, rng.randint(1, len(spec.outputs))):
                request.outputs.add(name=output.name)
        if rng.random() < 0.2:
            request.parameters["binary_data_output"].bool_param = rng.random() < 0.5
        return request

    def _fill(
        self,
        request: pb.ModelInferRequest,
        position: int,
        raw: bool,
        rng: random.Random,
        tensor: pb.ModelInferRequest.InferInputTensor,
    ) -> None:
        """Contents for input ``position`` that fit its shape and datatype, raw or typed."""
        count = _count(list(tensor.shape))
        if count is None:
            count = rng.randint(0, 8)
        if raw:
            while len(request.raw_input_contents) <= position:
                request.raw_input_contents.append(b"")
            request.raw_input_contents[position] = _raw(tensor.datatype, count, rng)
            tensor.ClearField("contents")
            return
        tensor.ClearField("contents")
        field = CONTENTS_FIELD.get(tensor.datatype, "fp32_contents")
        values = getattr(tensor.contents, field)
        datatype = tensor.datatype if tensor.datatype in CONTENTS_FIELD else "FP32"
        values.extend(_value(datatype, rng) for _ in range(count))

    def _pick(
        self, message: pb.ModelInferRequest, rng: random.Random
    ) -> tuple[int, pb.ModelInferRequest.InferInputTensor] | None:
        if not message.inputs:
            return None
        position = rng.randrange(len(message.inputs))
        return position, message.inputs[position]

    # --- mutations ----------------------------------------------------------------------------------------------

    def _model(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        names = list(self._specs)
        message.model_name = rng.choice(names) if rng.random() < 0.9 else rng.choice(("", "nope", f"{names[0]} "))
        if rng.random() < 0.2:
            message.model_version = rng.choice(("", "1", "2", "-1", "latest"))

    def _datatype(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        picked = self._pick(message, rng)
        if picked is not None:
            picked[1].datatype = rng.choice(DATATYPES) if rng.random() < 0.8 else rng.choice(BAD_DATATYPES)

    def _dimension(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        picked = self._pick(message, rng)
        if picked is None:
            return
        shape = picked[1].shape
        if shape:
            shape[rng.randrange(len(shape))] = rng.choice(DIMS)
        else:
            shape.append(rng.choice(DIMS))

    def _rank(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        picked = self._pick(message, rng)
        if picked is None:
            return
        shape = picked[1].shape
        choice = rng.randrange(5)
        if choice == 0:
            del shape[:]
        elif choice == 1 and shape:
            del shape[rng.randrange(len(shape))]
        elif choice == 2:
            shape.insert(rng.randint(0, len(shape)), rng.choice((0, 1, 2)))
        else:
            # Around numpy's limit of 64 dimensions, with a zero or a huge dimension somewhere.
            rank = rng.choice((32, 63, 64, 65, 100))
            dims = [1] * rank
            dims[rng.randrange(rank)] = rng.choice((0, 1, 2, 2**62))
            shape[:] = dims

    def _refit(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        """Rebuild an input's contents for its (perhaps mutated) shape and datatype."""
        picked = self._pick(message, rng)
        if picked is not None:
            self._fill(message, picked[0], bool(message.raw_input_contents), rng, picked[1])

    def _raw_buffer(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        buffers = message.raw_input_contents
        if not buffers:
            buffers.append(rng.randbytes(rng.choice((0, 1, 4, 12))))
            return
        position = rng.randrange(len(buffers))
        buffer = buffers[position]
        choice = rng.randrange(4)
        if choice == 0:
            buffers[position] = buffer[: rng.randint(0, len(buffer))]
        elif choice == 1:
            buffers[position] = buffer + rng.randbytes(rng.choice((1, 3, 4, 8)))
        else:
            buffers[position] = self._raw(buffer, len(buffer) + 16)

    def _bytes_framing(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        """A BYTES buffer framed wrong, or right with bad UTF-8, for the kernel and the small-count path alike."""
        picked = self._pick(message, rng)
        if picked is None:
            return
        position, tensor = picked
        tensor.datatype = "BYTES"
        count = rng.choice((1, 3, 11, 12, 13, 40))
        items = [rng.choice(TEXT) for _ in range(count)]
        buffer = _frame(items)
        choice = rng.randrange(6)
        if choice == 0:  # a length running past the end
            cut = rng.randrange(count)
            buffer = _frame(items[:cut]) + struct.pack("<I", rng.choice((2**31, 2**32 - 1, 5000))) + b"abc"
        elif choice == 1:  # a truncated prefix
            buffer += b"\x01\x00"
        elif choice == 2:  # trailing bytes
            buffer += b"\x00" * rng.randint(1, 9)
        elif choice == 3:  # one element fewer than the shape says
            count += 1
        tensor.shape[:] = [count] if rng.random() < 0.5 else [1, count]
        if message.raw_input_contents or rng.random() < 0.7:
            while len(message.raw_input_contents) <= position:
                message.raw_input_contents.append(b"")
            message.raw_input_contents[position] = buffer
            tensor.ClearField("contents")
        else:
            tensor.contents.ClearField("bytes_contents")
            tensor.contents.bytes_contents.extend(items[: count if choice != 3 else count - 1])

    def _inputs(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        """Inputs duplicated, dropped, renamed, reordered, or buffers out of step with them."""
        choice = rng.randrange(6)
        inputs, buffers = message.inputs, message.raw_input_contents
        if choice == 0 and inputs:  # duplicate
            position = rng.randrange(len(inputs))
            inputs.add().CopyFrom(inputs[position])
            if position < len(buffers):
                buffers.append(buffers[position])
        elif choice == 1 and inputs:  # drop, with its buffer
            position = rng.randrange(len(inputs))
            del inputs[position]
            if position < len(buffers):
                del buffers[position]
        elif choice == 2 and inputs:  # rename
            names = [s.name for spec in self._specs.values() for s in spec.inputs]
            inputs[rng.randrange(len(inputs))].name = rng.choice([*names, "", "z", "x\x00"])
        elif choice == 3 and len(inputs) > 1:  # reorder
            first, second = inputs[0], inputs[len(inputs) - 1]
            first_copy = pb.ModelInferRequest.InferInputTensor()
            first_copy.CopyFrom(first)
            first.CopyFrom(second)
            second.CopyFrom(first_copy)
        elif choice == 4:  # one buffer more or fewer than inputs
            if buffers and rng.random() < 0.5:
                del buffers[-1]
            else:
                buffers.append(rng.randbytes(rng.choice((0, 4, 12))))
        else:  # another model's valid inputs under this model's name
            donor = self.valid(rng)
            del inputs[:]
            inputs.extend(donor.inputs)
            message.ClearField("raw_input_contents")
            buffers.extend(donor.raw_input_contents)

    def _mixed_contents(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        """Typed values where they do not belong: beside raw contents, in another field, or in two fields."""
        picked = self._pick(message, rng)
        if picked is None:
            return
        contents = picked[1].contents
        field = rng.choice([f.name for f in pb.InferTensorContents.DESCRIPTOR.fields])
        datatype = next((t for t, f in CONTENTS_FIELD.items() if f == field), "FP32")
        getattr(contents, field).extend(_value(datatype, rng) for _ in range(rng.choice((1, 3, 6))))

    def _parameters(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        target = message.parameters
        if message.inputs and rng.random() < 0.3:
            target = message.inputs[rng.randrange(len(message.inputs))].parameters
        key = rng.choice(("binary_data_output", "binary_data", "classification", "sequence_id", "", "priority"))
        parameter = target[key]
        choice = rng.randrange(5)
        if choice == 0:
            parameter.bool_param = rng.random() < 0.5
        elif choice == 1:
            parameter.int64_param = rng.choice((0, 1, -1, 2**63 - 1))
        elif choice == 2:
            parameter.string_param = rng.choice(("true", "", "\x00"))
        elif choice == 3:
            parameter.double_param = rng.choice(FLOATS)
        else:
            parameter.uint64_param = rng.choice((0, 1, 2**64 - 1))

    def _outputs(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        spec = self._specs.get(message.model_name)
        names = [o.name for o in spec.outputs] if spec else ["y"]
        choice = rng.randrange(4)
        if choice == 0:
            message.outputs.add(name=rng.choice([*names, "", "nope"]))
        elif choice == 1:  # the same output asked for many times
            name = rng.choice(names)
            for _ in range(rng.choice((2, 16, 256))):
                message.outputs.add(name=name)
        elif choice == 2 and message.outputs:
            del message.outputs[rng.randrange(len(message.outputs))]
        else:
            message.ClearField("outputs")

    def _switch_encoding(self, message: pb.ModelInferRequest, rng: random.Random) -> None:
        """All inputs from raw to typed contents or back, with contents rebuilt for their shapes."""
        raw = not message.raw_input_contents
        message.ClearField("raw_input_contents")
        for position, tensor in enumerate(message.inputs):
            self._fill(message, position, raw, rng, tensor)
