"""The newcomer's cluster: `conduit control-plane` and, once models are deployed, `conduit serve --control-plane`
pushing its metrics every half second, both real processes on loopback, and the CLI as a subprocess; the raw Palmer
penguins CSV as the `palmerpenguins` package ships it."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CONDUIT, free_port
from tests.control_plane.e2e.conftest import ADMIN_TOKEN, Cluster, Process

# The raw table (the one the R package builds its clean one from): column names as the field notes write them,
# "NA" for what was not measured, and an ISO "Date Egg". Read where the wheel put it, without importing the package
# (it imports pandas).
PENGUINS_RAW = Path(
    str(importlib.metadata.distribution("palmerpenguins").locate_file("palmerpenguins/data/penguins-raw.csv"))
)


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A control plane on a fresh SQLite home; servers started by ``serve`` are stopped with it."""
    tmp = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    args = [CONDUIT, "control-plane", "--home", str(tmp / "home"), "--grpc-port", str(port)]
    env = {**os.environ, "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN, "CONDUIT_CP_SERVER_TIMEOUT": "5"}
    started = Cluster(tmp / "home", tmp, Process(args, port, tmp / "control-plane.log", env).start())
    try:
        yield started
    finally:
        for server in started.servers:
            server.stop()
        started.control_plane.stop()


def serve(cluster: Cluster) -> Process:
    """`conduit serve --control-plane` on pool ``default``, pushing metrics and sketches every half second."""
    if not cluster.server_token:
        cluster.server_token = cluster.cli("users", "create", "server-1", "--role", "server").stdout.strip()
    port = free_port()
    args = [CONDUIT, "serve", "--control-plane", cluster.control_plane.address, "--pool", "default"]
    args += ["--token", cluster.server_token, "--cache-dir", str(cluster.tmp / "cache"), "--grpc-port", str(port)]
    args += ["--metrics-port", "0", "--heartbeat-interval", "0.5"]
    env = {**os.environ, "CONDUIT_OTLP_INTERVAL": "0.5"}
    server = Process(args, port, cluster.tmp / "serve.log", env)
    cluster.servers.append(server)
    return server.start()
