"""Starting and stopping the loopback topology: a throw-away PostgreSQL, control-plane replicas on it sharing one
artifact directory, `conduit serve` replicas following pool ``default`` through every control-plane address, and
Envoy in front of the servers. Each process is real, on its own free port, and can be killed and started again."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clients import InferenceClient
from tests.conftest import CONDUIT
from tests.control_plane.e2e.conftest import ADMIN_TOKEN, CALLER, MODEL, Process
from tests.postgres import create_database, free_port, throwaway_postgres
from tests.topology._envoy import Envoy

__all__ = ["DRAIN_GRACE_S", "OTLP_INTERVAL_S", "Topology", "topology"]

# Longer than Envoy's 1 s health-check interval, so that Envoy has looked before the server drains.
DRAIN_GRACE_S = 2.5
# How often each server pushes its metrics to the control plane: what a SIGKILL can lose.
OTLP_INTERVAL_S = 1.0


@dataclass
class Topology:
    """The running processes and a CLI bound to every control plane."""

    root: Path
    database: str
    control_planes: list[Process] = field(default_factory=list)
    servers: list[Process] = field(default_factory=list)
    envoy: Envoy | None = None
    server_token: str = ""

    @property
    def control_plane_target(self) -> str:
        """Every control plane as one gRPC target: clients and followers move to a live one on their own."""
        return "ipv4:" + ",".join(process.address for process in self.control_planes)

    @property
    def server_addresses(self) -> list[str]:
        return [server.address for server in self.servers]

    def cli(self, *args: str, token: str = ADMIN_TOKEN) -> str:
        """Run `conduit ARGS` against the control planes; its standard output."""
        env = {**os.environ, "CONDUIT_CONTROL_PLANE": self.control_plane_target, "CONDUIT_TOKEN": token}
        done = subprocess.run([CONDUIT, *args], check=False, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"conduit {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_control_plane(self, env: dict[str, str]) -> Process:
        index, port = len(self.control_planes), free_port()
        args = [CONDUIT, "control-plane", "--home", str(self.root / f"cp{index}"), "--grpc-port", str(port)]
        args += ["--db", self.database, "--artifacts", str(self.root / "artifacts")]
        process = Process(args, port, self.root / f"control-plane-{index}.log", env)
        self.control_planes.append(process)
        return process.start()

    def add_server(self) -> Process:
        """A `conduit serve` following pool ``default``, not started yet (every control plane must be known)."""
        if not self.server_token:
            self.server_token = self.cli("users", "create", "servers", "--role", "server").strip()
        index, port = len(self.servers), free_port()
        args = [CONDUIT, "serve", "--control-plane", self.control_plane_target, "--pool", "default"]
        args += ["--token", self.server_token, "--cache-dir", str(self.root / f"cache{index}")]
        args += ["--grpc-port", str(port), "--metrics-port", "0", "--heartbeat-interval", "0.5"]
        args += ["--instance-name", f"server-{index}", "--drain-grace", str(DRAIN_GRACE_S)]
        args += ["--otlp-interval", str(OTLP_INTERVAL_S)]
        process = Process(args, port, self.root / f"serve-{index}.log", dict(os.environ))
        self.servers.append(process)
        return process

    def served(self, server: Process) -> int:
        """Inferences ``server`` has answered since it started (its own statistics)."""
        with InferenceClient(server.address, timeout=5.0, metadata=CALLER) as client:
            statistics = client.model_statistics(MODEL)
        return sum(int(model.inference_count) for model in statistics)

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
        for process in [*self.servers, *self.control_planes]:
            process.stop()


@contextlib.contextmanager
def topology(root: Path, *, control_planes: int = 2, servers: int = 3) -> Iterator[Topology]:
    """Start everything; the model is not registered yet. Stops every process and the database on exit."""
    with throwaway_postgres() as port:
        running = Topology(root, create_database(port, "conduit"))
        env = {
            **os.environ,
            "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN,
            # A following server that stops heartbeating is dead to the control planes after 5 s.
            "CONDUIT_CP_SERVER_TIMEOUT": "5",
            # Alert rules evaluated every second; their webhook is a receiver on loopback.
            "CONDUIT_ALERTS_EVALUATE_INTERVAL_S": "1",
            "CONDUIT_ALERTS_WEBHOOK_ALLOW": "127.0.0.1/32",
        }
        try:
            for _ in range(control_planes):
                running.start_control_plane(env)
            for _ in range(servers):
                running.add_server()
            for server in running.servers:
                server.start()
            running.envoy = Envoy(free_port(), free_port(), [s.port for s in running.servers], root).start()
            yield running
        finally:
            running.stop()
