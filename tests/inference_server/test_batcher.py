"""DynamicBatcher on its own: a fake model whose executions can be held on an event, and a clock the test moves."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from contract.errors import ConduitError, ErrorCode
from inference_server.batcher import DynamicBatcher
from inference_server.stats import ModelStats

# Bound on every wait of these tests: a batcher that hangs fails the test instead of blocking the suite.
WAIT = 10.0


class FakeClock:
    """Nanoseconds that move only when the test says so."""

    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class FakeModel:
    """Records the rows of every execution; answers ``[x * 2, row sums]``.

    ``hold()`` makes the next executions block on the executor thread until ``release()``; ``fail_calls`` lists the
    execution indices that raise.
    """

    def __init__(self, fail_calls: tuple[int, ...] = (), error: Exception | None = None) -> None:
        self.batches: list[int] = []
        self.seen: list[np.ndarray] = []
        self.fail_calls = set(fail_calls)
        self.error = error or RuntimeError("model exploded")
        self.started = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        call = len(self.batches)
        x = feeds["x"]
        self.batches.append(len(x))
        self.seen.append(x.copy())
        self.started.set()
        if not self._gate.wait(WAIT):
            raise TimeoutError("test never released the model")
        if call in self.fail_calls:
            raise self.error
        return [x * 2, x.sum(axis=1)]

    async def running(self) -> None:
        """Wait until an execution has started (it may be blocked in ``hold``)."""
        assert await asyncio.to_thread(self.started.wait, WAIT), "no execution started"


def rows(*values: float) -> dict[str, np.ndarray]:
    """One request: a row ``[v, v, v]`` per value."""
    return {"x": np.array([[v, v, v] for v in values], dtype=np.float32)}


def make_batcher(model: FakeModel, clock: FakeClock, **options: int) -> DynamicBatcher:
    settings = {"max_batch_size": 4, "max_queue_size": 64, **options}
    return DynamicBatcher(model, stats=ModelStats(), clock=clock, **settings)


def submit(
    batcher: DynamicBatcher, clock: FakeClock, *values: float, deadline_ns: int | None = None
) -> asyncio.Future[list[np.ndarray]]:
    return batcher.submit(rows(*values), len(values), arrival_ns=clock(), deadline_ns=deadline_ns)


async def busy(batcher: DynamicBatcher, model: FakeModel, clock: FakeClock) -> asyncio.Future[list[np.ndarray]]:
    """Occupy the executor with a one-row request held in the model, so that what follows queues up."""
    model.hold()
    first = submit(batcher, clock, -1)
    await model.running()
    return first


async def results(*futures: asyncio.Future[list[np.ndarray]]) -> list[list[np.ndarray] | BaseException]:
    return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), WAIT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_batches_take_everything_queued_up_to_max_batch_size(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, i) for i in range(10)]
    model.release()
    answers = await results(first, *queued)
    await batcher.stop()

    assert all(not isinstance(a, BaseException) for a in answers)
    assert model.batches == [1, 4, 4, 2]


async def test_a_request_that_does_not_fit_starts_the_next_batch(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, *values) for values in ([1, 2, 3], [4, 5], [6, 7], [8])]
    model.release()
    await results(first, *queued)
    await batcher.stop()

    # FIFO: the 2-row request does not fit after 3 rows, and nothing jumps the queue past it.
    assert model.batches == [1, 3, 4, 1]


async def test_each_caller_gets_its_own_rows(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=16)
    first = await busy(batcher, model, clock)
    requests = [[10.0], [20.0, 21.0], [30.0], [40.0, 41.0, 42.0], [50.0]]
    queued = [submit(batcher, clock, *values) for values in requests]
    model.release()
    answers = await results(first, *queued)
    await batcher.stop()

    assert model.batches == [1, 8]
    for values, (doubled, sums) in zip(requests, answers[1:], strict=True):
        expected = rows(*values)["x"]
        np.testing.assert_array_equal(doubled, expected * 2)
        np.testing.assert_array_equal(sums, expected.sum(axis=1))


async def test_a_failed_execution_fails_every_request_of_its_batch_and_only_those(clock: FakeClock) -> None:
    model = FakeModel(fail_calls=(1,))
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    doomed = [submit(batcher, clock, 1, 1), submit(batcher, clock, 2, 2)]  # execution 1: 4 rows
    after = submit(batcher, clock, 3, 3)  # execution 2
    model.release()
    answers = await results(first, *doomed, after)
    later = await results(submit(batcher, clock, 4))
    await batcher.stop()

    assert model.batches == [1, 4, 2, 1]
    ok_first, failed_a, failed_b, ok_after = answers
    for failed in (failed_a, failed_b):
        assert isinstance(failed, ConduitError)
        assert failed.code is ErrorCode.INTERNAL
    for ok in (ok_first, ok_after, later[0]):
        assert not isinstance(ok, BaseException)
    assert batcher.stats.fail.count == 2
    assert batcher.stats.success.count == 3


async def test_a_conduit_error_from_the_model_keeps_its_code(clock: FakeClock) -> None:
    model = FakeModel(fail_calls=(0,), error=ConduitError(ErrorCode.INVALID_ARGUMENT, "bad rows"))
    batcher = make_batcher(model, clock)
    (answer,) = await results(submit(batcher, clock, 1))
    await batcher.stop()

    assert isinstance(answer, ConduitError)
    assert answer.code is ErrorCode.INVALID_ARGUMENT


async def test_a_full_queue_refuses_at_once_with_resource_exhausted(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_queue_size=2)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, 1), submit(batcher, clock, 2)]
    assert batcher.queued == 2
    with pytest.raises(ConduitError) as refused:
        submit(batcher, clock, 3)
    assert refused.value.code is ErrorCode.RESOURCE_EXHAUSTED
    model.release()
    answers = await results(first, *queued)
    await batcher.stop()

    assert all(not isinstance(a, BaseException) for a in answers)
    # The refused request never reached the model and is not counted as a failure of the batcher.
    assert sum(model.batches) == 3
    assert batcher.stats.fail.count == 0
    assert batcher.stats.success.count == 3


async def test_an_expired_deadline_is_dropped_before_compute(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    expiring = submit(batcher, clock, 7, deadline_ns=clock() + 1_000)
    patient = submit(batcher, clock, 8, deadline_ns=clock() + 10_000_000)
    clock.advance(5_000)
    model.release()
    answers = await results(first, expiring, patient)
    await batcher.stop()

    assert isinstance(answers[1], ConduitError)
    assert answers[1].code is ErrorCode.DEADLINE_EXCEEDED
    assert not isinstance(answers[2], BaseException)
    assert model.batches == [1, 1]
    assert all(7.0 not in seen for seen in model.seen)
    assert batcher.stats.fail.count == 1


async def test_a_request_cancelled_while_queued_is_skipped(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock)
    first = await busy(batcher, model, clock)
    cancelled = submit(batcher, clock, 7)
    kept = submit(batcher, clock, 8)
    cancelled.cancel()
    model.release()
    await results(first, kept)
    await batcher.stop()

    assert model.batches == [1, 1]
    assert all(7.0 not in seen for seen in model.seen)


async def test_stop_answers_every_queued_request_and_refuses_new_ones(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=2)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, i) for i in range(5)]
    stopping = asyncio.create_task(batcher.stop())
    # Releasing from a thread hands the loop over, so stop() has begun (and closed the batcher) when this returns.
    await asyncio.to_thread(model.release)
    with pytest.raises(ConduitError) as refused:
        submit(batcher, clock, 99)
    assert refused.value.code is ErrorCode.UNAVAILABLE
    await asyncio.wait_for(stopping, WAIT)

    assert all(future.done() and future.exception() is None for future in [first, *queued])
    assert model.batches == [1, 2, 2, 1]
    with pytest.raises(ConduitError) as after_stop:
        submit(batcher, clock, 100)
    assert after_stop.value.code is ErrorCode.UNAVAILABLE


async def test_without_batching_every_request_runs_alone(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=0)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, i) for i in range(3)]
    model.release()
    await results(first, *queued)
    await batcher.stop()

    assert model.batches == [1, 1, 1, 1]


async def test_a_full_batch_does_not_wait_for_the_queue_delay(clock: FakeClock) -> None:
    model = FakeModel()
    # A minute of allowed delay: only a full batch can have released these requests within the test's bound.
    batcher = make_batcher(model, clock, max_batch_size=4, max_queue_delay_us=60_000_000)
    queued = [submit(batcher, clock, i) for i in range(4)]
    answers = await results(*queued)
    await batcher.stop()

    assert all(not isinstance(a, BaseException) for a in answers)
    assert model.batches == [4]


async def test_a_preferred_batch_size_does_not_wait_for_the_queue_delay(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=8, max_queue_delay_us=60_000_000, preferred_batch_sizes=[3])
    queued = [submit(batcher, clock, i) for i in range(3)]
    await results(*queued)
    await batcher.stop()

    assert model.batches == [3]


async def test_statistics_count_requests_rows_and_executions(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    queued = [submit(batcher, clock, *values) for values in ([1, 1], [2], [3], [4, 4, 4], [5])]
    clock.advance(5_000)  # every queued request waited exactly this long before its execution started
    model.release()
    await results(first, *queued)
    await batcher.stop()
    stats = batcher.stats

    assert model.batches == [1, 4, 4]
    assert stats.execution_count == 3
    assert stats.inference_count == 9
    assert stats.success.count == 6
    assert stats.fail.count == 0
    assert stats.queue.count == 6
    assert stats.queue.ns == 5 * 5_000
    assert sorted(stats.batch_stats) == [1, 4]
    assert stats.batch_stats[1].compute_infer.count == 1
    assert stats.batch_stats[4].compute_infer.count == 2
    # Per-request compute counters count requests, per-batch ones count executions (Triton's convention).
    assert stats.compute_infer.count == 6


class ThreadRecordingModel:
    """Answers ``[x]`` and records which thread ran each execution, with a fixed compute time on the test's clock."""

    def __init__(self, clock: FakeClock, compute_ns: int) -> None:
        self.threads: list[int] = []
        self.clock = clock
        self.compute_ns = compute_ns

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.threads.append(threading.get_ident())
        self.clock.advance(self.compute_ns)
        return [feeds["x"]]


async def test_batches_cheaper_than_a_thread_round_trip_run_on_the_loop_thread() -> None:
    clock = FakeClock()
    model = ThreadRecordingModel(clock, compute_ns=10_000)
    batcher = DynamicBatcher(
        model,
        max_batch_size=4,
        max_queue_size=8,
        stats=ModelStats(),
        inline_compute_us=250,
        warm_up_ns={1: 10_000, 4: 20_000},
        clock=clock,
    )
    answer = await asyncio.wait_for(batcher.submit(rows(1.0), 1, arrival_ns=clock()), WAIT)
    np.testing.assert_array_equal(answer[0], rows(1.0)["x"])
    await batcher.stop()
    assert model.threads == [threading.get_ident()]


async def test_batches_expected_to_be_slow_run_on_the_executor_thread_and_estimates_follow_measurements() -> None:
    clock = FakeClock()
    # Warm-up said 10 µs, but every execution really takes 2 ms: after a few, the estimate moves past the threshold.
    model = ThreadRecordingModel(clock, compute_ns=2_000_000)
    batcher = DynamicBatcher(
        model,
        max_batch_size=4,
        max_queue_size=8,
        stats=ModelStats(),
        inline_compute_us=250,
        warm_up_ns={1: 10_000, 4: 10_000},
        clock=clock,
    )
    for value in range(12):
        await asyncio.wait_for(batcher.submit(rows(float(value)), 1, arrival_ns=clock()), WAIT)
    await batcher.stop()
    loop_thread = threading.get_ident()
    assert model.threads[0] == loop_thread
    assert model.threads[-1] != loop_thread
    # Once on the executor, it stays there: the estimate only grows while executions keep taking 2 ms.
    first_off_loop = next(i for i, ident in enumerate(model.threads) if ident != loop_thread)
    assert all(ident != loop_thread for ident in model.threads[first_off_loop:])


async def test_inline_threshold_zero_always_uses_the_executor_thread() -> None:
    clock = FakeClock()
    model = ThreadRecordingModel(clock, compute_ns=1_000)
    batcher = DynamicBatcher(
        model, max_batch_size=4, max_queue_size=8, stats=ModelStats(), warm_up_ns={1: 1_000}, clock=clock
    )
    await asyncio.wait_for(batcher.submit(rows(1.0), 1, arrival_ns=clock()), WAIT)
    await batcher.stop()
    assert model.threads and model.threads[0] != threading.get_ident()


async def _idle_inline_batcher(clock: FakeClock) -> tuple[DynamicBatcher, ThreadRecordingModel, ModelStats]:
    model = ThreadRecordingModel(clock, compute_ns=1_000)
    stats = ModelStats()
    batcher = DynamicBatcher(
        model,
        max_batch_size=8,
        max_queue_size=16,
        stats=stats,
        inline_compute_us=250,
        warm_up_ns={1: 1_000, 8: 2_000},
        clock=clock,
    )
    await asyncio.sleep(0)  # let the batcher task reach its idle wait
    return batcher, model, stats


async def test_a_lone_request_on_an_idle_batcher_runs_at_once() -> None:
    clock = FakeClock()
    batcher, model, stats = await _idle_inline_batcher(clock)
    stats.in_flight = 1  # the data plane counts the request before submitting it
    future = batcher.submit(rows(1.0), 1, arrival_ns=clock())
    assert future.done() and model.threads == [threading.get_ident()]
    np.testing.assert_array_equal(future.result()[0], rows(1.0)["x"])
    # Counted as a batch of one that waited for nothing: its compute time is the model's, on the test's clock.
    assert (stats.success.count, stats.queue.ns, stats.execution_count, stats.inference_count) == (1, 0, 1, 1)
    assert stats.compute_infer.ns == model.compute_ns and stats.batch_stats[1].compute_infer.count == 1
    await batcher.stop()


class FailingObserver:
    def observe(self, feeds: dict[str, np.ndarray], outputs: list[np.ndarray]) -> None:
        raise RuntimeError("sketch failed")


async def test_a_lone_request_whose_execution_fails_is_answered_and_counted_like_a_batch() -> None:
    clock = FakeClock()
    stats = ModelStats()
    batcher = DynamicBatcher(
        ThreadRecordingModel(clock, compute_ns=1_000),
        max_batch_size=8,
        max_queue_size=16,
        stats=stats,
        observers=[FailingObserver()],
        inline_compute_us=250,
        warm_up_ns={1: 1_000, 8: 2_000},
        clock=clock,
    )
    await asyncio.sleep(0)
    stats.in_flight = 1
    future = batcher.submit(rows(1.0), 1, arrival_ns=clock())
    assert future.done()
    with pytest.raises(ConduitError) as raised:
        future.result()
    assert raised.value.code is ErrorCode.INTERNAL and "sketch failed" in raised.value.message
    assert (stats.fail.count, stats.success.count) == (1, 0)
    await batcher.stop()


async def test_requests_of_a_burst_queue_and_batch_together() -> None:
    clock = FakeClock()
    batcher, _model, stats = await _idle_inline_batcher(clock)
    stats.in_flight = 4
    futures = [batcher.submit(rows(float(i)), 1, arrival_ns=clock()) for i in range(4)]
    assert not any(f.done() for f in futures)
    answers = await asyncio.wait_for(asyncio.gather(*futures), WAIT)
    assert [a[0][0, 0] for a in answers] == [0.0, 1.0, 2.0, 3.0]
    assert stats.execution_count == 1 and stats.inference_count == 4
    await batcher.stop()


# -- requests larger than max_batch_size ---


def check_answer(answer: list[np.ndarray] | BaseException, values: list[float]) -> None:
    """The FakeModel's answer to ``rows(*values)``, rows in order."""
    assert not isinstance(answer, BaseException), answer
    x = rows(*values)["x"]
    np.testing.assert_array_equal(answer[0], x * 2)
    np.testing.assert_array_equal(answer[1], x.sum(axis=1))


async def test_a_request_larger_than_max_batch_size_runs_in_chunks_and_is_answered_whole(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    values = [float(v) for v in range(10)]
    big = submit(batcher, clock, *values)
    model.release()
    answers = await results(first, big)
    await batcher.stop()

    assert model.batches == [1, 4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(model.seen[1:]), rows(*values)["x"])
    check_answer(answers[1], values)


async def test_chunks_share_batches_with_the_requests_around_them(clock: FakeClock) -> None:
    model = FakeModel()
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    before = submit(batcher, clock, 100, 101)
    big_values = [float(v) for v in range(10)]
    big = submit(batcher, clock, *big_values)
    after = submit(batcher, clock, 200)
    clock.advance(5_000)
    model.release()
    answers = await results(first, before, big, after)
    await batcher.stop()
    stats = batcher.stats

    # The big request fills the room the one before it leaves, then goes on in full batches; its last chunk is
    # taken whole, and the request behind it waits for the next batch.
    assert model.batches == [1, 4, 4, 4, 1]
    check_answer(answers[1], [100, 101])
    check_answer(answers[2], big_values)
    check_answer(answers[3], [200])
    # One request of ten rows, executed three times: Triton's counters count it once, with all its rows.
    assert stats.success.count == 4
    assert stats.inference_count == 1 + 2 + 10 + 1
    assert stats.execution_count == 5
    assert stats.compute_infer.count == 4
    assert sum(b.compute_infer.count for b in stats.batch_stats.values()) == stats.execution_count
    # Queue time of the split request ends when its first chunk starts computing.
    assert stats.queue.ns == 3 * 5_000


async def test_a_failed_chunk_fails_its_request_once_and_its_other_chunks_never_run(clock: FakeClock) -> None:
    model = FakeModel(fail_calls=(2,))
    batcher = make_batcher(model, clock, max_batch_size=4)
    first = await busy(batcher, model, clock)
    big = submit(batcher, clock, *range(12))
    model.release()
    answers = await results(first, big)
    after = await results(submit(batcher, clock, 7))
    await batcher.stop()

    assert isinstance(answers[1], ConduitError) and answers[1].code is ErrorCode.INTERNAL
    check_answer(after[0], [7])
    assert model.batches == [1, 4, 4, 1]
    assert (batcher.stats.fail.count, batcher.stats.success.count) == (1, 2)


async def test_a_split_request_past_its_deadline_is_dropped_before_its_next_chunk(clock: FakeClock) -> None:
    # Every execution takes 1 µs on the test's clock: the deadline passes after the second chunk.
    model = ThreadRecordingModel(clock, compute_ns=1_000)
    batcher = DynamicBatcher(model, max_batch_size=4, max_queue_size=8, stats=ModelStats(), clock=clock)
    x = {"x": np.zeros((12, 3), dtype=np.float32)}
    future = batcher.submit(x, 12, arrival_ns=clock(), deadline_ns=clock() + 1_500)
    (answer,) = await results(future)
    await batcher.stop()

    assert isinstance(answer, ConduitError) and answer.code is ErrorCode.DEADLINE_EXCEEDED
    assert len(model.threads) == 2
    assert (batcher.stats.fail.count, batcher.stats.success.count) == (1, 0)


async def test_an_idle_batcher_never_runs_a_request_larger_than_max_batch_size_in_one_call() -> None:
    clock = FakeClock()
    batcher, _model, stats = await _idle_inline_batcher(clock)
    stats.in_flight = 1
    x = {"x": np.arange(60, dtype=np.float32).reshape(20, 3)}
    answer = await asyncio.wait_for(batcher.submit(x, 20, arrival_ns=clock()), WAIT)
    np.testing.assert_array_equal(answer[0], x["x"])
    assert sorted(stats.batch_stats) == [4, 8]
    assert (stats.execution_count, stats.inference_count, stats.success.count) == (3, 20, 1)
    await batcher.stop()
