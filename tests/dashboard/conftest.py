"""The dashboard's browser tests: one control plane filled with real data (a model trained, registered, deployed and
served by `conduit serve --control-plane`, normal and shifted traffic, a firing drift alert, a job that ran), a viewer,
`conduit dashboard` as a real process, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from clients import ConduitError, ErrorCode, InferenceClient
from contract.client import SyncControlPlaneClient
from contract.entities import Role, VersionRef
from tests.conftest import CONDUIT, ROOT, free_port
from tests.control_plane.e2e.conftest import ADMIN_TOKEN, CALLER, CREDIT_SPEC, Cluster, Process, eventually
from trainers import TrainingResult, bundled, parse_spec, train
from trainers import datasets as ds

CHROMIUM = "/usr/bin/chromium"
MODEL = "credit"
FAILED_REQUESTS = 3
ROWS_PER_REQUEST = 8


@dataclass
class Dashboard:
    """`conduit dashboard` and the cluster it shows."""

    url: str
    cluster: Cluster
    server: Process
    process: subprocess.Popen[bytes]
    viewer_token: str
    normal: dict[str, np.ndarray]
    shifted: dict[str, np.ndarray]

    def admin(self) -> SyncControlPlaneClient:
        return SyncControlPlaneClient.connect(self.cluster.control_plane.address, token=ADMIN_TOKEN)

    def send(self, inputs: Mapping[str, np.ndarray], repeat: int = 1) -> int:
        """Infer every row of ``inputs`` ``repeat`` times through the served model; the number of requests."""
        rows = len(next(iter(inputs.values())))
        requests = 0
        with InferenceClient(self.server.address, metadata=CALLER) as inference:
            for _ in range(repeat):
                for start in range(0, rows, ROWS_PER_REQUEST):
                    inference.infer(MODEL, {k: v[start : start + ROWS_PER_REQUEST] for k, v in inputs.items()})
                    requests += 1
        return requests

    def fail(self, count: int) -> None:
        """Send ``count`` requests one feature short: each fails with INVALID_ARGUMENT."""
        short = {k: v[:1] for k, v in list(self.normal.items())[1:]}
        with InferenceClient(self.server.address, metadata=CALLER) as inference:
            for _ in range(count):
                with pytest.raises(ConduitError) as failed:
                    inference.infer(MODEL, short)
                assert failed.value.code is ErrorCode.INVALID_ARGUMENT

    def failed(self) -> int:
        """Requests the control plane's monitoring has counted as INVALID_ARGUMENT for the served version."""
        with self.admin() as client:
            answer = client.run(client.api.get_monitoring(VersionRef.parse(f"{MODEL}@production"), window_minutes=1440))
        return sum(w.errors.get("INVALID_ARGUMENT", 0) for w in answer.windows)

    def served(self) -> int:
        """Requests the control plane's monitoring has counted for the served version in the last 15 minutes."""
        with self.admin() as client:
            answer = client.run(client.api.get_monitoring(VersionRef.parse(f"{MODEL}@production"), window_minutes=1440))
        return sum(w.requests for w in answer.windows)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"conduit dashboard exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError), urllib.request.urlopen(url, timeout=1) as ok:
            if ok.status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not answering after {timeout}s:\n{log.read_text()}")


def _register(
    admin: SyncControlPlaneClient,
    result: TrainingResult,
    folder: Path,
    *,
    log: str,
    description: str,
    aliases: list[str],
) -> None:
    """Register ``result`` as the next version of MODEL with the documents a report reads."""
    environment = {
        "packages": result.packages,
        "classes": list(result.classes),
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in result.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in result.outputs],
    }
    attachments = {
        "evaluation.json": ("application/json", json.dumps(result.evaluation, allow_nan=False).encode()),
        "spec.toml": ("application/toml", result.lineage.training_spec.encode()),
        "environment.json": ("application/json", json.dumps(environment, indent=2).encode()),
        "training.log": ("text/plain", log.encode()),
    }
    path = folder / "model.onnx"
    path.write_bytes(result.onnx)
    tags = {"task": result.spec.model.task, "estimator": result.spec.model.estimator, "dataset": result.lineage.dataset}
    admin.run(
        admin.api.register_version(
            MODEL,
            path,
            metrics=result.metrics,
            params=result.params,
            tags=tags,
            lineage=result.lineage,
            description=description,
            aliases=aliases,
            attachments=attachments,
        )
    )


def _start_control_plane(tmp: Path) -> Cluster:
    port = free_port()
    args = [CONDUIT, "control-plane", "--home", str(tmp / "home"), "--grpc-port", str(port)]
    env = {
        **os.environ,
        "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CONDUIT_CP_SERVER_TIMEOUT": "5",
        # The built-in alert evaluation every second, over the last 15 minutes of traffic.
        "CONDUIT_ALERTS_EVALUATE_INTERVAL_S": "1",
    }
    return Cluster(tmp / "home", tmp, Process(args, port, tmp / "control-plane.log", env).start())


def _serve(cluster: Cluster) -> Process:
    port = free_port()
    args = [CONDUIT, "serve", "--control-plane", cluster.control_plane.address, "--pool", "default"]
    args += ["--token", cluster.server_token, "--cache-dir", str(cluster.tmp / "cache"), "--grpc-port", str(port)]
    args += ["--metrics-port", "0", "--heartbeat-interval", "0.5"]
    # Metrics and sketches pushed every second, so that monitoring sees traffic within seconds; every request
    # sampled into prediction logs, uploaded every second.
    env = {
        **os.environ,
        "CONDUIT_OTLP_INTERVAL": "1",
        "CONDUIT_PREDICTION_LOG_SAMPLE": "1",
        "CONDUIT_PREDICTION_LOG_FLUSH_INTERVAL": "1",
    }
    server = Process(args, port, cluster.tmp / "serve.log", env)
    cluster.servers.append(server)
    return server.start()


@pytest.fixture(scope="package")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A control plane holding real data, and `conduit dashboard` in front of it: started once for every module of
    this folder, stopped after its last one (tests that add traffic wait for what they look at instead of assuming the
    totals)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    cluster = _start_control_plane(tmp)
    process: subprocess.Popen[bytes] | None = None
    try:
        with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as admin:
            credit = bundled.load("credit")
            data = ds.write_parquet(credit, tmp / "credit.parquet")
            admin.run(
                admin.api.import_dataset(
                    "credit",
                    data,
                    version=ds.content_version(credit),
                    profile=ds.profile(credit),
                    source="bundled:credit",
                    target="default",
                )
            )
            stored = admin.run(admin.api.download_dataset("credit", tmp / "fetched.parquet"))
            frame = ds.read_parquet(tmp / "fetched.parquet")
            lines: list[str] = []
            result = train(parse_spec(CREDIT_SPEC), frame, dataset_version=stored.version, log=lines.append)
            log = "\n".join(lines) + "\n"
            # Two versions, so that there is something to compare; the second one serves.
            _register(admin, result, tmp, log=log, description="first fit", aliases=[])
            _register(admin, result, tmp, log=log, description="same fit", aliases=["production"])
            admin.run(admin.api.deploy("default", MODEL, alias="production"))
            _, viewer_token = admin.run(admin.api.create_user("viewer-1", Role.VIEWER))
            _, cluster.server_token = admin.run(admin.api.create_user("server-1", Role.SERVER))
            admin.run(
                admin.api.create_alert_rule("drifting", model=f"{MODEL}@production", when="drift > 0.2", notify="log")
            )
            admin.run(admin.api.create_job("nightly", cron="0 3 * * *", kind="evaluate"))
            admin.run(admin.api.run_job("nightly"))

        server = _serve(cluster)
        with InferenceClient(server.address, metadata=CALLER) as inference:
            eventually(lambda: inference.model_ready(MODEL), timeout=60, what="credit loaded")
        normal = {k: np.asarray(v) for k, v in result.test_inputs.items()}
        shifted = {**normal, "income": normal["income"] * 3}

        port = free_port()
        log_path = tmp / "dashboard.log"
        args = [CONDUIT, "dashboard", "--port", str(port), "--control-plane", cluster.control_plane.address]
        env = {**os.environ, "CONDUIT_DASHBOARD_REFRESH_SECONDS": "1"}
        with log_path.open("ab") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", process, log_path)
        board = Dashboard(url, cluster, server, process, viewer_token, normal, shifted)

        sent = board.send(normal) + board.send(shifted)
        eventually(lambda: board.served() == sent, timeout=60, what=f"{sent} requests counted by monitoring")
        board.fail(FAILED_REQUESTS)
        eventually(lambda: board.failed() == FAILED_REQUESTS, timeout=60, what="failed requests counted")

        def firing() -> bool:
            with board.admin() as client:
                return any(a.phase == "firing" for a in client.run(client.api.list_alerts("drifting")))

        eventually(firing, timeout=60, what="the drift alert firing")

        def logged() -> bool:
            with board.admin() as client:
                return bool(client.run(client.api.list_prediction_logs(VersionRef(MODEL))).items)

        eventually(logged, timeout=60, what="a prediction log uploaded")
        yield board
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()
        for running in cluster.servers:
            running.stop()
        cluster.control_plane.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless (Playwright's own browser builds are never downloaded)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $CONDUIT_TEST_ARTIFACTS, by default .artifacts/screenshots (git-ignored)."""
    folder = Path(os.environ.get("CONDUIT_TEST_ARTIFACTS", ROOT / ".artifacts" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Watched:
    """A page with every console error and failed request it meets recorded."""

    page: Page
    console_errors: list[str]
    failed_requests: list[str]

    def problems(self) -> list[str]:
        return self.console_errors + self.failed_requests


def watch(page: Page) -> Watched:
    watched = Watched(page, [], [])
    page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.console_errors.append(str(e)))
    page.on("requestfailed", lambda r: watched.failed_requests.append(f"{r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: watched.failed_requests.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
    )
    return watched


def post_login(
    context: BrowserContext, dashboard: Dashboard, token: str, target: str = "/models", **options: Any
) -> Any:
    """Sign in the way the login form does, outside a page: fetch the form (its CSRF cookie and field), then post it."""
    form = context.request.get(f"{dashboard.url}/login").text()
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match is not None, form
    fields = {"token": token, "next": target, "csrf": match.group(1)}
    return context.request.post(f"{dashboard.url}/login", form=fields, **options)


def sign_in(context: BrowserContext, dashboard: Dashboard, token: str) -> None:
    page = context.new_page()
    page.goto(f"{dashboard.url}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{dashboard.url}/models")
    page.close()


@pytest.fixture
def viewer(browser: Browser, dashboard: Dashboard) -> Iterator[BrowserContext]:
    """A browser context signed in with the viewer's token."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    sign_in(context, dashboard, dashboard.viewer_token)
    yield context
    context.close()
