"""A real HTTP server on loopback that answers imports as an API would: set what each path answers, in order.

``ApiServer.route(path, *answers)``: the answers a GET of ``path`` (query included) gets, one per request, the last
one repeated. Every request is kept (path and headers) for assertions. Paths that need a header answer 401 without it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

    @staticmethod
    def json(document: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
        return Answer(status, json.dumps(document).encode(), (("Content-Type", "application/json"), *headers))


@dataclass
class ApiServer:
    server: ThreadingHTTPServer
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    required: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, *answers: Answer) -> None:
        with self.lock:
            self.routes[path] = list(answers)

    def require(self, path: str, header: str, value: str) -> None:
        """Answer 401 to a GET of ``path`` without ``header: value``."""
        self.required[path] = (header, value)

    def answer(self, path: str, headers: dict[str, str]) -> Answer:
        with self.lock:
            self.requests.append((path, headers))
            needed = self.required.get(path)
            if needed is not None and headers.get(needed[0].lower()) != needed[1]:
                return Answer.json({"error": "unauthorized"}, 401)
            answers = self.routes.get(path)
            if not answers:
                return Answer.json({"error": "not found"}, 404)
            return answers.pop(0) if len(answers) > 1 else answers[0]


def serve_api() -> Iterator[ApiServer]:
    """Start an ``ApiServer`` on 127.0.0.1 and stop it after the test (a generator for fixtures)."""
    holder: list[ApiServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = holder[0].answer(self.path, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = ApiServer(server)
    holder.append(api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pages(records: list[dict[str, Any]], *, size: int, base: str, path: str = "/items") -> dict[str, Answer]:
    """``records`` as JSON pages of ``size`` at ``path?page=N``, each with ``data.items`` and ``links.next``."""
    out = {}
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    for number, chunk in enumerate(chunks, start=1):
        following = f"{base}{path}?page={number + 1}" if number < len(chunks) else None
        out[f"{path}?page={number}"] = Answer.json({"data": {"items": chunk}, "links": {"next": following}})
    return out
