"""End-to-end fixtures: `conduit control-plane` and `conduit serve --control-plane` as real processes, the CLI as
a subprocess, and a load generator that counts every failed request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sklearn.linear_model import LogisticRegression

from clients import ConduitError, InferenceClient
from clients._channel import Target
from tests.conftest import CONDUIT, TrainedModel, free_port
from trainers.onnx_export import export_sklearn

ADMIN_TOKEN = "cdt_e2e-admin-token-0123456789abcdef0123456789"
# Following servers authenticate their callers as the control plane's users; the admin's token is one of them.
CALLER = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
MODEL = "credit"
# A logistic regression on the bundled credit data: its inputs are four numbers and two categories.
CREDIT_SPEC = """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age", "income", "debt", "months_at_address"]
categorical = ["city", "employment"]
[cleaning]
impute = "median"
[split]
method = "stratified"
test_size = 0.3
seed = 1
[model]
task = "binary"
estimator = "logistic_regression"
params = { max_iter = 500 }
"""


def wait_health(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Block until the process's gRPC health service answers SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(grpc.RpcError):
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not serving after {timeout}s:\n{log.read_text()}")


def eventually(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not hold within {timeout}s")


@dataclass
class Process:
    """A Conduit process on a fixed port, which can be killed and started again with the same arguments."""

    args: list[str]
    port: int
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        wait_health(self.port, self.process, self.log)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)


@dataclass
class Cluster:
    """A control plane, the inference servers following it, and a CLI bound to them."""

    home: Path
    tmp: Path
    control_plane: Process
    servers: list[Process] = field(default_factory=list)
    server_token: str = ""

    def cli(self, *args: str, token: str = ADMIN_TOKEN, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `conduit ARGS` against the control plane."""
        env = {**os.environ, "CONDUIT_CONTROL_PLANE": self.control_plane.address, "CONDUIT_TOKEN": token}
        done = subprocess.run([CONDUIT, *args], check=False, capture_output=True, text=True, env=env, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"conduit {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def serve(self, *, pool: str = "default", cache: str = "cache") -> Process:
        """Start `conduit serve --control-plane` (not started yet when a server token is missing)."""
        if not self.server_token:
            self.server_token = self.cli("users", "create", "server-1", "--role", "server").stdout.strip()
        port = free_port()
        args = [CONDUIT, "serve", "--control-plane", self.control_plane.address, "--pool", pool]
        args += ["--token", self.server_token, "--cache-dir", str(self.tmp / cache), "--grpc-port", str(port)]
        args += ["--metrics-port", "0", "--heartbeat-interval", "0.5"]
        server = Process(args, port, self.tmp / f"serve-{port}.log", dict(os.environ))
        self.servers.append(server)
        return server.start()


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[[str], Cluster]]:
    """Start a control plane on ``db`` (a SQLAlchemy URL, or "" for the default SQLite file in its home)."""
    clusters: list[Cluster] = []

    def start(db: str = "") -> Cluster:
        home = tmp_path / "home"
        port = free_port()
        args = [CONDUIT, "control-plane", "--home", str(home), "--grpc-port", str(port)]
        if db:
            args += ["--db", db]
        env = {**os.environ, "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN, "CONDUIT_CP_SERVER_TIMEOUT": "5"}
        control_plane = Process(args, port, tmp_path / "control-plane.log", env).start()
        cluster = Cluster(home, tmp_path, control_plane)
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        for server in cluster.servers:
            server.stop()
        cluster.control_plane.stop()


@pytest.fixture(scope="session")
def challenger(classifier: TrainedModel) -> TrainedModel:
    """A second version of ``classifier``: same inputs and outputs, different weights (its answers tell it apart)."""
    return train_challenger(classifier)


def train_challenger(classifier: TrainedModel) -> TrainedModel:
    """A second version of ``classifier``: same inputs and outputs, different weights."""
    rows = classifier.rows
    labels = classifier.estimator.predict(rows)
    flipped = np.where(np.arange(len(labels)) % 3 == 0, 1 - labels, labels)
    model = LogisticRegression(C=0.05, max_iter=1000).fit(rows, flipped)
    return TrainedModel(model, rows, export_sklearn(model, rows[:100]))


@dataclass
class Load:
    """Requests sent continuously from a few threads until stopped; every failure is kept."""

    target: Target
    rows: np.ndarray
    threads: int = 3
    versions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    last_version: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, index: int) -> None:
        with InferenceClient(self.target, timeout=10.0, metadata=CALLER) as client:
            i = index
            while not self._stop.is_set():
                row = self.rows[i % len(self.rows) : i % len(self.rows) + 1]
                i += self.threads
                try:
                    result = client.infer(MODEL, {"input": row})
                except ConduitError as exc:
                    with self._lock:
                        self.errors.append(f"{exc.code.name}: {exc.message}")
                    continue
                with self._lock:
                    self.versions[result.model_version] += 1
                    self.last_version = result.model_version

    def __enter__(self) -> Load:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def count(self) -> int:
        with self._lock:
            return sum(self.versions.values()) + len(self.errors)

    def wait_for_version(self, version: str, timeout: float = 30.0) -> None:
        """Until responses come from ``version`` (and keep coming: the switch is complete, not a canary)."""

        def switched() -> bool:
            with self._lock:
                start = sum(self.versions.values())
                if self.last_version != version:
                    return False
            time.sleep(0.2)
            with self._lock:
                return self.last_version == version and sum(self.versions.values()) > start

        eventually(switched, timeout, f"traffic served by version {version}")
