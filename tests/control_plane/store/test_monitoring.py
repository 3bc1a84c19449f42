"""Monitoring roll-ups in the store: what is added comes back exactly, adds up per minute (also from concurrent
writers on separate connection pools, as several control planes would be), is listed by model version and time, and
is pruned by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract.entities import LatencyHistogram, Rollup
from control_plane.store import SqlStore

from .conftest import THREADS, run_together

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BOUNDS = (0.001, 0.01, 0.1)


def _histogram(counts: tuple[int, ...], total: float, low: float, high: float) -> LatencyHistogram:
    return LatencyHistogram(BOUNDS, counts, sum(counts), total, low, high)


def _rollup(minute: datetime = T0, *, model: str = "fraud", version: str = "1", **fields: object) -> Rollup:
    return Rollup(model=model, version=version, minute=minute, **fields)  # type: ignore[arg-type]


def test_a_rollup_comes_back_exactly(store: SqlStore) -> None:
    added = _rollup(
        requests=7,
        errors={"INVALID_ARGUMENT": 2},
        latency=_histogram((1, 5, 1, 0), 0.042, 0.0005, 0.05),
        sketches={("amount", "numeric"): {"0": 3, "below": 1, "missing": 2}, ("city", "categorical"): {"paris": 4}},
    )
    store.add_rollups([added])
    assert store.list_rollups("fraud", "1", T0, T0 + timedelta(minutes=1)) == [added]


def test_additions_to_a_minute_add_up(store: SqlStore) -> None:
    store.add_rollups(
        [
            _rollup(requests=3, errors={"INTERNAL": 1}, latency=_histogram((1, 2, 0, 0), 0.01, 0.0002, 0.009)),
            _rollup(sketches={("amount", "numeric"): {"0": 1, "1": 2}}),
        ]
    )
    store.add_rollups(
        [
            _rollup(
                requests=2,
                errors={"INTERNAL": 4, "NOT_FOUND": 1},
                latency=_histogram((0, 0, 1, 1), 1.5, 0.05, 1.2),
                sketches={("amount", "numeric"): {"1": 5, "missing": 1}, ("city", "categorical"): {"lyon": 1}},
            )
        ]
    )
    (found,) = store.list_rollups("fraud", "1", T0, T0 + timedelta(minutes=1))
    assert found.requests == 5
    assert found.errors == {"INTERNAL": 5, "NOT_FOUND": 1}
    assert found.latency == LatencyHistogram(BOUNDS, (1, 2, 1, 1), 5, 1.51, 0.0002, 1.2)
    assert found.sketches == {
        ("amount", "numeric"): {"0": 1, "1": 7, "missing": 1},
        ("city", "categorical"): {"lyon": 1},
    }


def test_listing_keeps_to_the_version_and_the_time_range(store: SqlStore) -> None:
    minutes = [T0 + timedelta(minutes=i) for i in range(5)]
    store.add_rollups([_rollup(m, requests=i + 1) for i, m in enumerate(minutes)])
    store.add_rollups([_rollup(T0, version="2", requests=100), _rollup(T0, model="other", requests=100)])
    found = store.list_rollups("fraud", "1", minutes[1], minutes[4])
    assert [(r.minute, r.requests) for r in found] == [(minutes[1], 2), (minutes[2], 3), (minutes[3], 4)]
    assert store.list_rollups("fraud", "3", T0, minutes[-1]) == []


def test_pruning_deletes_the_minutes_before_the_cutoff_with_their_sketches(store: SqlStore) -> None:
    sketch = {("amount", "numeric"): {"0": 1}}
    store.add_rollups([_rollup(T0 + timedelta(minutes=i), requests=1, sketches=sketch) for i in range(4)])
    assert store.prune_rollups(T0 + timedelta(minutes=2)) == 2
    left = store.list_rollups("fraud", "1", T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert [r.minute for r in left] == [T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)]
    assert all(r.sketches == sketch for r in left)
    assert store.prune_rollups(T0) == 0
    # A pruned minute can be written again (its sketch rows went with it).
    store.add_rollups([_rollup(T0, requests=1, sketches=sketch)])
    assert store.list_rollups("fraud", "1", T0, T0 + timedelta(minutes=1))[0].sketches == sketch


ROUNDS = 15


def test_concurrent_writers_to_the_same_minutes_all_add_up(stores: list[SqlStore]) -> None:
    # Every round adds to two minutes, one shared by all and one new to each writer (rows created at the same moment
    # by several transactions), in an order that differs between writers.
    latency = _histogram((1, 1, 0, 1), 0.5, 0.0001, 0.3)

    def write(index: int) -> None:
        for round_ in range(ROUNDS):
            minutes = [T0, T0 + timedelta(minutes=1 + round_)]
            if index % 2:
                minutes.reverse()
            stores[index].add_rollups(
                [
                    _rollup(
                        minute,
                        requests=1,
                        errors={f"E{index}": 1},
                        latency=latency,
                        sketches={("amount", "numeric"): {"0": 1, str(index + 1): 2}},
                    )
                    for minute in minutes
                ]
            )

    run_together(THREADS, write)
    found = stores[0].list_rollups("fraud", "1", T0, T0 + timedelta(hours=1))
    assert len(found) == 1 + ROUNDS
    shared, *per_round = found
    writes = THREADS * ROUNDS
    assert shared.requests == writes
    assert shared.errors == {f"E{i}": ROUNDS for i in range(THREADS)}
    assert shared.latency is not None and shared.latency.counts == (writes, writes, 0, writes)
    assert shared.sketches[("amount", "numeric")] == {"0": writes, **{str(i + 1): 2 * ROUNDS for i in range(THREADS)}}
    for rollup in per_round:
        assert rollup.requests == THREADS
        assert rollup.sketches[("amount", "numeric")]["0"] == THREADS
