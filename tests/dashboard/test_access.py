"""Who may see what: no session (or a stale one) leads to the login page, the session cookie is HttpOnly and
SameSite=Strict, and a viewer can read every page but change nothing through the dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext

from contract.entities import Role

from .conftest import MODEL, Dashboard, post_login, watch
from .test_pages import PAGES

API = f"/api/models/{MODEL}/monitoring?alias=production"
# Every route of the dashboard that reads something, with the version pages' documents.
READ_ONLY = [*PAGES, API, f"/models/{MODEL}/versions/2/attachments/training.log", "/healthz"]


def _session_cookies(context: BrowserContext) -> list[Any]:
    return [cookie for cookie in context.cookies() if cookie["name"] == "conduit_session"]


@pytest.mark.parametrize("path", [p for p in READ_ONLY if p != "/healthz"])
def test_without_a_session_every_page_leads_to_the_login_page(
    path: str, browser: Browser, dashboard: Dashboard
) -> None:
    context = browser.new_context()
    try:
        answer = context.request.get(dashboard.url + path, max_redirects=0)
        if path.startswith("/api/"):
            assert answer.status == 401
        else:
            assert answer.status == 303 and answer.headers["location"].startswith("/login?next=")
        # A cookie whose token the control plane does not know is no session either.
        context.add_cookies([{"name": "conduit_session", "value": "cdt_not-a-token", "url": dashboard.url}])
        page = context.new_page()
        page.goto(dashboard.url + path)
        if not path.startswith("/api/"):
            assert page.url.startswith(f"{dashboard.url}/login") and page.is_visible("#token")
    finally:
        context.close()


def test_signing_in_checks_the_token_and_keeps_it_in_a_strict_http_only_cookie(
    browser: Browser, dashboard: Dashboard
) -> None:
    context = browser.new_context()
    try:
        watched = watch(context.new_page())
        page = watched.page
        page.goto(f"{dashboard.url}/audit")
        assert page.url == f"{dashboard.url}/login?next=/audit"
        page.fill("#token", "cdt_wrong-token-0123456789abcdef")
        page.click("button[type=submit]")
        assert "That token is not valid." in page.inner_text("main") and _session_cookies(context) == []
        page.fill("#token", dashboard.viewer_token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{dashboard.url}/audit")
        (cookie,) = _session_cookies(context)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        # A random session id: the token itself never reaches the browser.
        assert cookie["value"] != dashboard.viewer_token and dashboard.viewer_token not in cookie["value"]
        assert len(cookie["value"]) >= 43
        assert page.evaluate("document.cookie") == ""
        assert "viewer-1" in page.inner_text("header")
        page.click("text=Sign out")
        page.wait_for_url(f"{dashboard.url}/login")
        assert _session_cookies(context) == []
        page.goto(f"{dashboard.url}/models")
        assert page.url.startswith(f"{dashboard.url}/login")
        # The one failed request is the refused token's 401.
        assert watched.failed_requests == [f"{dashboard.url}/login: HTTP 401"]
    finally:
        context.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_viewer_can_change_nothing(method: str, viewer: BrowserContext, dashboard: Dashboard) -> None:
    with dashboard.admin() as admin:
        before = admin.run(admin.api.list_audit()).items
    for path in READ_ONLY:
        answer = viewer.request.fetch(dashboard.url + path, method=method, max_redirects=0)
        assert answer.status == 405, (method, path, answer.status)
    # Sign-out is the one POST beside the login form: no other verb, and no GET (a link cannot sign anyone out).
    for path in ("/logout", "/login"):
        assert viewer.request.fetch(dashboard.url + path, method="PUT", max_redirects=0).status == 405
    assert viewer.request.get(f"{dashboard.url}/logout", max_redirects=0).status == 405
    with dashboard.admin() as admin:
        after = admin.run(admin.api.list_audit()).items
    # Nothing the viewer did reached the control plane as a change.
    assert [e.id for e in after] == [e.id for e in before]


def test_no_page_offers_a_form_that_changes_something(viewer: BrowserContext, dashboard: Dashboard) -> None:
    page = viewer.new_page()
    for path in PAGES:
        page.goto(dashboard.url + path)
        actions = page.eval_on_selector_all(
            "form", "forms => forms.map(f => [f.getAttribute('method').toLowerCase(), f.getAttribute('action')])"
        )
        assert all(method == "get" or action == "/logout" for method, action in actions), (path, actions)


def test_a_server_token_sees_the_control_plane_refuse_it(browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context()
    try:
        signed = post_login(context, dashboard, dashboard.cluster.server_token, "/audit")
        assert signed.url == f"{dashboard.url}/audit"
        answer = context.request.get(f"{dashboard.url}/audit")
        assert answer.status == 403 and "PERMISSION_DENIED" in answer.text()
    finally:
        context.close()


@pytest.mark.parametrize("target", ["//example.com/", "https://example.com/", "/\\example.com"])
def test_signing_in_never_leads_off_the_dashboard(target: str, browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context()
    try:
        answer = post_login(context, dashboard, dashboard.viewer_token, target, max_redirects=0)
        assert answer.status == 303 and answer.headers["location"] == "/models"
    finally:
        context.close()


def test_forms_without_their_csrf_token_change_nothing(browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context()
    try:
        # A login posted from elsewhere: no CSRF cookie, no field.
        forged = context.request.post(
            f"{dashboard.url}/login", form={"token": dashboard.viewer_token, "next": "/models"}, max_redirects=0
        )
        assert forged.status == 403 and "This form expired" in forged.text()
        assert _session_cookies(context) == []
        # A sign-out without the session's token: refused, and the session goes on.
        assert post_login(context, dashboard, dashboard.viewer_token, max_redirects=0).status == 303
        refused = context.request.post(f"{dashboard.url}/logout", form={"csrf": "guessed"}, max_redirects=0)
        assert refused.status == 403
        assert context.request.get(f"{dashboard.url}/models", max_redirects=0).status == 200
    finally:
        context.close()


def test_a_disabled_users_session_ends(browser: Browser, dashboard: Dashboard) -> None:
    with dashboard.admin() as admin:
        _, token = admin.run(admin.api.create_user("short-lived", Role.VIEWER))
    context = browser.new_context()
    try:
        assert post_login(context, dashboard, token, max_redirects=0).status == 303
        assert context.request.get(f"{dashboard.url}/models", max_redirects=0).status == 200
        with dashboard.admin() as admin:
            admin.run(admin.api.disable_user("short-lived"))
        ended = context.request.get(f"{dashboard.url}/models", max_redirects=0)
        assert ended.status == 303 and ended.headers["location"].startswith("/login")
        # The session is gone on the server, not only the cookie in this browser.
        with dashboard.admin() as admin:
            admin.run(admin.api.create_token("short-lived"))  # a new token does not revive the old session
        assert context.request.get(f"{dashboard.url}/models", max_redirects=0).status == 303
    finally:
        context.close()
