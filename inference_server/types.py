"""Transport-neutral request and response types of the data plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IndexEntry", "InferRequest", "InferResponse", "Tensor"]


@dataclass(slots=True)
class Tensor:
    """A named tensor; ``data`` already has the tensor's shape.

    BYTES: an object array of ``str`` in a request (the transport decodes the UTF-8 once, as ONNX string tensors need
    it); of ``str`` or ``bytes`` in a response.
    """

    name: str
    datatype: str
    data: np.ndarray


@dataclass(slots=True)
class InferRequest:
    """One inference request as the data plane sees it, decoded and not yet validated against the model."""

    model: str
    inputs: list[Tensor]
    version: str = ""
    id: str = ""
    outputs: list[str] | None = None
    """Requested outputs by name; ``None`` means all of them."""
    timeout_s: float | None = None
    """Time left before the caller's deadline, when it set one."""
    raw_output: bool = True
    """Answer with raw bytes (the default) or typed contents."""


@dataclass(slots=True)
class InferResponse:
    model: str
    version: str
    id: str
    outputs: list[Tensor]
    raw_output: bool = True


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of the repository index."""

    name: str
    version: str
    state: str
    reason: str = ""
