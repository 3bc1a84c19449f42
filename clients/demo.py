"""`conduit demo`: train a model, serve it with `conduit serve`, predict through the Python client, report latency.

Runs on the embedded defaults with nothing but the installed package: a temporary model repository, one server
process on free loopback ports, and the client.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clients import ConduitError, InferenceClient
from trainers.onnx_export import export_sklearn, write_model_version

__all__ = ["run_demo"]

MODEL = "breast-cancer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(client: InferenceClient, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"conduit serve exited with code {server.returncode}")
        try:
            if client.server_ready(timeout=1.0) and client.model_ready(MODEL, timeout=1.0):
                return
        except ConduitError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the server did not become ready")


def run_demo(*, requests: int = 2000, workdir: Path | None = None) -> int:
    """Run the demo end to end; returns the process exit code."""
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conduit-demo-")))
        repository = root / "models"
        data = load_breast_cancer()
        x_train, x_test, y_train, y_test = train_test_split(
            data.data.astype(np.float32), data.target, test_size=0.25, random_state=0, stratify=data.target
        )
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
        print(f"trained {MODEL}: logistic regression, test accuracy {model.score(x_test, y_test):.3f}")
        write_model_version(repository, MODEL, 1, export_sklearn(model, x_test))
        print(f"exported to ONNX (parity checked) in {repository}")

        port = _free_port()
        command = [sys.executable, "-m", "clients.cli", "serve", "--model-repository", str(repository)]
        command += ["--grpc-port", str(port), "--metrics-port", "0", "--log-level", "WARNING"]
        server = subprocess.Popen(command)
        try:
            with InferenceClient(f"127.0.0.1:{port}", timeout=10.0) as client:
                _wait_ready(client, server)
                print(f"serving on 127.0.0.1:{port}")
                batch = client.infer(MODEL, {"input": x_test[:8]})
                print("labels       ", batch.as_numpy("label").tolist())
                print("truth        ", y_test[:8].tolist())
                print("P(benign)    ", [round(float(p), 3) for p in batch.as_numpy("probabilities")[:, 1]])

                histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds
                for i in range(requests):
                    row = x_test[i % len(x_test) : i % len(x_test) + 1]
                    start = time.perf_counter_ns()
                    client.infer(MODEL, {"input": row})
                    histogram.record_value(max(1, (time.perf_counter_ns() - start) // 1000))
                print(f"{requests} single-row requests, one at a time, latency in µs:")
                for q in (50, 90, 99, 99.9):
                    print(f"  p{q:<5} {histogram.get_value_at_percentile(q):>8}")
                print(f"  max    {histogram.get_max_value():>8}")
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(60)
        print(f"server stopped (exit code {code})")
        return 0 if code == 0 else 1
