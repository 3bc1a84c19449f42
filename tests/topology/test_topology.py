"""The loopback topology under continuous load, through Envoy and through the client's own round_robin: a server
and a control plane SIGKILLed, the alias moved and rolled back, both restarted, a rolling restart by SIGTERM — zero
failed requests, and monitoring counts every request the rolling restart sent (a SIGKILL loses at most what the
killed server answered since its last metrics push)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from tests.control_plane.alerting.conftest import WebhookReceiver, receiving
from tests.topology._models import write_versions
from tests.topology._scenario import Figures, deploy, duplicates, run_scenario, watch
from tests.topology._topology import OTLP_INTERVAL_S, Topology, topology


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver
) -> Iterator[tuple[Topology, np.ndarray]]:
    root = tmp_path_factory.mktemp("topology")
    first, second, rows = write_versions(root)
    with topology(root) as started:
        deploy(started, first, second)
        watch(started, webhook.url)
        yield started, rows


def _check(figures: Figures) -> None:
    print(json.dumps(figures.summary()))  # the figures, in the test log
    assert figures.failures == []
    assert figures.requests > 500
    assert figures.rolling_counted == figures.rolling_sent
    # What a SIGKILLed server can lose: its share of the traffic over one push interval (and a second of slack).
    rate = figures.chaos_sent / figures.seconds
    assert figures.chaos_sent - rate * (OTLP_INTERVAL_S + 1.0) <= figures.chaos_counted <= figures.chaos_sent


def test_through_envoy_nothing_fails(running: tuple[Topology, np.ndarray]) -> None:
    started, rows = running
    assert started.envoy is not None
    figures = run_scenario(started, "envoy", started.envoy.address, rows)
    _check(figures)
    stats = started.envoy.stats()
    # Envoy did see the failures it hid: health checks failed and some calls were tried again.
    assert stats.get("health_check.failure", 0) > 0
    assert stats.get("upstream_rq_retry", 0) + stats.get("upstream_cx_connect_fail", 0) > 0, stats


def test_with_client_balancing_nothing_fails(running: tuple[Topology, np.ndarray]) -> None:
    started, rows = running
    _check(run_scenario(started, "client round_robin", started.server_addresses, rows))


def test_alerts_and_jobs_run_once_across_control_planes(
    running: tuple[Topology, np.ndarray], webhook: WebhookReceiver
) -> None:
    """Runs after both scenarios: more than a minute of traffic, with a control plane killed twice."""
    started, _ = running
    notifications, runs, twice = duplicates(started, webhook.posts)
    assert twice == []
    assert runs >= 1
    assert any(post["state"] == "firing" and post["version"] == "1" for post in webhook.posts), webhook.posts
    assert notifications >= 1
