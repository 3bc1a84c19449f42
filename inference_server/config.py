"""A model's ``config.json``: how it is batched and run. Everything is optional; the ONNX graph fills the rest."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract.datatypes import DATATYPES
from contract.entities import UnseenCategories
from contract.errors import ConduitError, ErrorCode

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "ModelConfig", "TensorOverride", "read_model_config"]

# Batch size used when the graph's first dimension is dynamic and config.json does not say.
DEFAULT_MAX_BATCH_SIZE = 64


class TensorOverride(BaseModel):
    """Rename or re-describe one input or output of the graph."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Name of the tensor in the ONNX graph."""
    datatype: str | None = None
    """Protocol datatype announced to clients; must agree with the graph."""
    dims: list[int] | None = None
    """Shape without the batch dimension (when batching) announced to clients; -1 marks a variable dimension."""

    @field_validator("datatype")
    @classmethod
    def _known_datatype(cls, value: str | None) -> str | None:
        if value is not None and value not in DATATYPES:
            raise ValueError(f"unknown datatype {value!r}; expected one of {', '.join(DATATYPES)}")
        return value


class ModelConfig(BaseModel):
    """The contents of ``DIR/<model>/config.json``."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int | None = Field(default=None, ge=0)
    """Largest batch the dynamic batcher forms; 0 disables batching. Default: 64 when the first dimension of every
    input is dynamic, else 0."""
    max_queue_delay_us: int = Field(default=0, ge=0)
    """How long the batcher may hold a request hoping for a fuller batch. 0: never wait (the default)."""
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    """Batch sizes worth waiting for within ``max_queue_delay_us``."""
    max_queue_size: int = Field(default=1024, ge=1)
    """Requests that may wait for execution; past it, requests are refused with RESOURCE_EXHAUSTED."""
    intra_op_threads: int = Field(default=1, ge=0)
    """onnxruntime threads inside one operator. 1 by default so that workers x models do not oversubscribe the
    cores; 0 lets onnxruntime choose."""
    inter_op_threads: int = Field(default=1, ge=0)
    """onnxruntime threads across operators (parallel execution mode only when above 1)."""
    inline_compute_us: int = Field(default=250, ge=0)
    """Batches expected to compute in less than this many microseconds run on the event-loop thread instead of the
    executor thread. A round trip to a worker thread costs about 130 µs on a small cloud VM (measured in
    ``benchmarks/serving``), more than a small model takes to compute; 0 sends every batch to the executor."""
    unseen_categories: UnseenCategories = "score"
    """What a request with a categorical (BYTES) input value the training data never had gets: ``score`` answers it
    (the value is counted as unseen in the data sketches), ``refuse`` answers INVALID_ARGUMENT naming the input and
    the value. Refusal needs the version's profile to list every category of the input's column."""
    inputs: list[TensorOverride] = Field(default_factory=list)
    """Overrides for graph inputs, by name."""
    outputs: list[TensorOverride] = Field(default_factory=list)
    """Overrides for graph outputs, by name."""

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _positive_sizes(cls, value: list[int]) -> list[int]:
        if any(size <= 0 for size in value):
            raise ValueError("preferred batch sizes must be positive")
        return sorted(set(value))


def read_model_config(path: Path) -> ModelConfig:
    """Read ``config.json`` at ``path``; a missing file means all defaults.

    Raises:
        ConduitError: FAILED_PRECONDITION when the file is not valid JSON or not a valid configuration.
    """
    if not path.exists():
        return ModelConfig()
    try:
        return ModelConfig.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        # pydantic's ValidationError is a ValueError; keep its text, which names the offending field.
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"invalid {path}: {exc}") from None
