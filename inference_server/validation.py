"""A decoded request against the model it names: its inputs' names, datatypes and shapes, and the outputs it asks for.

The data plane runs both checks before a request joins a batch, so a bad request can never fail its neighbours; the
fuzz tests of request decoding run them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from contract.errors import ConduitError, ErrorCode
from inference_server.profile import DataProfile
from inference_server.spec import ModelSpec
from inference_server.types import Tensor

__all__ = ["check_categories", "known_categories", "select_outputs", "validate_inputs"]

log = logging.getLogger(__name__)

# Longest part of a refused value quoted back: a request may carry megabytes in one string.
_SHOWN_VALUE = 64


def known_categories(spec: ModelSpec, profile: DataProfile | None) -> dict[str, frozenset[str]] | None:
    """The categories of each BYTES input a version refuses other values of (its ``unseen_categories`` is
    ``refuse``), from its training profile; None when it refuses nothing.

    An input whose profile lists only its top categories cannot tell an unseen value from a rare one: it is
    scored, with one warning at load.
    """
    if spec.config.unseen_categories != "refuse":
        return None
    known: dict[str, frozenset[str]] = {}
    for tensor in spec.inputs:
        column = profile.columns.get(tensor.name) if profile is not None else None
        if tensor.datatype != "BYTES" or column is None or column.kind not in ("categorical", "boolean"):
            continue
        categories = column.known_categories()
        if categories is None:
            log.warning(
                "model %s version %s: input %r keeps unseen categories: its profile lists only its top categories",
                spec.name,
                spec.version,
                tensor.name,
            )
            continue
        known[tensor.name] = categories
    if not known:
        log.warning("model %s version %s: refuses unseen categories, but no input has them all listed in a profile",
                    spec.name, spec.version)  # fmt: skip
    return known or None


def check_categories(spec: ModelSpec, known: Mapping[str, frozenset[str]], feeds: Mapping[str, np.ndarray]) -> None:
    """Refuse a request with a categorical value its model's training data never had (missing, ``""``, is not one).

    Raises:
        ConduitError: INVALID_ARGUMENT naming the input and the value (its first 64 characters).
    """
    for name, categories in known.items():
        values = feeds.get(name)
        if values is None:
            continue
        for value in set(values.ravel().tolist()):
            if value not in categories and value != "":
                text = str(value)
                shown = repr(text[:_SHOWN_VALUE]) + ("…" if len(text) > _SHOWN_VALUE else "")
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"input {name!r} has the value {shown}, which model {spec.name!r} never saw in training "
                    f"(it refuses unseen categories; known: {len(categories)})",
                )


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
