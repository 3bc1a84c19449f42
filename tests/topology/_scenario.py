"""The topology's scenario, under continuous load: a server SIGKILLed, a control plane SIGKILLed, the alias moved and
rolled back, both restarted, then every server restarted in turn with SIGTERM (a rolling restart). Every request
counts; the figures say how many failed, how long each change took to reach all traffic, and what monitoring saw."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clients import InferenceClient
from tests.control_plane.e2e.conftest import CALLER, MODEL, Load, eventually
from tests.topology._topology import OTLP_INTERVAL_S, Topology

__all__ = ["Figures", "deploy", "duplicates", "monitored_requests", "run_scenario", "watch"]


@dataclass
class Figures:
    """What one run of the scenario measured."""

    route: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds each step took to show in the traffic (a switch complete, a restarted server answering again)."""
    chaos_sent: int = 0
    chaos_counted: int = 0
    """Requests sent while servers and control planes were SIGKILLed, and monitoring's count of them: what a SIGKILLed
    server answered in its last metrics push interval is missing."""
    rolling_sent: int = 0
    rolling_counted: int = 0
    """Requests sent during the rolling restart, and monitoring's count of them: equal, SIGTERM loses none."""

    def summary(self) -> dict[str, object]:
        return {
            "route": self.route,
            "requests": self.requests,
            "failed": len(self.failures),
            "seconds": round(self.seconds, 1),
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "steps_s": {step: round(value, 2) for step, value in self.steps.items()},
            "monitoring": {
                "sent_under_sigkill": self.chaos_sent,
                "counted_under_sigkill": self.chaos_counted,
                "sent_in_rolling_restart": self.rolling_sent,
                "counted_in_rolling_restart": self.rolling_counted,
            },
        }


def deploy(topology: Topology, first: Path, second: Path) -> None:
    """Register two versions of the model, point ``production`` at the first and deploy it to pool ``default``."""
    topology.cli("models", "register", MODEL, str(first), "--alias", "production")
    topology.cli("models", "register", MODEL, str(second))
    topology.cli("deploy", f"{MODEL}@production", "--pool", "default")
    for server in topology.servers:
        with InferenceClient(server.address, timeout=10.0, metadata=CALLER) as client:
            eventually(lambda c=client: c.model_ready(MODEL), what=f"{MODEL} ready on {server.address}")  # type: ignore[misc]


def watch(topology: Topology, webhook: str) -> None:
    """A rule that fires while the model answers (any latency above a microsecond) and a job every minute, both run by
    whichever control plane wins each evaluation's and each tick's lease."""
    when = "p99_ms > 0.001"
    topology.cli("alerts", "add", "answering", "--model", MODEL, "--when", when, "--notify", f"webhook:{webhook}")
    topology.cli("jobs", "add", "minutely", "--cron", "* * * * *", "--gc")


def duplicates(topology: Topology, posts: Sequence[dict[str, object]]) -> tuple[int, int, list[str]]:
    """The alert notifications and job runs of ``watch``, and every one that happened twice (none should)."""
    seen: set[tuple[object, ...]] = set()
    twice: list[str] = []
    for post in posts:
        key = (post["rule"], post["version"], post["state"], post["started_at"], post["at"])
        if key in seen:
            twice.append(f"notification {key} sent twice")
        seen.add(key)
    runs = json.loads(topology.cli("jobs", "history", "minutely", "--json"))
    ticks = [run["tick"] for run in runs]
    twice += [f"job tick {tick} ran twice" for tick in sorted(set(ticks)) if ticks.count(tick) > 1]
    return len(posts), len(runs), twice


def monitored_requests(topology: Topology) -> int:
    """Requests of both versions of the model that the control planes' monitoring counts."""
    total = 0
    for version in ("1", "2"):
        args = ("monitoring", "show", f"{MODEL}:{version}", "--since", "1h", "--window", "1d", "--json")
        total += sum(int(window.get("requests", 0)) for window in json.loads(topology.cli(*args))["windows"])
    return total


def _settled(topology: Topology) -> int:
    """The monitored total once every live server's last push has arrived (unchanged over two push intervals)."""
    last = -1
    while True:
        time.sleep(2 * OTLP_INTERVAL_S + 0.5)
        now = monitored_requests(topology)
        if now == last:
            return now
        last = now


def _timed(steps: dict[str, float], name: str, action: Callable[[], None]) -> None:
    started = time.monotonic()
    action()
    steps[name] = time.monotonic() - started
    print(f"topology: {name} in {steps[name]:.2f} s", file=sys.stderr, flush=True)


def _more_traffic(load: Load, requests: int = 100) -> None:
    """Until ``requests`` more requests have been answered or have failed: the change has met real traffic."""
    start = load.count()
    eventually(lambda: load.count() >= start + requests, timeout=60, what=f"{requests} more requests")


def _answering(topology: Topology, index: int) -> None:
    """Until the restarted server ``index`` answers part of the traffic."""
    server = topology.servers[index]
    eventually(lambda: topology.served(server) > 0, timeout=60, what=f"traffic on {server.address} again")


def run_scenario(topology: Topology, route: str, target: str | Sequence[str], rows: np.ndarray) -> Figures:
    """Run the scenario with the load sent to ``target`` (Envoy's address, or the servers' list)."""
    figures = Figures(route)
    steps = figures.steps
    counted = _settled(topology)
    started = time.monotonic()
    # A previous run left the alias on version 2 and the deployment rolled back to 1: start from the alias on 1.
    topology.cli("models", "alias", MODEL, "production", "1")
    topology.cli("deploy", f"{MODEL}@production", "--pool", "default")
    with Load(target, rows, threads=4) as chaos:
        chaos.wait_for_version("1")
        _more_traffic(chaos)

        topology.servers[0].kill()
        _timed(steps, "server_sigkill", lambda: _more_traffic(chaos))
        topology.control_planes[0].kill()
        _timed(steps, "control_plane_sigkill", lambda: _more_traffic(chaos))

        topology.cli("models", "alias", MODEL, "production", "2")
        _timed(steps, "alias_moved", lambda: chaos.wait_for_version("2", timeout=60))
        topology.cli("deploy", "rollback", MODEL, "--pool", "default")
        _timed(steps, "rolled_back", lambda: chaos.wait_for_version("1", timeout=60))

        topology.control_planes[0].start()
        topology.servers[0].start()
        _timed(steps, "server_rejoined", lambda: _answering(topology, 0))
    figures.chaos_sent = chaos.count()
    figures.chaos_counted = _settled(topology) - counted
    counted += figures.chaos_counted

    with Load(target, rows, threads=4) as rolling:
        _more_traffic(rolling)
        for index, server in enumerate(topology.servers):
            began = time.monotonic()
            code = server.terminate()
            if code != 0:
                figures.failures.append(f"server {index} exited {code} after SIGTERM")
            server.start()
            _answering(topology, index)
            steps[f"rolling_restart_{index}"] = time.monotonic() - began
            print(f"topology: server {index} restarted in {steps[f'rolling_restart_{index}']:.2f} s", file=sys.stderr)
        _more_traffic(rolling)
    figures.seconds = time.monotonic() - started
    figures.rolling_sent = rolling.count()
    figures.rolling_counted = _settled(topology) - counted
    figures.requests = figures.chaos_sent + figures.rolling_sent
    figures.failures += chaos.errors + rolling.errors
    return figures
