"""`conduit demo`: import a data set, train and tune a model, register, deploy and serve it, predict, report latency.

Runs on the embedded defaults with nothing but the installed package: a control plane on a temporary SQLite file
and artifact directory, one `conduit serve --control-plane` process following it, and the Python clients, all on
free loopback ports. The inference calls carry a viewer's token, as a following server requires; with a certificate
and key the server also serves TLS, and the client trusts that certificate as its CA.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hdrh.histogram import HdrHistogram

from clients import ConduitError, InferenceClient
from clients._cli_inference import pem_flag
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from contract.entities import Role
from trainers import bundled, load_spec, train

__all__ = ["DemoTLS", "demo_tls", "run_demo"]

MODEL = "credit-default"
DATASET = "credit"
POOL = "default"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class DemoTLS:
    """The inference server's certificate and key (PEM files), and the certificate's bytes, which the client trusts."""

    cert: Path
    key: Path
    ca: bytes

    def credentials(self) -> grpc.ChannelCredentials:
        """The client's side: TLS trusting the server's own certificate."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca)


def demo_tls(cert: Path | None, key: Path | None) -> DemoTLS | None:
    """The demo's TLS set-up from ``--tls-cert`` and ``--tls-key``; None when neither is given.

    Raises:
        ValueError: one without the other, or a file that cannot be read or holds no PEM block; names the flag.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert needs --tls-key" if key is None else "--tls-key needs --tls-cert")
    ca = pem_flag(cert, "--tls-cert")
    pem_flag(key, "--tls-key")
    return DemoTLS(cert, key, ca)


def _wait_healthy(
    port: int,
    process: subprocess.Popen[bytes],
    what: str,
    timeout: float = 60.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
    with channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typed without its methods
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with code {process.returncode}")
            with contextlib.suppress(grpc.RpcError):
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not become ready")


def _wait_model(client: InferenceClient, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "not ready"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"conduit serve exited with code {server.returncode}")
        try:
            if client.model_ready(MODEL, timeout=1.0):
                return
        except ConduitError as exc:
            last = exc.message
        time.sleep(0.1)
    raise TimeoutError(f"the server did not load {MODEL} ({last})")


@contextlib.contextmanager
def _process(
    command: list[str],
    what: str,
    port: int,
    env: dict[str, str],
    credentials: grpc.ChannelCredentials | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env)
    try:
        _wait_healthy(port, process, what, credentials=credentials)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
            print(f"{what} stopped (exit code {code})")


DEMO_SPEC = f"""
# The demo's training run: credit default from the bundled credit table (string categories, gaps, a derived ratio),
# a random forest tuned briefly by Optuna, registered as {MODEL}@production.
[dataset]
name = "{DATASET}"
target = "default"

[features]
numeric = ["age", "income", "debt", "debt_ratio", "months_at_address"]
categorical = ["city", "employment"]

[cleaning]
drop_duplicates = true
clip = {{ debt_ratio = [0.0, 3.0] }}
derived = {{ debt_ratio = "debt / income" }}

[split]
method = "stratified"
test_size = 0.2
seed = 7

[model]
task = "binary"
estimator = "random_forest"
params = {{ n_estimators = 60, min_samples_leaf = 5 }}

[search]
trials = 8
metric = "roc_auc"
study = "demo-credit"
space = {{ n_estimators = [20, 80], max_depth = [3, 10] }}

[register]
name = "{MODEL}"
alias = "production"
"""


def _rows(inputs: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: values[start:stop] for name, values in inputs.items()}


def run_demo(*, requests: int = 2000, workdir: Path | None = None, tls: DemoTLS | None = None) -> int:
    """Run the demo end to end; returns the process exit code.

    Args:
        requests: Single-row requests to time.
        workdir: Where the control plane's home and the server's cache live; a temporary directory when None.
        tls: Serve the inference port with this certificate and key (``demo_tls`` checks them); plaintext when None.
    """
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conduit-demo-")))
        home = root / "home"
        admin_token = "cdt_" + secrets.token_urlsafe(32)
        env = {**os.environ, "CONDUIT_ADMIN_TOKEN": admin_token}
        cp_port, serve_port = _free_port(), _free_port()
        control_plane = [sys.executable, "-m", "clients.cli", "control-plane", "--home", str(home)]
        control_plane += ["--grpc-port", str(cp_port), "--log-level", "WARNING"]
        stack.enter_context(_process(control_plane, "control plane", cp_port, env))
        address = f"127.0.0.1:{cp_port}"
        print(f"control plane on {address} (SQLite registry and artifacts in {home})")

        with SyncControlPlaneClient.connect(address, token=admin_token) as registry:
            dataset, _ = import_frame(
                registry, bundled.load(DATASET), DATASET, source=f"bundled:{DATASET}", target="default"
            )
            print(f"imported data set {DATASET}:{dataset.version} ({dataset.profile.rows} rows, profiled)")
            spec_file = root / "credit.toml"
            spec_file.write_text(DEMO_SPEC)
            spec = load_spec(spec_file)
            frame, stored = fetch_dataset(registry, DATASET, dataset.version)
            # The study lives in the control plane's database, where other `conduit train` workers could join it.
            study_db = f"sqlite:///{home / 'registry.db'}"
            result = train(spec, frame, dataset_version=stored.version, study_storage=study_db, log=print)
            print(
                f"held-out: ROC-AUC {result.metrics['roc_auc']:.3f}, KS {result.metrics['ks']:.3f}, "
                f"accuracy {result.metrics['accuracy']:.3f}"
            )
            version = register_result(registry, result, model=MODEL, aliases=["production"])
            print(f"registered {MODEL} version {version.version} (sha256 {version.sha256[:12]}…) as production")
            deployment = registry.run(registry.api.deploy(POOL, MODEL, alias="production"))
            print(f"deployed {MODEL}@production to pool {deployment.pool}")
            _, server_token = registry.run(registry.api.create_user("demo-server", Role.SERVER))
            # The server authenticates its callers as the control plane's users: the demo calls as a viewer.
            _, caller_token = registry.run(registry.api.create_user("demo-caller", Role.VIEWER))

            serve = [sys.executable, "-m", "clients.cli", "serve", "--control-plane", address, "--pool", POOL]
            serve += ["--cache-dir", str(root / "serve-cache")]
            serve += ["--grpc-port", str(serve_port), "--metrics-port", "0", "--log-level", "WARNING"]
            serve += ["--drain-grace", "0"]  # no load balancer to tell: stop at once
            credentials = None
            if tls is not None:
                serve += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
                credentials = tls.credentials()
            # In the environment, not in argv, where any user's `ps` would show it.
            serve_env = {**os.environ, "CONDUIT_TOKEN": server_token}
            server = stack.enter_context(_process(serve, "inference server", serve_port, serve_env, credentials))
            rows = result.test_inputs
            count = len(result.test_target)
            target = f"127.0.0.1:{serve_port}"
            with InferenceClient(target, timeout=10.0, credentials=credentials, token=caller_token) as client:
                _wait_model(client, server)
                print(f"serving on {target}{' with TLS' if tls else ''}, following the control plane")
                batch = client.infer(MODEL, _rows(rows, 0, 8))
                print(f"version      {batch.model_version}")
                print("city         ", [str(c) for c in rows["city"][:8, 0]])
                print("labels       ", batch.as_numpy("label").tolist())
                print("native       ", result.native_labels[:8].tolist())
                print("truth        ", result.test_target[:8].tolist())
                print("P(default)   ", [round(float(p), 3) for p in batch.as_numpy("probabilities")[:, 1]])

                histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds
                for i in range(requests):
                    row = _rows(rows, i % count, i % count + 1)
                    start = time.perf_counter_ns()
                    client.infer(MODEL, row)
                    histogram.record_value(max(1, (time.perf_counter_ns() - start) // 1000))
                print(f"{requests} single-row requests ({len(rows)} inputs each), one at a time, latency in µs:")
                for q in (50, 90, 99, 99.9):
                    print(f"  p{q:<5} {histogram.get_value_at_percentile(q):>8}")
                print(f"  max    {histogram.get_max_value():>8}")
            for status in registry.run(registry.api.list_servers(POOL)):
                record = status.record
                models = ", ".join(f"{m.model}:{m.version} {m.state}" for m in record.models) or "nothing yet"
                print(f"server {record.name} ({'alive' if status.alive else 'silent'}): {models}")
    return 0
