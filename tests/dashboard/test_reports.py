"""Model reports through the dashboard: the ROC legend's AUC and the KS plot's distance are the registry's metrics,
and a report, as `conduit report` writes it or as the dashboard serves it, opens with the network cut off and holds
every plot a binary classifier's report has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Route

from contract.entities import VersionRef

from .conftest import MODEL, Dashboard, watch

REPORT = f"/models/{MODEL}/versions/2/report"
# What a logistic regression's report draws from what `register_result` stores.
BINARY_PLOTS = ("plot-roc", "plot-pr", "plot-ks", "plot-confusion", "plot-calibration", "plot-weights-hist")


def test_the_roc_auc_and_ks_drawn_are_the_registry_metrics(viewer: BrowserContext, dashboard: Dashboard) -> None:
    with dashboard.admin() as admin:
        metrics = admin.run(admin.api.get_version(VersionRef(MODEL, version=2))).metrics
    watched = watch(viewer.new_page())
    page = watched.page
    page.goto(f"{dashboard.url}/models/{MODEL}/versions/2")
    page.click("#report-link")
    page.wait_for_url(dashboard.url + REPORT)
    roc = re.findall(r"AUC = (\d\.\d{4})", page.inner_text("#plot-roc"))
    ks = re.findall(r"KS = (\d\.\d{4})", page.inner_text("#plot-ks"))
    assert roc == [f"{metrics['roc_auc']:.4f}"]
    assert ks == [f"{metrics['ks']:.4f}"]
    assert watched.problems() == []


def _report_from_cli(dashboard: Dashboard, folder: Path) -> Path:
    path = folder / "cli-report.html"
    dashboard.cluster.cli("report", f"{MODEL}:2", "-o", str(path), token=dashboard.viewer_token)
    return path


def _report_from_dashboard(dashboard: Dashboard, folder: Path, viewer: BrowserContext) -> Path:
    answer = viewer.request.get(dashboard.url + REPORT)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    path = folder / "dashboard-report.html"
    path.write_bytes(answer.body())
    return path


@pytest.mark.parametrize("source", ["conduit report", "dashboard"])
def test_a_report_opens_offline_with_every_plot(
    source: str, browser: Browser, viewer: BrowserContext, dashboard: Dashboard, tmp_path: Path, artifacts: Path
) -> None:
    if source == "dashboard":
        path = _report_from_dashboard(dashboard, tmp_path, viewer)
    else:
        path = _report_from_cli(dashboard, tmp_path)
    context = browser.new_context(offline=True)
    attempted: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort()

    try:
        context.route("**/*", only_local)
        watched = watch(context.new_page())
        page = watched.page
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(artifacts / f"report-offline-{source.replace(' ', '-')}.png"), full_page=True)
        assert attempted == [] and watched.problems() == []
        for plot in BINARY_PLOTS:
            figure = page.locator(f"figure#{plot}")
            assert figure.count() == 1, plot
            assert figure.locator("svg").count() >= 1 and figure.locator("svg text").count() > 0, plot
    finally:
        context.close()
