"""Fixtures of the contract tests: HTTP receivers on loopback for the outbound requests.

- ``receivers``: starts an HTTP (or, given a certificate, HTTPS) server on a loopback address; each records the
  requests it gets and the TLS server name it was asked for, and answers from its queue of ``answers`` (200 once
  empty). Stopped at teardown.
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.pki import Issued


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    host: str
    port: int
    requests: list[Recorded] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    answers: queue.SimpleQueue[tuple[int, dict[str, str]]] = field(default_factory=queue.SimpleQueue)

    def url(self, path: str = "/", *, host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def receivers() -> Iterator[StartReceiver]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(host: str = "127.0.0.1", *, tls: Issued | None = None) -> Receiver:
        server = ThreadingHTTPServer((host, 0), BaseHTTPRequestHandler)
        receiver = Receiver(host, server.server_address[1])

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
                try:
                    status, headers = receiver.answers.get_nowait()
                except queue.Empty:
                    status, headers = 200, {}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server.RequestHandlerClass = Handler
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls.cert, tls.key)

            def record_name(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
                receiver.server_names.append(name)

            context.sni_callback = record_name  # type: ignore[assignment]
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return receiver

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()
