"""A decoded request against the model it names: its inputs' names, datatypes and shapes, and the outputs it asks for.

The data plane runs both checks before a request joins a batch, so a bad request can never fail its neighbours; the
fuzz tests of request decoding run them the same way.
"""

from __future__ import annotations

import numpy as np

from contract.errors import ConduitError, ErrorCode
from inference_server.spec import ModelSpec
from inference_server.types import Tensor

__all__ = ["select_outputs", "validate_inputs"]


def validate_inputs(spec: ModelSpec, tensors: list[Tensor]) -> tuple[dict[str, np.ndarray], int]:
    """Check names, datatypes and shapes against the model; return the feeds and the number of rows.

    Raises:
        ConduitError: INVALID_ARGUMENT for missing, unexpected or duplicate inputs, wrong datatypes and shapes, a
            missing batch dimension, inputs disagreeing on the batch size, and a batch above ``max_batch_size`` of
            rows that hold no values. Any other batch above ``max_batch_size`` is valid: the batcher splits it.
    """
    by_name = {tensor.name: tensor for tensor in tensors}
    # Almost every request names exactly the model's inputs: only otherwise find out what is wrong.
    if len(tensors) != len(by_name) or len(by_name) != len(spec.inputs):
        _check_names(spec, tensors, by_name)
    feeds: dict[str, np.ndarray] = {}
    rows = 1
    for position, input_spec in enumerate(spec.inputs):
        found = by_name.get(input_spec.name)
        if found is None:
            _check_names(spec, tensors, by_name)  # a misnamed input is reported as unexpected, not just missing
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"missing input {input_spec.name!r} for model {spec.name!r}")
        if found.datatype != input_spec.datatype:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"input {found.name!r} has datatype {found.datatype}, model {spec.name!r} expects "
                f"{input_spec.datatype}",
            )
        shape = found.data.shape
        dims = shape
        if spec.batched:
            if len(shape) < 1 or shape[0] < 1:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"input {found.name!r} needs a batch dimension of at least 1"
                )
            if position == 0:
                rows = shape[0]
            elif shape[0] != rows:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"inputs disagree on the batch size: {spec.inputs[0].name!r} has {rows}, "
                    f"{found.name!r} has {shape[0]}",
                )
            if rows > spec.max_batch_size and not found.data.size:
                # The batcher splits a batch above max_batch_size; rows holding no values cost no bytes, so nothing
                # would bound how many chunks it would run.
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"batch size {rows} exceeds the maximum {spec.max_batch_size} of model {spec.name!r} and input "
                    f"{found.name!r} holds no values to split",
                )
            dims = shape[1:]
        # Most requests match the declared shape exactly: only a variable (-1) dimension needs the element-wise check.
        if dims != input_spec.shape and (
            len(dims) != len(input_spec.shape)
            or any(want not in (-1, got) for want, got in zip(input_spec.shape, dims, strict=True))
        ):
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"input {found.name!r} has shape {list(shape)}, model {spec.name!r} expects "
                f"{list(spec.shape_of(input_spec))}",
            )
        # BYTES arrive as text already: the transport decoded the UTF-8 once, as the model's string inputs need.
        feeds[input_spec.name] = found.data
    return feeds, rows


def _check_names(spec: ModelSpec, tensors: list[Tensor], by_name: dict[str, Tensor]) -> None:
    """Raise the precise error for duplicate or unexpected inputs (missing ones are reported by ``validate_inputs``)."""
    seen: set[str] = set()
    for tensor in tensors:
        if tensor.name in seen:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"input {tensor.name!r} given twice")
        seen.add(tensor.name)
    expected = {s.name for s in spec.inputs}
    unknown = sorted(set(by_name) - expected)
    if unknown:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"unexpected input {', '.join(map(repr, unknown))} for model {spec.name!r}; it takes {sorted(expected)}",
        )


def select_outputs(spec: ModelSpec, requested: list[str] | None) -> list[int]:
    """Indices into ``spec.outputs`` of the outputs to answer with, in the order they were asked for.

    Raises:
        ConduitError: INVALID_ARGUMENT for an output the model does not have, or one asked for twice (each answer
            would hold another copy of it: a short request could ask for gigabytes).
    """
    if not requested:
        return list(range(len(spec.outputs)))
    index = spec.output_index
    wanted: list[int] = []
    for name in requested:
        position = index.get(name)
        if position is None:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"unknown output {name!r} for model {spec.name!r}; it has {sorted(index)}",
            )
        # The loop stops at the first repeat, so ``wanted`` never grows past the model's handful of outputs.
        if position in wanted:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"output {name!r} is requested more than once")
        wanted.append(position)
    return wanted
