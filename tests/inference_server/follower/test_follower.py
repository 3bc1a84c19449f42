"""A server following a real control plane: it serves what its pool is assigned, switches versions and rolls back
under load without failing a request, keeps serving while the control plane is down and converges once it is back,
and a restart without the control plane serves the last assignments from its cache."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from contract.client import ControlPlaneClient
from contract.entities import Lineage, Role
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from inference_server.app import InferenceServer
from inference_server.follower import Follower
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.conftest import CONDUIT, TrainedModel, free_port, wait_serving
from tests.inference_server.conftest import Connect, StartServer
from trainers.onnx_export import export_sklearn

ADMIN_TOKEN = "admin-token-for-tests"
POOL = "default"
MODEL = "fraud"
POLL = 0.05
BOUND = 20.0
# A following test server: heartbeats and reconnections fast enough that a test waits fractions of a second.
FOLLOW = {"heartbeat_interval": 0.2, "reconnect_backoff_initial": 0.05, "reconnect_backoff_max": 0.3}
LOAD_TASKS = 4


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` every 50 ms until it holds, for at most 20 s."""
    deadline = time.monotonic() + BOUND
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND}s"
        await asyncio.sleep(POLL)


@pytest.fixture(scope="module")
def other_classifier(classifier: TrainedModel) -> TrainedModel:
    """A second model over the classifier's rows, so two versions are different artifacts."""
    rng = np.random.default_rng(5)
    labels = (classifier.rows[:, 0] + rng.normal(0, 1, len(classifier.rows)) > 0).astype(int)
    model = LogisticRegression(max_iter=500, C=0.1).fit(classifier.rows, labels)
    return TrainedModel(model, classifier.rows, export_sklearn(model, classifier.rows[:100]))


@dataclass
class ControlPlane:
    """An in-process control plane on a fixed port and database, with an admin client; restartable."""

    home: Path
    port: int
    tls: tuple[Path, Path] | None = None
    watch_poll_interval: float = 0.5
    server: ControlPlaneServer | None = None
    api: ControlPlaneClient | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> ControlPlaneClient:
        assert self.api is not None, "start the control plane first"
        return self.api

    async def start(self) -> None:
        cert, key = self.tls if self.tls is not None else (None, None)
        settings = ControlPlaneSettings(
            home=self.home,
            host="127.0.0.1",
            grpc_port=self.port,
            admin_token=ADMIN_TOKEN,
            tls_cert=cert,
            tls_key=key,
            watch_poll_interval=self.watch_poll_interval,
        )
        self.server = ControlPlaneServer(settings)
        self.port = await self.server.start()
        if self.api is None:
            ca = None if cert is None else cert.read_bytes()
            self.api = ControlPlaneClient.connect(self.address, token=ADMIN_TOKEN, root_certificates=ca)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None

    async def server_token(self, name: str) -> str:
        _, token = await self.admin.create_user(name, Role.SERVER)
        return token

    async def viewer_token(self, name: str = "caller") -> str:
        """A viewer's token: what a following server's callers need."""
        _, token = await self.admin.create_user(name, Role.VIEWER)
        return token

    async def register(self, payload: bytes, *, model: str = MODEL, lineage: Lineage | None = None) -> int:
        """Register a new version of ``model`` from ONNX bytes."""
        path = self.home.parent / f"upload-{hashlib.sha256(payload).hexdigest()[:16]}.onnx"
        path.write_bytes(payload)
        return (await self.admin.register_version(model, path, lineage=lineage)).version

    async def set_production(self, version: int) -> None:
        await self.admin.set_alias(MODEL, "production", version)

    async def deploy(self, version: int = 0, *, alias: str = "", canary_version: int = 0, percent: float = 0.0) -> None:
        """Deploy ``MODEL`` on ``POOL``."""
        await self.admin.deploy(
            POOL, MODEL, alias=alias, version=version, canary_version=canary_version, canary_percent=percent
        )

    def stored_artifact(self, payload: bytes) -> Path:
        """Where the control plane's local artifact store keeps ``payload``."""
        digest = hashlib.sha256(payload).hexdigest()
        return self.home / "artifacts" / "sha256" / digest[:2] / digest


async def _run_control_plane(plane: ControlPlane) -> AsyncIterator[ControlPlane]:
    await plane.start()
    yield plane
    await plane.stop()
    if plane.api is not None:
        await plane.api.close()


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async for plane in _run_control_plane(ControlPlane(tmp_path / "control-plane", free_port())):
        yield plane


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key; self-signed, so the certificate is also the CA callers trust."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cp.crt", directory / "cp.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_control_plane(tmp_path: Path, self_signed: tuple[Path, Path]) -> AsyncIterator[ControlPlane]:
    """A control plane serving TLS."""
    async for plane in _run_control_plane(ControlPlane(tmp_path / "control-plane", free_port(), self_signed)):
        yield plane


@dataclass
class Load:
    """Requests without a version sent back to back by a few tasks; every answer and failure is counted."""

    stub: pb_grpc.GRPCInferenceServiceStub
    row: np.ndarray
    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run()) for _ in range(LOAD_TASKS)]

    async def _run(self) -> None:
        while not self.stop.is_set():
            request = pb.ModelInferRequest(model_name=MODEL)
            request.inputs.add(name="input", datatype="FP32", shape=self.row.shape)
            request.raw_input_contents.append(self.row.tobytes())
            try:
                answer = await self.stub.ModelInfer(request, timeout=10)
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code()}: {exc.details()}")  # type: ignore[attr-defined]
            else:
                self.answered[answer.model_version] += 1

    async def served_only(self, version: int) -> bool:
        """Whether the next requests sent are all answered by ``version``."""
        await self._answers(LOAD_TASKS)  # the requests already in flight may have been routed before
        before = Counter(self.answered)
        await self._answers(20)
        return set(self.answered - before) == {str(version)}

    async def _answers(self, count: int) -> None:
        before = Counter(self.answered)
        deadline = time.monotonic() + BOUND
        while sum((self.answered - before).values()) < count:
            assert time.monotonic() < deadline, "the load generator stalled"
            assert not self.failures, self.failures
            await asyncio.sleep(POLL)

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


async def served_versions(server: InferenceServer) -> list[str]:
    return server.models.versions(MODEL)


async def start_following(
    start_server: StartServer, plane: ControlPlane, token: str, cache: Path, **settings: Any
) -> InferenceServer:
    running = await start_server(
        None, control_plane=plane.address, token=token, cache_dir=cache, **{**FOLLOW, **settings}
    )
    return running.server


async def test_follows_deployments_switches_and_rolls_back_under_load(
    control_plane: ControlPlane,
    start_server: StartServer,
    connect: Connect,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
) -> None:
    token = await control_plane.server_token("server-a")
    viewer = await control_plane.viewer_token()
    v1 = await control_plane.register(classifier.onnx)
    v2 = await control_plane.register(other_classifier.onnx)
    await control_plane.set_production(v1)
    await control_plane.deploy(alias="production")

    server = await start_following(start_server, control_plane, token, tmp_path / "cache")
    await eventually(lambda: _is(served_versions(server), [str(v1)]), "v1 served")
    load = Load(connect(server.port, viewer), classifier.rows[:1])
    load.start()
    try:
        assert await load.served_only(v1)
        await control_plane.set_production(v2)
        await eventually(lambda: _is(served_versions(server), [str(v2)]), "switch to v2")
        assert await load.served_only(v2)
        await control_plane.set_production(v1)  # rollback: the lower version becomes the primary again
        await eventually(lambda: _is(served_versions(server), [str(v1)]), "rollback to v1")
        assert await load.served_only(v1)
    finally:
        await load.finish()
    assert load.failures == []
    assert load.answered[str(v1)] > 0 and load.answered[str(v2)] > 0

    async def reported() -> bool:
        servers = await control_plane.admin.list_servers(POOL)
        (status,) = [s for s in servers if s.record.id == follower(server).server_id]
        entry = status.record
        models = [(m.model, m.version, m.state) for m in entry.models]
        return status.alive and models == [(MODEL, v1, "READY")] and entry.generation == follower(server).generation

    await eventually(reported, "a heartbeat with READY v1 in ListServers")


async def test_canary_deployment_splits_traffic(
    control_plane: ControlPlane,
    start_server: StartServer,
    connect: Connect,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
) -> None:
    token = await control_plane.server_token("server-c")
    viewer = await control_plane.viewer_token()
    v1 = await control_plane.register(classifier.onnx)
    v2 = await control_plane.register(other_classifier.onnx)
    await control_plane.deploy(v1, canary_version=v2, percent=50.0)
    server = await start_following(start_server, control_plane, token, tmp_path / "cache")
    await eventually(lambda: _is(served_versions(server), [str(v1), str(v2)]), "primary and canary served")
    assert server.models.routing(MODEL) == (str(v1), str(v2), 50.0)
    load = Load(connect(server.port, viewer), classifier.rows[:1])
    load.start()
    try:
        await eventually(lambda: _true(min(load.answered[str(v1)], load.answered[str(v2)]) >= 50), "both answer")
    finally:
        await load.finish()
    assert load.failures == []
    # Promoting the canary: the pinned primary moves to v2, the canary goes, v1 drains.
    await control_plane.deploy(v2)
    await eventually(lambda: _is(served_versions(server), [str(v2)]), "v2 alone")
    assert server.models.routing(MODEL) == (str(v2), "", 0.0)


async def test_control_plane_down_under_load_then_back(
    control_plane: ControlPlane,
    start_server: StartServer,
    connect: Connect,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
) -> None:
    token = await control_plane.server_token("server-b")
    viewer = await control_plane.viewer_token()
    v1 = await control_plane.register(classifier.onnx)
    v2 = await control_plane.register(other_classifier.onnx)
    await control_plane.set_production(v1)
    await control_plane.deploy(alias="production")
    server = await start_following(start_server, control_plane, token, tmp_path / "cache")
    await eventually(lambda: _is(served_versions(server), [str(v1)]), "v1 served")
    load = Load(connect(server.port, viewer), classifier.rows[:1])
    load.start()
    try:
        await eventually(lambda: _true(follower(server).connected), "following")
        await control_plane.stop()
        await eventually(lambda: _true(not follower(server).connected), "the follower noticing")
        assert await load.served_only(v1)  # served throughout, by what it had
        await control_plane.start()  # same port, same database
        await eventually(lambda: _true(follower(server).connected), "reconnected")
        await control_plane.set_production(v2)
        await eventually(lambda: _is(served_versions(server), [str(v2)]), "converged on v2")
        assert await load.served_only(v2)
    finally:
        await load.finish()
    assert load.failures == []


async def test_artifact_unavailable_is_retried_until_it_is_served(
    control_plane: ControlPlane,
    start_server: StartServer,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = await control_plane.server_token("server-retry")
    v1 = await control_plane.register(classifier.onnx)
    v2 = await control_plane.register(other_classifier.onnx)
    await control_plane.set_production(v1)
    await control_plane.deploy(alias="production")
    server = await start_following(start_server, control_plane, token, tmp_path / "cache")
    await eventually(lambda: _is(served_versions(server), [str(v1)]), "v1 served")

    # v2's artifact goes missing from the control plane's store: every download of it fails until it is back.
    stored = control_plane.stored_artifact(other_classifier.onnx)
    hidden = tmp_path / "hidden-artifact"
    stored.rename(hidden)
    caplog.set_level(logging.WARNING, logger="conduit.follower")
    await control_plane.set_production(v2)

    def failed_downloads() -> int:
        return sum(f"download of version {v2} failed" in r.getMessage() for r in caplog.records)

    # The watch's apply, then at least two retries: more than a single retry is what is checked.
    await eventually(lambda: _true(failed_downloads() >= 3), "three failed downloads")
    assert await served_versions(server) == [str(v1)] and MODEL in follower(server).reconciler.failures()
    hidden.rename(stored)
    await eventually(lambda: _is(served_versions(server), [str(v2)]), "v2 served once its artifact is back")
    assert follower(server).reconciler.failures() == {}


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[ControlPlane, ControlPlane]]:
    """Two control plane replicas on one database; the first checks the database for changes once an hour only."""
    home = tmp_path / "control-plane"
    async for quiet in _run_control_plane(ControlPlane(home, free_port(), watch_poll_interval=3600.0)):
        async for other in _run_control_plane(ControlPlane(home, free_port())):
            yield quiet, other


async def test_watch_that_misses_a_change_is_reopened_by_the_heartbeat_check(
    replicas: tuple[ControlPlane, ControlPlane],
    start_server: StartServer,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
) -> None:
    # The follower watches the quiet replica: a change made through the other one reaches the stream only after an
    # hour, as if its notification were lost. The quiet replica's heartbeat answers read the database, so they show
    # the pool moving while the stream stays silent.
    quiet, other = replicas
    token = await quiet.server_token("server-stuck")
    v1 = await quiet.register(classifier.onnx)
    v2 = await quiet.register(other_classifier.onnx)
    await quiet.deploy(v1)
    server = await start_following(start_server, quiet, token, tmp_path / "cache")
    await eventually(lambda: _is(served_versions(server), [str(v1)]), "v1 served")
    await eventually(lambda: _true(follower(server).connected), "following")

    await other.deploy(v2)
    await eventually(lambda: _is(served_versions(server), [str(v2)]), "v2 served through a reopened watch")


async def test_restart_without_control_plane_serves_the_cache(
    control_plane: ControlPlane,
    start_server: StartServer,
    connect: Connect,
    tmp_path: Path,
    classifier: TrainedModel,
    other_classifier: TrainedModel,
) -> None:
    token = await control_plane.server_token("server-r")
    viewer = await control_plane.viewer_token()
    v1 = await control_plane.register(classifier.onnx)
    v2 = await control_plane.register(other_classifier.onnx)
    await control_plane.deploy(v1, canary_version=v2, percent=10)
    cache = tmp_path / "cache"
    first = await start_following(start_server, control_plane, token, cache)
    await eventually(lambda: _is(served_versions(first), [str(v1), str(v2)]), "v1 and canary v2 served")
    # Versions serve before the apply records them in the cache; stopping in between would leave nothing to restore.
    await eventually(lambda: _true(follower(first).generation > 0), "the applied assignments recorded")
    generation = follower(first).generation
    await first.stop()
    await control_plane.stop()

    second = await start_following(start_server, control_plane, token, cache)
    # Served as soon as start() returns: from the cache, with the canary split, no control plane involved.
    assert await served_versions(second) == [str(v1), str(v2)]
    assert second.models.routing(MODEL) == (str(v1), str(v2), 10.0)
    assert follower(second).generation == generation and not follower(second).connected
    stub = connect(second.port, viewer)  # the callers the first server fetched, from the cache
    request = pb.ModelInferRequest(model_name=MODEL, model_version=str(v1))
    request.inputs.add(name="input", datatype="FP32", shape=classifier.rows[:1].shape)
    request.raw_input_contents.append(classifier.rows[:1].tobytes())
    assert (await stub.ModelInfer(request)).model_version == str(v1)


async def test_conduit_serve_follows_over_tls_and_stops_on_sigterm(
    tls_control_plane: ControlPlane, tmp_path: Path, classifier: TrainedModel
) -> None:
    plane = tls_control_plane
    token = await plane.server_token("server-cli")
    viewer = await plane.viewer_token()
    v1 = await plane.register(classifier.onnx)
    await plane.deploy(v1)
    port = free_port()
    args = [CONDUIT, "serve", "--control-plane", plane.address, "--control-plane-ca", str(plane.tls[0])]  # type: ignore[index]
    args += ["--cache-dir", str(tmp_path / "cache"), "--grpc-port", str(port), "--metrics-port", "0"]
    args += ["--heartbeat-interval", "0.2", "--instance-name", "cli-server"]
    log = tmp_path / "serve.log"
    # The token comes from the environment, as a deployment would pass a secret.
    process = spawn(args, log, {"CONDUIT_TOKEN": token})
    try:
        await asyncio.to_thread(wait_serving, port, 60.0, process)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

            async def ready() -> bool:
                request = pb.ModelReadyRequest(name=MODEL, version=str(v1))
                answer = await stub.ModelReady(request, metadata=(("authorization", f"Bearer {viewer}"),))
                return bool(answer.ready)

            await eventually(ready, "v1 served by conduit serve")

        async def listed() -> bool:
            servers = [status.record for status in await plane.admin.list_servers(POOL)]
            return [(s.name, s.address, [m.state for m in s.models]) for s in servers] == [
                ("cli-server", f"127.0.0.1:{port}", ["READY"])
            ]

        await eventually(listed, "the server's heartbeat")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})


def follower(server: InferenceServer) -> Follower:
    assert server.follower is not None
    return server.follower


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value
