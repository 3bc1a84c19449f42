"""The flusher of sampled predictions: every ``interval_s``, or sooner once the buffer asks for it, the buffered
samples become Parquet tables off the event loop and go to their sink."""

from __future__ import annotations

import asyncio
import logging

from inference_server.predictions._parquet import by_version, frame
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
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Write (and send) everything sampled since the last flush, and retry what is still waiting.

        Each model version's rows are written on their own: a version whose table cannot be built or stored costs
        its own rows (counted dropped), never the other versions'.
        """
        for group in by_version(self.sampler.take()):
            try:
                await self.sink.write(await asyncio.to_thread(frame, group))
            except Exception:
                rows = sum(s.rows for s in group)
                self.sampler.count_dropped(rows)
                spec = group[0].spec
                log.exception("prediction log of %s version %s: %d row(s) not written", spec.name, spec.version, rows)
        dropped = self.sampler.dropped_rows
        if dropped > self._reported_drops:
            log.warning(
                "prediction log: dropped %d sampled row(s) since the last flush (%d in all)",
                dropped - self._reported_drops, dropped,
            )  # fmt: skip
            self._reported_drops = dropped
        await self.sink.retry()

    async def _wait(self) -> None:
        """Until the buffer asks for a flush, the logger is stopping, or the interval is up."""
        waits = {asyncio.ensure_future(self.sampler.wanted.wait()), asyncio.ensure_future(self._stopping.wait())}
        try:
            await asyncio.wait(waits, timeout=self._interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _run(self) -> None:
        while True:
            await self._wait()
            # A flush that starts once stopping is asked for is the last one; a flush is never cut off half way, as the
            # samples it took out of the buffer would go with it.
            last = self._stopping.is_set()
            try:
                await self.flush()
            except Exception:  # a failed upload must not end logging; the next flush tries again
                log.exception("prediction log flush failed")
            if last:
                return

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop flushing on schedule: the flush under way finishes, then one more takes what is left."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        else:
            try:
                await self.flush()
            except Exception:
                log.exception("last prediction log flush failed")
