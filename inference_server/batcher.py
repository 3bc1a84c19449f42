"""The dynamic batcher: one per loaded model version.

Requests queue; whenever the executor is free the batcher takes everything queued, up to ``max_batch_size`` rows,
runs one model call and hands each caller its own rows back. A request of more rows than ``max_batch_size`` is split:
its rows go through the queue in chunks of at most ``max_batch_size`` (its first and last may share a batch with the
requests around it), and it is answered once, whole, its outputs concatenated in row order. The call runs off the event
loop, on the batcher's executor thread, unless the batch is expected to compute faster than a thread round trip costs
(``inline_compute_us``): then it runs on the loop thread, which is both faster and cheaper for small models. Requests
are validated before they get here, so a bad request can never fail its neighbours. The queue is bounded
(RESOURCE_EXHAUSTED at once when full; a split request is one entry, its bytes bounded by the data plane) and requests
whose deadline passed while queued are dropped before compute, a split one before its next chunk.

The batcher is the one place a request's outcome is recorded: ``infer`` counts it in flight and records a refusal or
a caller that gave up, the execution paths record successes and model failures, all in the version's ``ModelStats``
and on the one clock the composition root injects.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from contract.errors import ConduitError, ErrorCode
from inference_server.stats import ModelStats

__all__ = ["BatchObserver", "DynamicBatcher", "Executable"]

Clock = Callable[[], int]
"""Monotonic nanoseconds; one clock for the whole server, so that timestamps taken anywhere can be subtracted."""
Prepare = Callable[[], tuple[dict[str, np.ndarray], int]]
"""Validates a request and returns its feeds and number of rows; raises ``ConduitError`` for a bad request."""


class Executable(Protocol):
    """What the batcher runs: one call over a whole batch, outputs in a fixed order."""

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class BatchObserver(Protocol):
    """Sees every executed batch, on the thread that ran it (executor or event loop), after the model ran.

    This is where per-feature data sketches for drift monitoring attach: they get the exact rows the model saw.
    """

    def observe(self, feeds: dict[str, np.ndarray], outputs: list[np.ndarray]) -> None: ...


@dataclass(slots=True)
class _Pending:
    inputs: dict[str, np.ndarray]
    rows: int
    # Rows of requests batched together must agree on every dimension after the first.
    signature: tuple[tuple[int, ...], ...]
    future: asyncio.Future[list[np.ndarray]]
    arrival_ns: int
    enqueued_ns: int
    deadline_ns: int | None
    # The rows of the batch being executed are rows[offset:offset + chunk]; ``taken`` rows have gone to executions.
    # One batch runs at a time, so a request is in at most one of them. A request that fits in one batch (almost
    # all of them) is taken whole: offset 0, chunk == rows.
    offset: int = 0
    chunk: int = 0
    taken: int = 0
    # A split request: its outputs so far, chunk by chunk, and when its first chunk started computing.
    pieces: list[list[np.ndarray]] | None = None
    started_ns: int = 0

    def feeds(self) -> dict[str, np.ndarray]:
        """The rows of the current chunk (views: slices along the first dimension copy nothing)."""
        if self.chunk == self.rows:
            return self.inputs
        start, stop = self.offset, self.offset + self.chunk
        return {name: array[start:stop] for name, array in self.inputs.items()}


class _CostModel:
    """Expected compute time by batch size: an exponentially weighted mean per power-of-two bucket of rows.

    Seeded from warm-up timings (a straight line through them), then updated by every execution.
    """

    WEIGHT = 0.1

    def __init__(self, max_rows: int, seed: Mapping[int, int]) -> None:
        self._ns = [0.0] * (max_rows.bit_length() + 1)
        if seed:
            (small, small_ns), (large, large_ns) = min(seed.items()), max(seed.items())
            slope = (large_ns - small_ns) / (large - small) if large > small else 0.0
            for bucket in range(len(self._ns)):
                rows = min(1 << bucket, max_rows)
                self._ns[bucket] = small_ns + slope * (rows - small)

    def expected_ns(self, rows: int) -> float:
        return self._ns[min(rows.bit_length(), len(self._ns) - 1)]

    def observe(self, rows: int, ns: int) -> None:
        bucket = min(rows.bit_length(), len(self._ns) - 1)
        self._ns[bucket] += self.WEIGHT * (ns - self._ns[bucket])


@dataclass(slots=True)
class _Executed:
    per_request: list[list[np.ndarray]]
    input_ns: int
    infer_ns: int
    output_ns: int


class DynamicBatcher:
    """Queue, batch and execute requests for one model version.

    Create it on the event loop that will call ``submit`` (its queue and futures belong to that loop).
    """

    def __init__(
        self,
        model: Executable,
        *,
        max_batch_size: int,
        max_queue_size: int,
        stats: ModelStats,
        clock: Clock,
        max_queue_delay_us: int = 0,
        preferred_batch_sizes: Sequence[int] = (),
        observers: Sequence[BatchObserver] = (),
        inline_compute_us: int = 0,
        warm_up_ns: Mapping[int, int] | None = None,
    ) -> None:
        self._model = model
        # max_batch_size 0 means the model does not batch: one request per execution.
        self._max_rows = max(max_batch_size, 1)
        self._batching = max_batch_size > 0
        self._max_queue = max_queue_size
        self._delay_ns = max_queue_delay_us * 1000
        self._preferred = sorted(preferred_batch_sizes)
        self._observers = tuple(observers)
        self._inline_ns = inline_compute_us * 1000
        self._costs = _CostModel(self._max_rows, warm_up_ns or {})
        self._clock = clock
        self.stats = stats
        self._queue: collections.deque[_Pending] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._idle = False
        # One thread: the batcher runs one execution at a time; more parallelism comes from onnxruntime's
        # intra-op threads and from worker processes.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conduit-exec")
        self._task = self._loop.create_task(self._serve())

    @property
    def queued(self) -> int:
        """Requests waiting for execution."""
        return len(self._queue)

    async def infer(
        self, prepare: Prepare, *, arrival_ns: int, deadline_ns: int | None = None, burst: bool = False
    ) -> list[np.ndarray]:
        """Answer one request: counted in flight until answered, its outcome recorded whatever it is.

        Args:
            prepare: Validates the request and returns its feeds and rows; called once, before anything is queued.
            arrival_ns: When the request arrived, on the batcher's clock.
            deadline_ns: When its caller stops waiting, on the same clock.
            burst: Other requests arrived with this one and are about to be submitted: it queues, so that they batch
                together, even when it is the only one in flight yet.

        Raises:
            ConduitError: what ``prepare`` or ``submit`` raise, or the model's failure. A bad request is refused
                before it joins a batch, so it can never fail its neighbours.
        """
        stats = self.stats
        stats.in_flight += 1
        try:
            try:
                feeds, rows = prepare()
                future = self.submit(feeds, rows, arrival_ns=arrival_ns, deadline_ns=deadline_ns, burst=burst)
            except ConduitError as exc:
                stats.record_failure(self._clock() - arrival_ns, exc.code.name)
                raise
            try:
                return await future
            except asyncio.CancelledError:
                # The caller gave up (its deadline passed or it cancelled) while the request waited or ran.
                now = self._clock()
                expired = deadline_ns is not None and now >= deadline_ns
                stats.record_failure(now - arrival_ns, "DEADLINE_EXCEEDED" if expired else "CANCELLED")
                raise
        finally:
            stats.in_flight -= 1

    def submit(
        self,
        inputs: dict[str, np.ndarray],
        rows: int,
        *,
        arrival_ns: int,
        deadline_ns: int | None = None,
        burst: bool = False,
    ) -> asyncio.Future[list[np.ndarray]]:
        """Queue one validated request; the future resolves to its outputs in model output order.

        A request of more rows than ``max_batch_size`` is executed in chunks of at most ``max_batch_size`` rows and
        answered once, whole.

        The caller counts the request in flight first (``infer`` does); a refused request is not counted here.

        Raises:
            ConduitError: RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE once the batcher is stopping.
        """
        if self._closing:
            raise ConduitError(ErrorCode.UNAVAILABLE, "model version is unloading")
        if len(self._queue) >= self._max_queue:
            raise ConduitError(ErrorCode.RESOURCE_EXHAUSTED, f"queue full ({self._max_queue} requests waiting)")
        if (
            self._idle
            and not burst
            and self.stats.in_flight <= 1
            and not self._queue
            and not self._delay_ns
            and rows <= self._max_rows
            and self._costs.expected_ns(rows) < self._inline_ns
        ):
            # The only request in flight, nothing running, cheap enough for the loop thread: it would be a batch of
            # one anyway, so run it now instead of spending two turns of the loop waking the batcher task and then the
            # caller. With other requests in flight (a burst), it queues so that they can batch together.
            return self._run_alone(inputs, rows, arrival_ns)
        future: asyncio.Future[list[np.ndarray]] = self._loop.create_future()
        signature = tuple(array.shape[1:] for array in inputs.values()) if self._batching else ()
        self._queue.append(_Pending(inputs, rows, signature, future, arrival_ns, self._clock(), deadline_ns, 0, rows))
        self._wakeup.set()
        return future

    def _run_alone(self, inputs: dict[str, np.ndarray], rows: int, arrival_ns: int) -> asyncio.Future[list[np.ndarray]]:
        """One request, run at once on the loop thread: a batch of one with nothing to assemble or split."""
        future: asyncio.Future[list[np.ndarray]] = self._loop.create_future()
        start = self._clock()
        try:
            outputs = self._model.run(inputs)
            ran = self._clock()
            for observer in self._observers:
                observer.observe(inputs, outputs)
        except Exception as exc:  # as in a batch: the request fails with the model's error, counted
            self._fail([_Pending(inputs, rows, (), future, arrival_ns, start, None, 0, rows)], exc, rows, start)
            return future
        now = self._clock()
        self._costs.observe(rows, ran - start)
        self.stats.record_execution(rows, 1, 0, ran - start, now - ran)
        future.set_result(outputs)
        self.stats.record_success(now - arrival_ns, 0)
        tracer = self.stats.tracer
        if tracer is not None and tracer.sampled():
            tracer.record(arrival_ns, start, start, now, rows=rows, status="OK")
        return future

    async def stop(self) -> None:
        """Stop taking requests, finish every queued one, then release the executor."""
        self._closing = True
        self._wakeup.set()
        await self._task
        self._executor.shutdown(wait=True)

    async def _serve(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                self._idle = True
                try:
                    await self._wakeup.wait()
                finally:
                    self._idle = False
                continue
            if self._delay_ns and not self._closing:
                await self._wait_for_fuller_batch()
            batch = self._take()
            if batch:
                await self._execute(batch)

    async def _wait_for_fuller_batch(self) -> None:
        """Hold the oldest request up to max_queue_delay for a full or preferred batch."""
        target = self._max_rows
        until = self._queue[0].enqueued_ns + self._delay_ns
        while not self._closing:
            rows = sum(p.rows - p.taken for p in self._queue)
            if rows >= target or rows in self._preferred:
                return
            remaining = until - self._clock()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining / 1e9)
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        """Pop compatible requests up to the batch limit, dropping expired and cancelled ones.

        A request that fits in a batch is taken whole or left for the next batch; one larger than a batch gives the
        batch as many of its rows as it has room for and stays at the head of the queue until its last chunk.
        """
        batch: list[_Pending] = []
        rows = 0
        now = self._clock()
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # cancelled by the caller while queued, or a chunk of it failed
                self._queue.popleft()
                continue
            if pending.deadline_ns is not None and pending.deadline_ns <= now:
                self._queue.popleft()
                pending.future.set_exception(ConduitError(ErrorCode.DEADLINE_EXCEEDED, "deadline expired in queue"))
                self.stats.record_failure(now - pending.arrival_ns, ErrorCode.DEADLINE_EXCEEDED.name)
                continue
            if batch and pending.signature != batch[0].signature:
                break
            remaining = pending.rows - pending.taken
            room = self._max_rows - rows
            if remaining > room and self._batching:
                if remaining <= self._max_rows or not room:
                    break  # fits in the next batch whole
                # Larger than any batch: fill this one with its next rows, keep the rest queued.
                pending.offset, pending.chunk = pending.taken, room
                pending.taken += room
                batch.append(pending)
                break
            self._queue.popleft()
            pending.offset, pending.chunk = pending.taken, remaining
            pending.taken = pending.rows
            batch.append(pending)
            rows += remaining
            if not self._batching:
                break
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        start = self._clock()
        rows = sum(p.chunk for p in batch)
        if self._costs.expected_ns(rows) < self._inline_ns:
            self._execute_inline(batch, rows, start)
            return
        try:
            done = await self._loop.run_in_executor(self._executor, self._run_batch, batch)
        except Exception as exc:
            self._fail(batch, exc, rows, start)
        else:
            self._finish(batch, rows, start, done)

    def _execute_inline(self, batch: list[_Pending], rows: int, start: int) -> None:
        try:
            done = self._run_batch(batch)
        except Exception as exc:
            self._fail(batch, exc, rows, start)
        else:
            self._finish(batch, rows, start, done)

    def _fail(self, batch: list[_Pending], exc: Exception, rows: int, start: int) -> None:
        """The model failed: every request of the batch fails with it."""
        error = (
            exc
            if isinstance(exc, ConduitError)
            else ConduitError(ErrorCode.INTERNAL, f"model execution failed: {type(exc).__name__}: {exc}")
        )
        now = self._clock()
        tracer = self.stats.tracer
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)
            self.stats.record_failure(now - pending.arrival_ns, error.code.name)
            if tracer is not None and tracer.sampled():
                tracer.record(pending.arrival_ns, pending.enqueued_ns, start, now, rows=rows, status=error.code.name)

    def _finish(self, batch: list[_Pending], rows: int, start: int, done: _Executed) -> None:
        now = self._clock()
        self._costs.observe(rows, done.infer_ns)
        stats = self.stats
        tracer = stats.tracer
        answered = 0
        for pending, own in zip(batch, done.per_request, strict=True):
            if pending.chunk == pending.rows:
                outputs, started = own, start
            else:  # a chunk of a split request
                whole = self._gather(pending, own, start)
                if whole is None:
                    continue  # more chunks to come
                outputs, started = whole, pending.started_ns
            answered += 1
            if not pending.future.done():
                pending.future.set_result(outputs)
            stats.record_success(now - pending.arrival_ns, started - pending.enqueued_ns)
            if tracer is not None and tracer.sampled():
                tracer.record(pending.arrival_ns, pending.enqueued_ns, started, now, rows=rows, status="OK")
        stats.record_execution(rows, len(batch), done.input_ns, done.infer_ns, done.output_ns, answered=answered)

    @staticmethod
    def _gather(pending: _Pending, outputs: list[np.ndarray], start: int) -> list[np.ndarray] | None:
        """Keep one chunk's outputs of a split request; after its last chunk, the whole request's, rows in order."""
        if pending.pieces is None:
            pending.pieces = []
            pending.started_ns = start  # it waited in the queue until its first chunk started computing
        pending.pieces.append(outputs)
        if pending.offset + pending.chunk < pending.rows:
            return None
        return [np.concatenate(parts) for parts in zip(*pending.pieces, strict=True)]

    def _run_batch(self, batch: list[_Pending]) -> _Executed:
        """Assemble, run, split: on the executor thread (numpy and onnxruntime release the GIL) or, for batches
        cheaper than a thread round trip, on the loop thread."""
        t0 = self._clock()
        if len(batch) == 1:
            feeds = dict(batch[0].feeds())
        elif batch[0].chunk == batch[0].rows and batch[-1].chunk == batch[-1].rows:
            feeds = {name: np.concatenate([p.inputs[name] for p in batch]) for name in batch[0].inputs}
        else:
            # Only the first request (the last chunk of a split one) and the last (a split one's first chunks) can
            # be partial: _take takes every other request whole.
            parts = [p.feeds() for p in batch]
            feeds = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        t1 = self._clock()
        outputs = self._model.run(feeds)
        t2 = self._clock()
        for observer in self._observers:
            observer.observe(feeds, outputs)
        if len(batch) == 1:
            per_request = [outputs]
        else:
            per_request = []
            offset = 0
            for pending in batch:
                end = offset + pending.chunk
                per_request.append([output[offset:end] for output in outputs])
                offset = end
        t3 = self._clock()
        return _Executed(per_request, t1 - t0, t2 - t1, t3 - t2)
