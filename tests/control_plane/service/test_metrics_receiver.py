"""The OTLP metrics receiver on the control plane's port, fed by OpenTelemetry's own SDK exporter: what is recorded
lands in the roll-ups exactly (delta and cumulative exporters, two at once), with the control plane's tokens, and
payloads that break the contract are refused precisely while other metrics are ignored."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExportResult

from contract.entities import LatencyHistogram, Rollup
from control_plane.monitoring import merge_rollups
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.store import SqlStore
from tests.conftest import free_port

from .conftest import ADMIN_TOKEN, LATENCY_BOUNDS, Api, Metadata, Pusher, StartApi, bearer, eventually

VERSION = {"model": "fraud", "version": "3"}
OK = {**VERSION, "status": "OK"}
Pushers = Callable[..., Pusher]


@pytest.fixture
def rollups(any_api: Api) -> Iterator[Callable[[], list[Rollup]]]:
    """Every stored roll-up of fraud version 3, read straight from the registry database."""
    store = SqlStore(any_api.server.settings.db_url())
    now = datetime.now(UTC)
    yield lambda: store.list_rollups("fraud", "3", now - timedelta(days=1), now + timedelta(days=1))
    store.close()


def total(found: list[Rollup]) -> Rollup:
    """Every roll-up added together (a test may straddle a minute)."""
    assert found, "nothing stored"
    return functools.reduce(merge_rollups, found)


def histogram_of(values: np.ndarray) -> LatencyHistogram:
    counts = np.bincount(np.searchsorted(LATENCY_BOUNDS, values, side="left"), minlength=len(LATENCY_BOUNDS) + 1)
    return LatencyHistogram(
        LATENCY_BOUNDS, tuple(int(c) for c in counts), len(values), float(values.sum()), values.min(), values.max()
    )


def record(pusher: Pusher, durations: np.ndarray, *, errors: int = 0, amounts: list[int] | None = None) -> None:
    """What a server records for ``durations`` answered requests, ``errors`` refused ones and some sketches."""
    pusher.requests.add(len(durations), OK)
    for seconds in durations:
        pusher.duration.record(float(seconds), OK)
    if errors:
        pusher.requests.add(errors, {**VERSION, "status": "INVALID_ARGUMENT"})
        pusher.duration.record(0.0001, {**VERSION, "status": "INVALID_ARGUMENT"})
    for index, count in enumerate(amounts or []):
        pusher.bins.add(count, {**VERSION, "feature": "amount", "bin": str(index)})
    pusher.categories.add(len(durations), {**VERSION, "feature": "city", "category": "paris"})


async def push(pusher: Pusher) -> MetricExportResult:
    return await asyncio.to_thread(pusher.push)


@pytest.mark.parametrize("temporality", [AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE])
async def test_what_an_exporter_pushes_is_stored_exactly(
    any_api: Api, pushers: Pushers, rollups: Callable[[], list[Rollup]], temporality: AggregationTemporality
) -> None:
    await any_api.user("server-1", cp.ROLE_SERVER)
    pusher = pushers(any_api.server.target, any_api.tokens["server-1"], temporality=temporality)
    rng = np.random.default_rng(7)
    first, second = rng.lognormal(np.log(0.004), 0.8, 300), rng.lognormal(np.log(0.004), 0.8, 200)
    record(pusher, first, errors=2, amounts=[5, 0, 7])
    assert await push(pusher) == MetricExportResult.SUCCESS
    record(pusher, second, errors=1, amounts=[1, 2])
    assert await push(pusher) == MetricExportResult.SUCCESS
    # Nothing new: a delta exporter sends nothing, a cumulative one the same totals again; neither adds anything.
    assert await push(pusher) == MetricExportResult.SUCCESS

    stored = total(rollups())
    assert stored.requests == 500
    assert stored.errors == {"INVALID_ARGUMENT": 3}
    expected = histogram_of(np.concatenate([first, second]))
    assert stored.latency is not None
    assert stored.latency.bounds == expected.bounds and stored.latency.counts == expected.counts
    assert stored.latency.count == 500 and stored.latency.sum == pytest.approx(expected.sum, rel=1e-12)
    if temporality is AggregationTemporality.DELTA:
        # Differences of a running minimum say nothing about a minute's: only delta points keep them.
        assert (stored.latency.min, stored.latency.max) == (expected.min, expected.max)
    assert stored.sketches == {
        ("amount", "numeric"): {"0": 6, "1": 2, "2": 7},
        ("city", "categorical"): {"paris": 500},
    }


async def test_a_cumulative_series_older_than_the_control_plane_counts_from_its_second_point(
    start_api: StartApi, sqlite_url: str, pushers: Pushers
) -> None:
    # The series starts before the control plane does: what its first point holds may have been counted by the
    # control plane that ran before, so it only becomes the reference.
    port = free_port()
    pusher = pushers(f"127.0.0.1:{port}", ADMIN_TOKEN, temporality=AggregationTemporality.CUMULATIVE)
    record(pusher, np.full(10, 0.003))
    api = await start_api(sqlite_url, grpc_port=port)
    assert await push(pusher) == MetricExportResult.SUCCESS
    record(pusher, np.full(4, 0.003))
    assert await push(pusher) == MetricExportResult.SUCCESS
    store = SqlStore(api.server.settings.db_url())
    now = datetime.now(UTC)
    stored = total(store.list_rollups("fraud", "3", now - timedelta(hours=1), now + timedelta(hours=1)))
    store.close()
    assert stored.requests == 4 and stored.latency is not None and stored.latency.count == 4


async def test_two_exporters_on_the_same_minutes_add_up(
    any_api: Api, pushers: Pushers, rollups: Callable[[], list[Rollup]]
) -> None:
    await any_api.user("server-1", cp.ROLE_SERVER)
    token = any_api.tokens["server-1"]
    a = pushers(any_api.server.target, token, instance="server-a")
    b = pushers(any_api.server.target, token, instance="server-b")
    rounds = 10
    for round_ in range(rounds):
        record(a, np.full(3, 0.002), amounts=[1, round_])
        record(b, np.full(5, 0.02), amounts=[2])
        results = await asyncio.gather(push(a), push(b))
        assert results == [MetricExportResult.SUCCESS] * 2
    stored = total(rollups())
    assert stored.requests == 8 * rounds
    assert stored.latency is not None and stored.latency.count == 8 * rounds
    assert stored.latency.counts[1] == 3 * rounds and stored.latency.counts[4] == 5 * rounds
    assert stored.sketches[("amount", "numeric")] == {"0": 3 * rounds, "1": sum(range(rounds))}
    assert stored.sketches[("city", "categorical")] == {"paris": 8 * rounds}


# -- tokens --------------------------------------------------------------------------------------------------------


async def _export_status(api: Api, request: Any, metadata: Metadata) -> grpc.StatusCode:
    try:
        await api.metrics.Export(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_exports_need_a_server_or_admin_token(api: Api, pushers: Pushers) -> None:
    request = _request(_sum("conduit.inference.requests", OK, 1))
    assert await _export_status(api, request, ()) == grpc.StatusCode.UNAUTHENTICATED
    assert await _export_status(api, request, bearer("cdt_nobody")) == grpc.StatusCode.UNAUTHENTICATED
    # Even a payload that could not be read: the token is checked first.
    assert await _export_status(api, b"\xff\xff", bearer("cdt_nobody")) == grpc.StatusCode.UNAUTHENTICATED
    for role in (cp.ROLE_VIEWER, cp.ROLE_MAINTAINER):
        metadata = await api.user(f"user-{role}", role)
        assert await _export_status(api, request, metadata) == grpc.StatusCode.PERMISSION_DENIED
    for metadata in (await api.user("server-1", cp.ROLE_SERVER), api.admin):
        assert await _export_status(api, request, metadata) == grpc.StatusCode.OK
    # OpenTelemetry's exporter with a bad token fails and stores nothing.
    refused = pushers(api.server.target, "cdt_nobody")
    record(refused, np.full(5, 0.001))
    assert await push(refused) == MetricExportResult.FAILURE


# -- payloads ------------------------------------------------------------------------------------------------------


def _attributes(values: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def _now_ns() -> int:
    return int(datetime.now(UTC).timestamp() * 1e9)


def _sum(
    name: str, attributes: dict[str, str], value: int, temporality: int = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
) -> metrics_pb2.Metric:
    point = metrics_pb2.NumberDataPoint(attributes=_attributes(attributes), time_unix_nano=_now_ns(), as_int=value)
    data = metrics_pb2.Sum(data_points=[point], aggregation_temporality=temporality, is_monotonic=True)  # type: ignore[arg-type]
    return metrics_pb2.Metric(name=name, sum=data)


def _histogram(name: str, counts: list[int], bounds: list[float], total: float = 0.1) -> metrics_pb2.Metric:
    point = metrics_pb2.HistogramDataPoint(
        attributes=_attributes(OK),
        time_unix_nano=_now_ns(),
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        explicit_bounds=bounds,
    )
    data = metrics_pb2.Histogram(data_points=[point], aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA)
    return metrics_pb2.Metric(name=name, histogram=data)


def _request(*metrics: metrics_pb2.Metric) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.extend(_attributes({"service.instance.id": "server-x"}))
    resource.scope_metrics.add().metrics.extend(metrics)
    return request


def _gauge(name: str) -> metrics_pb2.Metric:
    point = metrics_pb2.NumberDataPoint(attributes=_attributes(OK), time_unix_nano=_now_ns(), as_int=1)
    return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[point]))


def _sum_of(**point: Any) -> metrics_pb2.Metric:
    """A Sum of requests whose one point has ``point``'s fields (``as_int=1`` and the time now by default)."""
    values: dict[str, Any] = {"time_unix_nano": _now_ns(), **point}
    if "as_double" not in values:
        values.setdefault("as_int", 1)
    data = metrics_pb2.Sum(
        data_points=[metrics_pb2.NumberDataPoint(attributes=_attributes(OK), **values)],
        aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
        is_monotonic=True,
    )
    return metrics_pb2.Metric(name="conduit.inference.requests", sum=data)


def _ns_at(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000


MAX_U64 = 2**64 - 1
INVALID = {
    "undecodable": (b"\x0a\xff\xff\xff\xff", "not an OTLP ExportMetricsServiceRequest"),
    "gauge": (_request(_gauge("conduit.inference.requests")), "must be a Sum, not a Gauge"),
    "no status": (_request(_sum("conduit.inference.requests", VERSION, 1)), "needs the attribute 'status'"),
    "no temporality": (
        _request(_sum("conduit.inference.requests", OK, 1, metrics_pb2.AGGREGATION_TEMPORALITY_UNSPECIFIED)),
        "DELTA or CUMULATIVE",
    ),
    "buckets": (_request(_histogram("conduit.inference.duration", [1, 2], [0.1, 0.2])), "one more"),
    "bad bin": (
        _request(_sum("conduit.sketch.bin", {**VERSION, "feature": "amount", "bin": "x"}, 1)),
        "bin 'x' is neither",
    ),
    # Out of range: once answered INTERNAL (the database's BIGINT overflowed) or stored for centuries.
    "count 2^64 - 1": (_request(_sum_of(as_double=float(MAX_U64))), "at most 2^63 - 1"),
    "count NaN": (_request(_sum_of(as_double=float("nan"))), "whole numbers"),
    "negative count": (_request(_sum_of(as_int=-1)), "whole numbers"),
    "histogram count 2^64 - 1": (
        _request(_histogram("conduit.inference.duration", [MAX_U64, 0], [0.1])),
        "at most 2^63 - 1",
    ),
    "histogram sum NaN": (
        _request(_histogram("conduit.inference.duration", [1, 1], [0.1], total=float("nan"))),
        "must be finite",
    ),
    "year 2200": (_request(_sum_of(time_unix_nano=_ns_at(2200))), "day ahead"),
    "time 2^64 - 1": (_request(_sum_of(time_unix_nano=MAX_U64)), "day ahead"),
    "before 2000": (_request(_sum_of(time_unix_nano=_ns_at(1999))), "before 2000"),
    "start in 2200": (_request(_sum_of(start_time_unix_nano=_ns_at(2200))), "start time"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_malformed_payloads_are_invalid_arguments_and_store_nothing(
    any_api: Api, rollups: Callable[[], list[Rollup]], case: str
) -> None:
    payload, says = INVALID[case]
    if isinstance(payload, ExportMetricsServiceRequest):
        # A valid metric in the same request is not stored either: a request is taken whole or not at all.
        payload.resource_metrics[0].scope_metrics[0].metrics.insert(0, _sum("conduit.inference.requests", OK, 9))
        payload = payload.SerializeToString()
    call = any_api.channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(payload, metadata=any_api.admin, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (refused.value.details() or "")
    assert rollups() == []


async def test_counts_adding_up_past_2_63_are_refused_and_leave_the_stored_ones(
    any_api: Api, rollups: Callable[[], list[Rollup]]
) -> None:
    half, at = 2**62, _now_ns()  # one time for every point: one minute's roll-up
    first = _request(_sum_of(as_int=half, time_unix_nano=at))
    assert await _export_status(any_api, first, any_api.admin) == grpc.StatusCode.OK
    # Two points in one export (folded together), then one across exports (added to what is stored).
    both = _request(_sum_of(as_int=half, time_unix_nano=at), _sum_of(as_int=half, time_unix_nano=at))
    call = any_api.channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
    for request in (both, _request(_sum_of(as_int=2**63 - 1, time_unix_nano=at))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(request.SerializeToString(), metadata=any_api.admin, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "2^63 - 1" in (refused.value.details() or "")
    assert total(rollups()).requests == half


async def test_other_metrics_are_ignored(api: Api) -> None:
    request = _request(
        _gauge("process.cpu.utilization"),
        _histogram("conduit.inference.queue.duration", [1, 1], [0.1]),
        _sum("conduit.inference.in_flight", OK, 3),
        _sum("conduit.inference.requests", OK, 2),
    )
    assert await _export_status(api, request, api.admin) == grpc.StatusCode.OK
    store = SqlStore(api.server.settings.db_url())
    now = datetime.now(UTC)
    (stored,) = store.list_rollups("fraud", "3", now - timedelta(hours=1), now + timedelta(hours=1))
    store.close()
    assert stored.requests == 2 and stored.latency is None and stored.sketches == {}


# -- retention -----------------------------------------------------------------------------------------------------


async def test_old_points_are_not_stored_and_old_rollups_are_pruned(start_api: StartApi, sqlite_url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    store = SqlStore(sqlite_url)
    store.add_rollups([Rollup("fraud", "3", now - timedelta(days=d), requests=1) for d in (0, 2, 5)])
    api = await start_api(sqlite_url, monitoring_retention=3, monitoring_prune_interval=0.05)

    def minutes() -> list[datetime]:
        return [r.minute for r in store.list_rollups("fraud", "3", now - timedelta(days=9), now + timedelta(days=1))]

    # The control plane prunes at start, then on its timer.
    await eventually(lambda: minutes() == [now - timedelta(days=2), now], "the 5-day-old roll-up pruned")
    old = _sum("conduit.inference.requests", OK, 5)
    old.sum.data_points[0].time_unix_nano = int((now - timedelta(days=4)).timestamp() * 1e9)
    assert await _export_status(api, _request(old), api.admin) == grpc.StatusCode.OK
    assert minutes() == [now - timedelta(days=2), now]
    store.add_rollups([Rollup("fraud", "3", now - timedelta(days=8), requests=1)])
    await eventually(lambda: minutes() == [now - timedelta(days=2), now], "a roll-up added later pruned on the timer")
    store.close()
