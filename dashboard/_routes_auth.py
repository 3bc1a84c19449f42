"""Signing in and out: the only routes that take a POST. A token is checked with WhoAmI, then kept in an HttpOnly,
SameSite=Strict cookie that the browser sends with every page and no other site can make it send."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from contract.errors import ConduitError, ErrorCode
from dashboard._web import COOKIE, context_of, render

__all__ = ["routes"]


def _next(request: Request, value: object) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or ``https://…``)."""
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/models"


async def login_form(request: Request) -> Response:
    return render(request, "login.html", None, "", next=_next(request, request.query_params.get("next")), error="")


async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = _next(request, form.get("next"))
    if not token:
        return render(request, "login.html", None, "", status_code=400, next=target, error="Enter a token.")
    try:
        await context_of(request).control_plane.with_token(token).whoami()
    except ConduitError as exc:
        if exc.code is not ErrorCode.UNAUTHENTICATED:
            raise
        return render(request, "login.html", None, "", status_code=401, next=target, error="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=context_of(request).secure_cookie, path="/"
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
