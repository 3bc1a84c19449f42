"""Composition root of ``conduit dashboard``: settings → control plane client → routes → uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.client import ControlPlaneClient
from contract.errors import ConduitError
from dashboard import _routes_auth, _routes_operations, _routes_registry
from dashboard._sessions import Sessions
from dashboard._web import Context, LoginRequired, handle_conduit_error, handle_login_required, make_templates
from dashboard.settings import DashboardSettings

__all__ = ["create_app", "main"]

PROGRAM = "conduit dashboard"
# Pages load their scripts and styles from the dashboard only (Plotly sets inline styles on what it draws).
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class _SecurityHeaders:
    """Adds the headers every answer carries, and the pages' content security policy where a route set none."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", _PAGE_POLICY.encode()))
                message["headers"] = headers + _HEADERS
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _plotly_js() -> Path:
    # The plotly package ships the bundle; serving it from here means no page ever reaches the internet.
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


PUBLIC_ROUTES: frozenset[str] = frozenset(
    {"/", "/healthz", "/static/vendor/plotly.min.js", "/static", "/login", "/logout"}
)
"""The routes answered without a session: the home page (a redirect to /models), the probe, static files, signing
in, and signing out (which, without a session, only sends the browser to the login page). Every other route needs a
session."""


def create_app(settings: DashboardSettings, root_certificates: bytes | None = None) -> Starlette:
    """The dashboard's ASGI application; its control plane channel opens and closes with the app's lifespan."""
    templates = make_templates()
    plotly = _plotly_js()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # On the running loop: a grpc.aio channel binds to the loop it is created on. The dashboard has no token of
        # its own; every call goes through ``with_token`` with the token of the session it answers.
        control_plane = ControlPlaneClient.connect(
            settings.control_plane, token=None, root_certificates=root_certificates, timeout=settings.rpc_timeout
        )
        sessions = Sessions(settings.session_idle_seconds, settings.session_lifetime_seconds)
        app.state.context = Context(
            control_plane, templates, settings.page_size, settings.refresh_seconds, settings.secure_cookie, sessions
        )
        try:
            yield
        finally:
            await control_plane.close()

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def plotly_js(request: Request) -> Response:
        return FileResponse(plotly, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    routes = [
        Route("/healthz", health, methods=["GET"]),
        Route("/static/vendor/plotly.min.js", plotly_js, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("dashboard", "static")]), name="static"),
        *_routes_auth.routes,
        *_routes_registry.routes,
        *_routes_operations.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ConduitError: handle_conduit_error, LoginRequired: handle_login_required},
    )
    app.add_middleware(_SecurityHeaders)
    return app


def main(overrides: dict[str, Any]) -> int:
    """``conduit dashboard``: settings from ``CONDUIT_DASHBOARD_*`` variables overridden by flags; serve until
    SIGTERM or SIGINT.

    Returns:
        The process exit code: 2 for invalid settings, 1 when the CA file cannot be read, 0 after a clean stop.
    """
    try:
        settings = DashboardSettings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            name = "--" + "_".join(str(part) for part in error["loc"]).replace("_", "-")
            print(f"{PROGRAM}: {name}: {error['msg']}", file=sys.stderr)
        return 2
    root_certificates = None
    if settings.control_plane_ca is not None:
        try:
            root_certificates = settings.control_plane_ca.read_bytes()
        except OSError as exc:
            print(f"{PROGRAM}: cannot read {settings.control_plane_ca}: {exc.strerror}", file=sys.stderr)
            return 1
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings, root_certificates)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())
    uvicorn.Server(config).run()
    return 0
