"""What every page shares: the session cookie, the one mapping of control plane errors to HTTP answers, and
rendering a template with the viewer and the navigation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from contract import wire
from contract.client import ControlPlaneClient
from contract.entities import User
from contract.errors import ConduitError, ErrorCode
from dashboard._sessions import Sessions

__all__ = [
    "COOKIE",
    "HTTP_STATUS_OF",
    "LOGIN_CSRF_COOKIE",
    "Context",
    "LoginRequired",
    "context_of",
    "handle_conduit_error",
    "handle_login_required",
    "make_templates",
    "render",
    "session",
]

COOKIE = "conduit_session"
LOGIN_CSRF_COOKIE = "conduit_login_csrf"

# The one table from a control plane error to the HTTP status of the page that met it. UNAUTHENTICATED is not here:
# it sends the browser to the login page instead.
HTTP_STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.UNAVAILABLE: 502,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.CANCELLED: 502,
    ErrorCode.INTERNAL: 500,
}

NAVIGATION = (
    ("models", "/models", "Models"),
    ("deployments", "/deployments", "Deployments"),
    ("servers", "/servers", "Servers"),
    ("monitoring", "/monitoring", "Monitoring"),
    ("alerts", "/alerts", "Alerts"),
    ("jobs", "/jobs", "Jobs"),
    ("logs", "/logs", "Logs"),
    ("audit", "/audit", "Audit"),
)


@dataclass(frozen=True)
class Context:
    """What the routes need, wired once by the composition root.

    Attributes:
        control_plane: The client the dashboard opened, with no token of its own: every call goes through its
            ``with_token`` with the token of the session being answered.
        page_size: Rows per page of paginated lists.
    """

    control_plane: ControlPlaneClient
    templates: Jinja2Templates
    page_size: int
    refresh_seconds: float
    secure_cookie: bool
    sessions: Sessions

    def secure(self, request: Request) -> bool:
        """Whether cookies set on ``request``'s answer are marked Secure."""
        return self.secure_cookie or request.url.scheme == "https"


class LoginRequired(Exception):
    """The request carries no session: the browser goes to the login page."""


def context_of(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


async def session(request: Request) -> tuple[ControlPlaneClient, User]:
    """A control plane client calling with the token of the request's session, and whom that token belongs to.

    Raises:
        LoginRequired: no session cookie.
        ConduitError: UNAUTHENTICATED when the token is no longer valid.
    """
    context = context_of(request)
    found = context.sessions.get(request.cookies.get(COOKIE, ""))
    if found is None:
        raise LoginRequired
    # The page's forms carry the session's CSRF token (see ``render``).
    request.state.csrf = found.csrf
    api = context.control_plane.with_token(found.token)
    try:
        return api, await api.whoami()
    except ConduitError as exc:
        if exc.code is ErrorCode.UNAUTHENTICATED:  # disabled user or token: the session ends with it
            context.sessions.close(request.cookies.get(COOKIE, ""))
        raise


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def _with_query(request: Request, **params: Any) -> str:
    """The request's URL with ``params`` set (an empty value removes one)."""
    url = request.url.remove_query_params([k for k, v in params.items() if v in ("", None)])
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return str(url.include_query_params(**kept)) if kept else str(url)


def make_templates() -> Jinja2Templates:
    environment = Environment(
        loader=PackageLoader("dashboard", "templates"), autoescape=select_autoescape(), trim_blocks=True
    )
    environment.filters.update(
        utc=_utc, number=_number, size=_size, state=wire.state_json, quote=lambda s: quote(str(s), safe="")
    )
    environment.globals.update(navigation=NAVIGATION, with_query=_with_query)
    return Jinja2Templates(env=environment)


def render(
    request: Request, template: str, viewer: User | None, section: str, status_code: int = 200, **values: Any
) -> Response:
    """``template`` drawn with ``values``, the viewer and the navigation's current ``section``."""
    templates = context_of(request).templates
    context = {"viewer": viewer, "section": section, "csrf": getattr(request.state, "csrf", ""), **values}
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def handle_login_required(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "not signed in"}, status_code=401)
    return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)


async def handle_conduit_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConduitError)
    if exc.code is ErrorCode.UNAUTHENTICATED:
        response = await handle_login_required(request, exc)
        response.delete_cookie(COOKIE, path="/")
        return response
    status = HTTP_STATUS_OF.get(exc.code, 500)
    if _wants_json(request):
        return JSONResponse({"error": exc.message, "code": exc.code.name}, status_code=status)
    return render(request, "error.html", None, "", status_code=status, code=exc.code.name, message=exc.message)
