"""The flusher of sampled predictions: every ``interval_s``, or sooner once the buffer asks for it, the buffered
samples become Parquet tables off the event loop and go to their sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from inference_server.predictions._parquet import frames
from inference_server.predictions._sampler import PredictionSampler
from inference_server.predictions._sinks import Sink

__all__ = ["PredictionLogger"]

log = logging.getLogger(__name__)


class PredictionLogger:
    """Runs the flushes of one server's ``sampler`` into ``sink``."""

    def __init__(self, sampler: PredictionSampler, sink: Sink, *, interval_s: float) -> None:
        self.sampler = sampler
        self.sink = sink
        self._interval = interval_s
        self._reported_drops = 0
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Write (and send) everything sampled since the last flush, and retry what is still waiting."""
        samples = self.sampler.take()
        dropped = self.sampler.dropped_rows
        if dropped > self._reported_drops:
            log.warning(
                "prediction log buffer full: dropped %d sampled row(s) since the last flush (%d in all)",
                dropped - self._reported_drops, dropped,
            )  # fmt: skip
            self._reported_drops = dropped
        if samples:
            await self.sink.store(await asyncio.to_thread(frames, samples))
        else:
            await self.sink.retry()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sampler.wanted.wait(), self._interval)
            try:
                await self.flush()
            except Exception:  # a full disk or a bad table must not end logging; the next flush tries again
                log.exception("prediction log flush failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop flushing on schedule and flush once more."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("last prediction log flush failed")
