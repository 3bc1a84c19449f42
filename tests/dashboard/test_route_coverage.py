"""Every route of the dashboard has a decision: public (``dashboard.app.PUBLIC_ROUTES``), or it needs a session
and sends a caller without one to the login page. A new route that answers anyone fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from playwright.sync_api import Browser

from tests.conftest import ROOT

from .conftest import MODEL, Dashboard

SAMPLES = {"name": MODEL, "version": "2", "attachment": "training.log"}


# Read in a child process: in this folder the name `dashboard` is the tests' own package.
_LIST = """
import json
from starlette.routing import Mount, Route
from dashboard.app import PUBLIC_ROUTES, create_app
from dashboard.settings import DashboardSettings
routes = []
for route in create_app(DashboardSettings()).routes:
    if isinstance(route, Route):
        routes += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    elif isinstance(route, Mount):
        routes.append(("GET", route.path))
print(json.dumps({"routes": routes, "public": sorted(PUBLIC_ROUTES)}))
"""
_LISTED = json.loads(
    subprocess.run([sys.executable, "-c", _LIST], cwd=ROOT, capture_output=True, text=True, check=True).stdout
)
ROUTES: list[tuple[str, str]] = [(method, path) for method, path in _LISTED["routes"]]
PUBLIC_ROUTES: set[str] = set(_LISTED["public"])


def _sample(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLES[m.group(1)], template)


def test_every_public_route_exists() -> None:
    assert {path for _, path in ROUTES} >= PUBLIC_ROUTES


@pytest.mark.parametrize(("method", "template"), [r for r in ROUTES if r[1] not in PUBLIC_ROUTES])
def test_every_other_route_needs_a_session(method: str, template: str, browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context()
    try:
        answer = context.request.fetch(dashboard.url + _sample(template), method=method, max_redirects=0)
        if template.startswith("/api/"):
            assert answer.status == 401, (method, template, answer.status)
        else:
            assert answer.status == 303 and answer.headers["location"].startswith("/login"), (method, template)
    finally:
        context.close()
