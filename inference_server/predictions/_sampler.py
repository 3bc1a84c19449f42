"""Which requests are logged, and where their rows wait for the next flush.

The data plane asks ``sampled()`` once per answered request: one uniform draw and a comparison, no allocation. Only
a sampled request is copied (its inputs, which may be views into the request's buffer, and its rows of the batch's
outputs) into a buffer bounded in rows and in bytes; when it is full the request is dropped and counted, so
logging never holds memory without bound and never makes inference wait. Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from inference_server.spec import ModelSpec
    from inference_server.types import Tensor

__all__ = ["PredictionSampler", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled request: when it was answered (ns since the epoch), its model version, its id, its inputs in the
    model's input order and all of the model's outputs for its rows, in output order."""

    time_ns: int
    spec: ModelSpec
    request_id: str
    rows: int
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]


class PredictionSampler:
    """Samples a share of the answered requests into a buffer of at most ``max_rows`` rows and ``max_bytes`` bytes.

    Args:
        ratio: Share of requests logged, 0..1.
        max_rows: Rows the buffer holds at most; a sampled request that does not fit is dropped and counted.
        max_bytes: Bytes of copied tensors the buffer holds at most, likewise: rows alone do not bound the memory
            of wide tensors (an image per row).
        flush_rows: Rows from which the buffer asks for a flush (``wanted`` is set) before its interval is up.
        draw: Uniform draws in [0, 1).
        clock_ns: Wall clock, nanoseconds since the epoch.
    """

    def __init__(
        self,
        ratio: float,
        *,
        max_rows: int,
        flush_rows: int,
        max_bytes: int = 64 * 1024 * 1024,
        draw: Callable[[], float] = random.random,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.ratio = ratio
        self._draw = draw
        self._clock = clock_ns
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._flush_rows = flush_rows
        self._samples: list[Sample] = []
        self._rows = 0
        self._bytes = 0
        self.dropped_rows = 0
        """Rows sampled but dropped, since the start: the buffer was full, or their flush could not write them."""
        self.kept_rows = 0
        """Rows sampled and buffered, since the start."""
        self.wanted = asyncio.Event()
        """Set once the buffer holds ``flush_rows`` rows; the flusher clears it."""

    @property
    def buffered_rows(self) -> int:
        return self._rows

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the tensors buffered (an object array's counts its references, not the strings)."""
        return self._bytes

    def sampled(self) -> bool:
        """Whether to log the request being answered."""
        return self._draw() < self.ratio

    def keep(self, spec: ModelSpec, request_id: str, inputs: Sequence[Tensor], outputs: Sequence[np.ndarray]) -> None:
        """Copy a sampled request into the buffer, or count it dropped when the buffer is full.

        Args:
            inputs: The request's validated tensors (any order; BYTES as object arrays of str).
            outputs: Every output of the model for the request's rows, in the model's output order.
        """
        rows = int(outputs[0].shape[0]) if spec.batched and outputs and outputs[0].ndim else 1
        by_name = {tensor.name: tensor.data for tensor in inputs}
        size = sum(by_name[s.name].nbytes for s in spec.inputs) + sum(output.nbytes for output in outputs)
        if self._rows + rows > self._max_rows or self._bytes + size > self._max_bytes:
            self.dropped_rows += rows
            return
        sample = Sample(
            time_ns=self._clock(),
            spec=spec,
            request_id=request_id,
            rows=rows,
            inputs=tuple(np.array(by_name[s.name], copy=True) for s in spec.inputs),
            outputs=tuple(np.array(output, copy=True) for output in outputs),
        )
        self._samples.append(sample)
        self._rows += rows
        self._bytes += size
        self.kept_rows += rows
        if self._rows >= self._flush_rows:
            self.wanted.set()

    def count_dropped(self, rows: int) -> None:
        """Count ``rows`` taken from the buffer that could not be written."""
        self.dropped_rows += rows

    def take(self) -> list[Sample]:
        """Everything buffered since the last call, oldest first; the buffer starts empty again."""
        samples, self._samples, self._rows, self._bytes = self._samples, [], 0, 0
        self.wanted.clear()
        return samples
