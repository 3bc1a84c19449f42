"""Fixtures shared by every test folder: real models trained here, model repositories, `conduit serve` processes.

Nothing here imports Conduit's generated protocol modules: the interop tests load tritonclient's copy of the same
`inference` protobuf package, and protobuf refuses both in one process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnx import TensorProto, helper
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from trainers.onnx_export import export_sklearn, write_model_version

ROOT = Path(__file__).resolve().parent.parent
# A `conduit serve` stopped by SIGTERM answers for --drain-grace seconds (5 by default) before it drains, for load
# balancers that no test here runs; tests of the grace itself pass the flag.
os.environ.setdefault("CONDUIT_DRAIN_GRACE", "0")
CONDUIT = str(Path(sys.executable).parent / "conduit")

ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


@dataclass(frozen=True)
class TrainedModel:
    """A scikit-learn classifier trained in the test session, its rows and its ONNX export."""

    estimator: Any
    rows: np.ndarray
    onnx: bytes


def train_classifier() -> TrainedModel:
    """Logistic regression on 32 features."""
    x, y = make_classification(n_samples=600, n_features=32, n_informative=12, random_state=7)
    rows = x.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(rows, y)
    return TrainedModel(model, rows, export_sklearn(model, rows[:100]))


@pytest.fixture(scope="session")
def classifier() -> TrainedModel:
    """Logistic regression on 32 features."""
    return train_classifier()


@pytest.fixture(scope="session")
def forest() -> TrainedModel:
    """A small random forest on 8 features, three classes."""
    x, y = make_classification(n_samples=400, n_features=8, n_informative=5, n_classes=3, random_state=3)
    rows = x.astype(np.float32)
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(rows, y)
    return TrainedModel(model, rows, export_sklearn(model, rows[:100]))


def identity_model(datatype: str, dims: tuple[int, ...] = (3,)) -> bytes:
    """An ONNX graph that returns its input ``x`` as ``y``, batched on the first dimension."""
    shape: list[int | str] = ["batch", *dims]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        f"identity_{datatype.lower()}",
        [helper.make_tensor_value_info("x", ONNX_TYPES[datatype], shape)],
        [helper.make_tensor_value_info("y", ONNX_TYPES[datatype], shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture
def repository(tmp_path: Path, classifier: TrainedModel, forest: TrainedModel) -> Path:
    """A model repository: ``classifier`` (v1), ``forest`` (v1), and ``identity_<type>`` for every datatype."""
    repo = tmp_path / "models"
    write_model_version(repo, "classifier", 1, classifier.onnx)
    write_model_version(repo, "forest", 1, forest.onnx, {"max_batch_size": 64})
    for datatype in ONNX_TYPES:
        write_model_version(repo, f"identity_{datatype.lower()}", 1, identity_model(datatype))
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_serving(
    port: int,
    timeout: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Block until the server's gRPC health service answers SERVING (over TLS, as localhost, with ``credentials``)."""
    deadline = time.monotonic() + timeout
    channel = (
        grpc.insecure_channel(f"127.0.0.1:{port}")
        if credentials is None
        else grpc.secure_channel(f"localhost:{port}", credentials)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"conduit serve exited with {process.returncode}")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"server on port {port} not serving after {timeout}s")


@dataclass
class ServeProcess:
    """A `conduit serve` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


StartServe = Callable[..., ServeProcess]


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[StartServe]:
    """Start `conduit serve` processes on free ports; every one still running is killed at teardown."""
    started: list[ServeProcess] = []

    def start(
        repo: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> ServeProcess:
        port, metrics_port = free_port(), free_port()
        log = tmp_path / f"serve-{port}.log"
        args = [CONDUIT, "serve", "--model-repository", str(repo), "--grpc-port", str(port)]
        args += ["--metrics-port", str(metrics_port), *extra]
        with log.open("wb") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        served = ServeProcess(process, port, metrics_port, log)
        started.append(served)
        try:
            wait_serving(port, process=process, credentials=credentials)
        except Exception:
            process.kill()
            raise RuntimeError(f"conduit serve did not start:\n{log.read_text()}") from None
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.process.wait(10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for localhost and 127.0.0.1, and its key: cert.pem and key.pem in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


SECRET_LINE = "root:x:0:0:conduit-secret-line:/root:/bin/bash"
"""The first line of ``bait``'s file: no error, log or page may ever show it."""


@dataclass(frozen=True)
class Bait:
    """A file only the test should read, also served over HTTP by a server in a process of its own."""

    file: Path
    url: str
    access_log: Path

    def requests(self) -> list[str]:
        """The requests the HTTP server answered (the lines it logged)."""
        return [line for line in self.access_log.read_text().splitlines() if '"GET ' in line or '"HEAD ' in line]


@pytest.fixture
def bait(tmp_path: Path) -> Iterator[Bait]:
    """A CSV file starting with ``SECRET_LINE``, and its URL on a plain HTTP server on 127.0.0.1."""
    served = tmp_path / "bait"
    served.mkdir()
    file = served / "secret.csv"
    file.write_text(f"{SECRET_LINE}\nsecond\n")
    access_log = tmp_path / "bait-access.log"
    # Its own process: polars holds the GIL while it fetches, so a server thread of the test's could never answer.
    with access_log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(served)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
        port = int(banner.split(" port ")[1].split()[0])
        yield Bait(file, f"http://127.0.0.1:{port}/{file.name}", access_log)
    finally:
        process.kill()
        process.wait()
