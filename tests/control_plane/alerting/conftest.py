"""Fixtures of the alerting tests: a manual clock, a webhook receiver and an SMTP server on loopback, and empty
databases holding the alerting tables.

- ``clock``: a ``ManualClock`` starting at 2026-03-02 10:00 UTC; ``clock.advance(seconds)`` moves it.
- ``ALLOW_LOOPBACK``, ``loopback_webhooks()``: the allow-list the receivers below need (loopback is refused by
  default), and a webhook sender under it.
- ``webhook`` (and ``other_webhook``): an HTTP server on 127.0.0.1 recording each POST; ``webhook.statuses`` is the
  queue of statuses it answers with (200 once empty), ``webhook.location`` a ``Location`` header to send.
- ``smtp``: an aiosmtpd ``Controller`` on 127.0.0.1 whose ``messages`` list receives each mail.
- ``Roll``: an in-memory ``MetricsSource`` of one version's per-minute windows (``minute(n)`` is START + n min).
- ``alerting_engine``: parametrised over SQLite and PostgreSQL, an engine whose database has the alerting tables.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, create_engine

from contract.entities import LatencyHistogram, Rollup
from control_plane.alerting import AlertingSettings, DriftScores, WebhookSender
from control_plane.store import migrate

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when told; safe to read from several threads."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = at


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def minute(n: float) -> datetime:
    return START + timedelta(minutes=n)


def histogram(latencies_s: Sequence[float]) -> LatencyHistogram:
    counts = [0] * (len(BOUNDS) + 1)
    for value in latencies_s:
        counts[bisect.bisect_left(BOUNDS, value)] += 1
    return LatencyHistogram(
        BOUNDS, tuple(counts), len(latencies_s), sum(latencies_s), min(latencies_s), max(latencies_s)
    )


class Roll:
    """Per-minute roll-ups, drift scores and readiness of one model version, as monitoring keeps them."""

    def __init__(self) -> None:
        self.rollups: list[Rollup] = []
        self.scores: DriftScores | None = None
        self.is_ready: bool | None = None
        self.drift_asked: list[tuple[datetime, datetime]] = []
        """The periods ``drift`` was asked about."""

    def add(self, n: int, latencies_s: Sequence[float], errors: int = 0) -> None:
        """Minute ``n``: requests answered OK in ``latencies_s`` seconds, and ``errors`` failed ones."""
        self.rollups.append(
            Rollup(
                "fraud", "1", minute(n), len(latencies_s), {"INTERNAL": errors} if errors else {},
                histogram(latencies_s) if latencies_s else None,
            )
        )  # fmt: skip

    def list_rollups(self, model: str, version: str, since: datetime, until: datetime) -> list[Rollup]:
        return [r for r in self.rollups if since <= r.minute < until]

    def drift(self, model: str, version: str, since: datetime, until: datetime) -> DriftScores | None:
        self.drift_asked.append((since, until))
        return self.scores

    def ready(self, model: str, version: str) -> bool | None:
        return self.is_ready


ALLOW_LOOPBACK = AlertingSettings(webhook_allow="127.0.0.1/32", smtp_allow="127.0.0.1/32")
"""Alerting settings of an operator whose webhook receivers and mail relay run on this machine, as the tests' do:
without them, loopback destinations are refused."""


def loopback_webhooks() -> WebhookSender:
    """A webhook sender allowed to reach 127.0.0.1 (``ALLOW_LOOPBACK``)."""
    return WebhookSender(policy=ALLOW_LOOPBACK.webhook_policy())


@dataclass
class WebhookReceiver:
    url: str
    port: int
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: queue.SimpleQueue[int] = field(default_factory=queue.SimpleQueue)
    location: str | None = None
    """Sent as ``Location`` with every answer (for redirects)."""

    def at(self, host: str) -> str:
        """``url`` with another host for the same receiver (``localhost``)."""
        return self.url.replace("127.0.0.1", host, 1)


@contextlib.contextmanager
def receiving() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1, whose URL carries a secret in its path and in its query."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hooks/T0/path-s3cret?token=query-s3cret", port=port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.posts.append(json.loads(body))
            receiver.headers.append(dict(self.headers))
            try:
                status = receiver.statuses.get_nowait()
            except queue.Empty:
                status = 200
            self.send_response(status)
            if receiver.location is not None:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def other_webhook() -> Iterator[WebhookReceiver]:
    with receiving() as receiver:
        yield receiver


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse_with: list[str] = field(default_factory=list)
    """Replies to give to the next DATA commands instead of accepting them (e.g. ``451 try later``)."""


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.refuse_with:
            return self.server.refuse_with.pop(0)
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.server.messages.append((envelope, message))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    # The controller connects to its own port to check it is up, so it needs a real port number, not 0.
    server = SmtpServer(host="127.0.0.1", port=_free_port())
    controller = Controller(_Handler(server), hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def alerting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend, migrated like the registry's (which creates the alerting tables)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'alerting.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    migrate(url)
    return url


def open_engine(url: str) -> Engine:
    """An engine like the registry's: SQLite waits for the write lock instead of failing at once."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30.0})
    return create_engine(url)


@pytest.fixture
def alerting_engine(alerting_url: str) -> Iterator[Engine]:
    engine = open_engine(alerting_url)
    yield engine
    engine.dispose()
