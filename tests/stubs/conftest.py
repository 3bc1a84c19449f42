"""Fixtures of the stub tests: each language's example client, built once per session by the build its
clients/<language>/README.md gives, and the real processes it calls.

- ``node_example``, ``cpp_example``, ``go_example``, ``java_example`` (session): the command that runs the example;
  ``example`` is parametrised over the four. A missing toolchain fails the build loudly (`make toolchains` installs
  them); nothing is skipped.
- ``versions`` (session): ``classifier`` (the shared fixture) and a second model with the same signature but other
  weights, as versions 1 and 2.
- ``server`` (session): `conduit serve` on a model repository holding both versions of ``classifier``.
- ``secure_server`` (session): the same repository served with TLS, requiring a client certificate of the test CA
  and a caller's token.
- ``control_plane`` (session): `conduit control-plane` where the same two files are registered as versions 1 and 2
  of ``classifier``, the alias ``production`` pointing at 2, and a viewer's token to look it up with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tests.conftest import CONDUIT, ServeProcess, TrainedModel, free_port, wait_serving
from tests.secure_serve import SecureFiles, SecureServer, serving_securely
from trainers.onnx_export import export_sklearn, write_model_version

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
MODEL = "classifier"
ALIAS = "production"
ADMIN_TOKEN = "cdt_stubs-admin-token-0123456789abcdef0123456789"
BUILD_TIMEOUT = 900


def run(args: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a build step; fail the test with its output when it fails."""
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        pytest.fail(f"{args[0]} not found ({exc}); `make toolchains` installs it")
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` exited {done.returncode}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not on PATH; `make toolchains` installs the client toolchains")


@pytest.fixture(scope="session")
def node_example() -> list[str]:
    require("node", "npm")
    if not (CLIENTS / "node" / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("clients/node/node_modules is not installed; `make toolchains` runs npm ci there")
    run(["npm", "run", "build"], cwd=CLIENTS / "node")
    return ["node", str(CLIENTS / "node" / "dist" / "example.js")]


@pytest.fixture(scope="session")
def cpp_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    require("cmake", "g++", "protoc", "grpc_cpp_plugin")
    build = tmp_path_factory.mktemp("cpp-build")
    run(["cmake", "-S", str(CLIENTS / "cpp"), "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"])
    run(["cmake", "--build", str(build), "--parallel", str(os.cpu_count() or 2)])
    return [str(build / "conduit_example")]


@pytest.fixture(scope="session")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    # Module mode: go.mod and go.sum pin grpc-go and protobuf-go, fetched from the module proxy on the first build.
    require("go")
    binary = tmp_path_factory.mktemp("go-build") / "example"
    run(["go", "vet", "./..."], cwd=CLIENTS / "go")
    run(["go", "build", "-o", str(binary), "./example"], cwd=CLIENTS / "go")
    return [str(binary)]


@pytest.fixture(scope="session")
def java_example() -> list[str]:
    # Maven generates the stubs from proto/ with the protoc and grpc-java plugin pinned in pom.xml.
    require("mvn", "java")
    run(["mvn", "-q", "-B", "package"], cwd=CLIENTS / "java")
    return ["java", "-jar", str(CLIENTS / "java" / "target" / "conduit-example.jar")]


@pytest.fixture(scope="session", params=["node", "cpp", "go", "java"])
def example(request: pytest.FixtureRequest) -> list[str]:
    command: list[str] = request.getfixturevalue(f"{request.param}_example")
    return command


@pytest.fixture(scope="session")
def versions(classifier: TrainedModel) -> dict[int, TrainedModel]:
    """Version 1: ``classifier``; version 2: other weights (a third of its labels flipped), told apart by answers."""
    labels = classifier.estimator.predict(classifier.rows)
    flipped = np.where(np.arange(len(labels)) % 3 == 0, 1 - labels, labels)
    model = LogisticRegression(C=0.05, max_iter=1000).fit(classifier.rows, flipped)
    return {1: classifier, 2: TrainedModel(model, classifier.rows, export_sklearn(model, classifier.rows[:100]))}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, versions: dict[int, TrainedModel]) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("serve")
    for number, model in versions.items():
        write_model_version(tmp / "models", MODEL, number, model.onnx)
    port, metrics_port = free_port(), free_port()
    log = tmp / "serve.log"
    args = [CONDUIT, "serve", "--model-repository", str(tmp / "models"), "--grpc-port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen([*args, "--metrics-port", str(metrics_port)], stdout=out, stderr=subprocess.STDOUT)
    served = ServeProcess(process, port, metrics_port, log)
    try:
        wait_serving(port, process=process)
        yield served
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.terminate(30)
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="session")
def secure_server(
    tmp_path_factory: pytest.TempPathFactory, versions: dict[int, TrainedModel]
) -> Iterator[SecureServer]:
    tmp = tmp_path_factory.mktemp("secure-serve")
    for number, model in versions.items():
        write_model_version(tmp / "models", MODEL, number, model.onnx)
    with serving_securely(SecureFiles.create(tmp / "pki"), tmp / "models", tmp / "serve.log") as served:
        yield served


@dataclass(frozen=True)
class ControlPlane:
    """A running `conduit control-plane` and a viewer's token for it."""

    address: str
    viewer_token: str


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, versions: dict[int, TrainedModel]
) -> Iterator[ControlPlane]:
    tmp = tmp_path_factory.mktemp("control-plane")
    port = free_port()
    env = {**os.environ, "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN}
    log = tmp / "control-plane.log"
    args = [CONDUIT, "control-plane", "--home", str(tmp / "home"), "--grpc-port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    cli_env = {**os.environ, "CONDUIT_CONTROL_PLANE": f"127.0.0.1:{port}", "CONDUIT_TOKEN": ADMIN_TOKEN}

    def cli(*words: str) -> str:
        done = subprocess.run([CONDUIT, *words], capture_output=True, text=True, env=cli_env, timeout=120, check=False)
        assert done.returncode == 0, f"conduit {' '.join(words)}: {done.stdout}{done.stderr}\n{log.read_text()}"
        return done.stdout.strip()

    try:
        wait_serving(port, process=process)
        for number, model in versions.items():
            path = tmp / f"v{number}.onnx"
            path.write_bytes(model.onnx)
            aliases = ["--alias", ALIAS] if number == 2 else []
            assert cli("models", "register", MODEL, str(path), *aliases) == str(number)
        yield ControlPlane(f"127.0.0.1:{port}", cli("users", "create", "caller", "--role", "viewer"))
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
