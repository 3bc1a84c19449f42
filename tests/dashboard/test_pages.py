"""Every page of `conduit dashboard`, opened in chromium as a viewer: it loads with no console error and no failed
request, shows what the control plane holds, and leaves a screenshot in the artifacts folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from .conftest import FAILED_REQUESTS, MODEL, Dashboard, watch

# Page path -> text it must show (from the data the fixture created).
PAGES = {
    "/models": MODEL,
    f"/models/{MODEL}": "same fit",
    f"/models/{MODEL}/versions/2": "production",
    f"/models/{MODEL}/versions/2/report": "AUC = ",
    f"/models/{MODEL}/compare?a=1&b=2": "credit:1",
    "/deployments": "score",  # what the pool answers to an unseen category
    "/deployments?history=1": "active",
    "/servers": "READY",
    "/monitoring": "@production",
    f"/models/{MODEL}/monitoring?alias=production": "income",
    "/alerts": "firing",
    "/jobs": "evaluated 1 rule(s)",
    "/jobs?job=@evaluate": "@evaluate",
    "/audit": "RegisterVersion",
    "/audit?action=CreateAlertRule": "drifting",
    f"/logs?model={MODEL}&q=split": "training rows",
    "/logs?job=nightly": "evaluated",
    f"/logs?model={MODEL}": "served data",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_opens_cleanly_for_a_viewer(
    path: str, dashboard: Dashboard, viewer: BrowserContext, artifacts: Path
) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    response = page.goto(dashboard.url + path)
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    if "/monitoring?" in path:
        page.wait_for_selector("#drift-table tbody tr")
    assert PAGES[path] in page.inner_text("main")
    name = path.strip("/").replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "-") or "root"
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert watched.problems() == []
    # Reports and comparisons are self-contained documents (made to be saved and opened offline): no navigation.
    standalone = path.endswith("/report") or "/compare?" in path
    assert page.locator("nav a.current").count() == (0 if standalone else 1)


def test_failed_requests_are_listed_by_minute_and_status(viewer: BrowserContext, dashboard: Dashboard) -> None:
    page = viewer.new_page()
    page.goto(f"{dashboard.url}/logs?model={MODEL}")
    rows = [row.split("\t") for row in page.inner_text("#error-counts tbody").splitlines()]
    assert {(version, status) for _, version, status, _ in rows} == {("2", "INVALID_ARGUMENT")}
    assert sum(int(count) for *_, count in rows) == dashboard.failed() == FAILED_REQUESTS
    page.goto(f"{dashboard.url}/logs?model={MODEL}&q=invalid")
    assert page.locator("#error-counts tbody tr").count() == len(rows)
    page.goto(f"{dashboard.url}/logs?model={MODEL}&q=UNAVAILABLE")
    assert page.locator("#error-counts").count() == 0
    assert "No failed request with a status containing “UNAVAILABLE”" in page.inner_text("main")


def test_log_search_keeps_only_the_matching_lines(viewer: BrowserContext, dashboard: Dashboard) -> None:
    page = viewer.new_page()
    page.goto(f"{dashboard.url}/logs?model={MODEL}&version=1&q=SPLIT")
    lines = page.inner_text("#training-log").splitlines()
    assert len(lines) == 1 and "split:" in lines[0] and lines[0].startswith("1")
    assert "1 of 3 lines" in page.inner_text("#training-count")
    page.goto(f"{dashboard.url}/logs?model={MODEL}&q=no+such+text")
    assert page.locator("#training-log").count() == 0 and "0 of 3 lines" in page.inner_text("#training-count")
    assert "No job run log contains “no such text”." in page.inner_text("main")
    page.goto(f"{dashboard.url}/logs?job=nightly&q=rule")
    assert "evaluated 1 rule(s)" in page.inner_text("main")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/models/no-such-model", 404),
        (f"/models/{MODEL}/versions/99", 404),
        (f"/models/{MODEL}/versions/99/report", 404),
        (f"/models/{MODEL}/compare?a=1&b=x", 400),
        (f"/models/{MODEL}/monitoring?period=7", 400),
        (f"/logs?model={MODEL}&version=abc", 400),
    ],
)
def test_what_the_control_plane_refuses_is_shown_with_its_status(
    path: str, status: int, viewer: BrowserContext, dashboard: Dashboard
) -> None:
    page = viewer.new_page()
    response = page.goto(dashboard.url + path)
    assert response is not None and response.status == status
    heading = {404: "Not found", 400: "Invalid argument"}[status]
    assert page.inner_text("h1") == heading and page.locator("p.error").count() == 1
