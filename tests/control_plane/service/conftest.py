"""Fixtures of the control-plane API tests: a real ``ControlPlaneServer`` on a free loopback port, reached through the
generated stub over a real channel.

- ``start_api``: start a control plane on a database URL (settings overridable, alerting settings and the train
  jobs' command too) and connect to it; stopped at teardown.
- ``api``: one on a migrated SQLite file in ``tmp_path`` with a local artifact directory.
- ``any_api``: the same, parametrised over SQLite and PostgreSQL (the shared ``store_url`` fixture).
- ``model_bytes``: the ONNX export of the session's trained classifier (32 FP32 features -> label, probabilities).
- ``Pusher``: OpenTelemetry's SDK instruments of the metric contract and its OTLP/gRPC exporter, pushing to a control
  plane; ``push()`` exports what was recorded since the last push (or since the start, with CUMULATIVE).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource

from control_plane.alerting import DEFAULT_TRAIN_COMMAND, AlertingSettings
from control_plane.app import ControlPlaneServer
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.service import Clock, utc_now
from control_plane.settings import ControlPlaneSettings
from tests.conftest import TrainedModel

ADMIN_TOKEN = "cdt_test-admin-token-0123456789abcdefghijklmnopq"
CHUNK = 64 * 1024

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def files(root: Path) -> list[Path]:
    """Every file under ``root`` (none when it does not exist)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """For states of the server's file system that no call reports: poll ``check`` until it holds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within}s")
        await asyncio.sleep(0.01)


def header_request(model: str, payload: bytes, **fields: Any) -> cp.RegisterVersionRequest:
    header = cp.RegisterVersionHeader(
        model=model, sha256=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload), **fields
    )
    return cp.RegisterVersionRequest(header=header)


def upload_requests(model: str, payload: bytes, chunk: int = CHUNK, **fields: Any) -> list[cp.RegisterVersionRequest]:
    """The messages of an upload: the header, then the bytes in chunks."""
    chunks = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    return [header_request(model, payload, **fields), *(cp.RegisterVersionRequest(chunk=c) for c in chunks)]


@dataclass
class Api:
    """A running control plane and a stub connected to it; calls default to the admin's token."""

    server: ControlPlaneServer
    channel: grpc.aio.Channel
    stub: Any
    home: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> Metadata:
        return bearer(ADMIN_TOKEN)

    @property
    def metrics(self) -> Any:
        """A stub of the OTLP metrics receiver served on the same port."""
        return metrics_service_pb2_grpc.MetricsServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def spool(self) -> Path:
        return self.home / "tmp"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    async def user(self, name: str, role: cp.Role.ValueType) -> Metadata:
        """Create a user; the metadata that authenticates as it."""
        created = await self.stub.CreateUser(cp.CreateUserRequest(name=name, role=role), metadata=self.admin)
        self.tokens[name] = created.token
        return bearer(created.token)

    async def register(
        self,
        model: str,
        payload: bytes,
        *,
        metadata: Metadata | None = None,
        create_model: bool = True,
        **fields: Any,
    ) -> cp.ModelVersion:
        requests = upload_requests(model, payload, create_model=create_model, **fields)
        version: cp.ModelVersion = await self.stub.RegisterVersion(
            iter(requests), metadata=metadata or self.admin, timeout=60
        )
        return version

    async def watched(self, model: str, payload: bytes, alias: str = "production") -> None:
        """A version of ``model`` with ``alias`` on it: what an alert rule on ``MODEL@ALIAS`` needs to exist."""
        await self.register(model, payload, aliases=[alias])

    async def snapshot(self) -> tuple[list[str], list[Path]]:
        """What the registry and artifact store hold: every version of every model, every artifact file."""
        listing = await self.stub.ListModels(cp.ListModelsRequest(include_archived=True), metadata=self.admin)
        versions = []
        for model in listing.models:
            page = await self.stub.ListVersions(cp.ListVersionsRequest(model=model.name), metadata=self.admin)
            versions += [f"{v.model}:{v.version}:{v.sha256}" for v in page.versions]
        return [m.name for m in listing.models] + versions, files(self.artifacts)


StartApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_api(tmp_path: Path) -> AsyncIterator[StartApi]:
    started: list[Api] = []

    async def start(
        db: str,
        *,
        home: Path | None = None,
        clock: Clock | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        channel_host: str = "127.0.0.1",
        alerting: AlertingSettings | None = None,
        train_command: Sequence[str] = DEFAULT_TRAIN_COMMAND,
        **overrides: Any,
    ) -> Api:
        home = home or tmp_path / f"home-{len(started)}"
        values: dict[str, Any] = {
            "home": home,
            "db": db,
            "grpc_port": 0,
            "admin_token": ADMIN_TOKEN,
            "watch_poll_interval": 0.05,
        }
        settings = ControlPlaneSettings(**{**values, **overrides})
        server = ControlPlaneServer(settings, alerting=alerting, clock=clock or utc_now, train_command=train_command)
        await server.start()
        target = f"{channel_host}:{server.port}"
        if channel_credentials is None:
            channel = grpc.aio.insecure_channel(target)
        else:
            channel = grpc.aio.secure_channel(target, channel_credentials)
        api = Api(server, channel, cp_grpc.ControlPlaneStub(channel), home)  # type: ignore[no-untyped-call]
        started.append(api)
        return api

    yield start
    for api in reversed(started):
        await api.channel.close()
        await api.server.stop(grace=1.0)


@pytest.fixture
async def api(start_api: StartApi, sqlite_url: str) -> Api:
    return await start_api(sqlite_url)


@pytest.fixture
async def any_api(start_api: StartApi, store_url: str) -> Api:
    return await start_api(store_url)


@pytest.fixture(scope="session")
def model_bytes(classifier: TrainedModel) -> bytes:
    return classifier.onnx


async def read_all(call: Iterable[Any] | Any) -> list[Any]:
    """Every message of a server stream."""
    return [message async for message in call]


LATENCY_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


class Pusher:
    """The instruments an inference server exports to the control plane, with its OTLP/gRPC exporter.

    ``push()`` blocks (the exporter is synchronous): call it from a thread while the control plane runs on the loop.
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        instance: str = "server-a",
        temporality: AggregationTemporality = AggregationTemporality.DELTA,
    ) -> None:
        preferred = {Counter: temporality, Histogram: temporality}
        self.reader = InMemoryMetricReader(
            preferred_temporality=preferred,
            preferred_aggregation={Histogram: ExplicitBucketHistogramAggregation(LATENCY_BOUNDS)},
        )
        self.exporter = OTLPMetricExporter(
            endpoint=target,
            insecure=True,
            headers=(("authorization", f"Bearer {token}"),),
            timeout=10,
            preferred_temporality=preferred,
        )
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=Resource.create({"service.instance.id": instance})
        )
        meter = self.provider.get_meter("conduit.inference_server")
        self.requests = meter.create_counter("conduit.inference.requests")
        self.duration = meter.create_histogram("conduit.inference.duration", unit="s")
        self.bins = meter.create_counter("conduit.sketch.bin")
        self.categories = meter.create_counter("conduit.sketch.category")

    def sketch(self, version: dict[str, str], feature: str, counts: Mapping[str, int], *, numeric: bool) -> None:
        """Count a feature's values per bin (``numeric``) or category, as ``conduit.sketch.*`` points."""
        counter, key = (self.bins, "bin") if numeric else (self.categories, "category")
        for value, count in counts.items():
            counter.add(count, {**version, "feature": feature, key: value})

    def push(self) -> MetricExportResult:
        data = self.reader.get_metrics_data()
        # A delta reader with nothing new has nothing to export, as the SDK's periodic reader would not.
        return MetricExportResult.SUCCESS if data is None else self.exporter.export(data)

    def close(self) -> None:
        self.provider.shutdown()
        self.exporter.shutdown()


@pytest.fixture
def pushers() -> Iterator[Callable[..., Pusher]]:
    """``pushers(target, token, **options)``: a new ``Pusher``, shut down at teardown."""
    made: list[Pusher] = []

    def make(target: str, token: str, **options: Any) -> Pusher:
        made.append(Pusher(target, token, **options))
        return made[-1]

    yield make
    for pusher in made:
        pusher.close()
