"""Signing in and out: the only routes that take a POST. A token is checked with WhoAmI and kept on the server; the
browser gets a random session id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS). Both forms carry a CSRF
token: the login form a double-submit one (a cookie and a field that must match), the sign-out form the session's."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from contract.errors import ConduitError, ErrorCode
from dashboard._sessions import same_secret
from dashboard._web import COOKIE, LOGIN_CSRF_COOKIE, context_of, render

__all__ = ["routes"]

FORM_EXPIRED = "This form expired or did not come from this dashboard: reload the page and try again."


def _next(request: Request, value: object) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or ``https://…``)."""
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/models"


def _login_page(request: Request, target: str, *, status_code: int = 200, error: str = "") -> Response:
    csrf = secrets.token_urlsafe(32)
    request.state.csrf = csrf
    response = render(request, "login.html", None, "", status_code=status_code, next=target, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=context_of(request).secure(request),
        path="/login",
    )
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request, _next(request, request.query_params.get("next")))


async def login(request: Request) -> Response:
    form = await request.form()
    target = _next(request, form.get("next"))
    if not same_secret(str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return _login_page(request, target, status_code=403, error=FORM_EXPIRED)
    token = str(form.get("token", "")).strip()
    if not token:
        return _login_page(request, target, status_code=400, error="Enter a token.")
    context = context_of(request)
    try:
        await context.control_plane.with_token(token).whoami()
    except ConduitError as exc:
        if exc.code is not ErrorCode.UNAUTHENTICATED:
            raise
        return _login_page(request, target, status_code=401, error="That token is not valid.")
    previous = request.cookies.get(COOKIE, "")
    if previous:
        context.sessions.close(previous)  # never carry a session id over a sign-in (session fixation)
    session_id, _ = context.sessions.open(token)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", secure=context.secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    context = context_of(request)
    session_id = request.cookies.get(COOKIE, "")
    found = context.sessions.get(session_id)
    form = await request.form()
    if found is not None and not same_secret(str(form.get("csrf", "")), found.csrf):
        return render(request, "error.html", None, "", status_code=403, code="PERMISSION_DENIED", message=FORM_EXPIRED)
    context.sessions.close(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
