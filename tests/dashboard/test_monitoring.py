"""The live monitoring page: the drift it shows is GetMonitoring's, and its numbers and charts follow new traffic
without the page being loaded again."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import BrowserContext, Page, expect

from contract.entities import MonitoringWindow, VersionRef

from .conftest import MODEL, Dashboard, watch

PAGE = f"/models/{MODEL}/monitoring?alias=production"
BASELINE = {
    "age": "numeric",
    "income": "numeric",
    "debt": "numeric",
    "months_at_address": "numeric",
    "city": "categorical",
    "employment": "categorical",
}


def _shown(page: Page) -> dict[str, list[str]]:
    """Feature -> (PSI, JS, KS) as the page's drift table shows them."""
    return page.eval_on_selector_all(
        "#drift-table tbody tr",
        """rows => Object.fromEntries(rows.map(r => [r.dataset.feature,
            ['psi', 'js', 'ks'].map(s => r.querySelector(`[data-stat=${s}]`).textContent)]))""",
    )


def _period(dashboard: Dashboard) -> MonitoringWindow:
    """GetMonitoring over the page's period (15 minutes from a whole minute) in one window starting there (windows
    start at multiples of their length since the epoch): the drift the page shows."""
    since = (datetime.now(UTC) - timedelta(minutes=15)).replace(second=0, microsecond=0)
    with dashboard.admin() as admin:
        answer = admin.run(
            admin.api.get_monitoring(
                VersionRef(MODEL, alias="production"), since=since, window_minutes=int(since.timestamp()) // 60
            )
        )
    return [w for w in answer.windows if w.features][-1]


def _stored(dashboard: Dashboard) -> dict[str, list[str]]:
    """The page's drift table, from GetMonitoring, formatted as the page does."""
    return {
        f.feature: [f"{f.psi:.4f}", f"{f.js:.4f}", f"{f.ks:.4f}" if f.ks is not None else "—"]
        for f in _period(dashboard).features
    }


def _unseen_and_verdicts(page: Page) -> dict[str, list[str]]:
    """Feature -> (unseen, verdict) as the page's drift table shows them."""
    return page.eval_on_selector_all(
        "#drift-table tbody tr",
        """rows => Object.fromEntries(rows.map(r => [r.dataset.feature,
            [r.cells[3].textContent, r.cells[8].textContent]]))""",
    )


def _said(dashboard: Dashboard) -> dict[str, list[str]]:
    """The same from GetMonitoring."""

    def unseen(count: int | None, total: int) -> str:
        return "–" if count is None else "0" if count == 0 else f"{count} ({100 * count / total:.1f}%)"

    def verdict(too_few: bool, drifted: bool) -> str:
        return "too few rows" if too_few else "drifted" if drifted else "ok"

    return {
        f.feature: [unseen(f.unseen, f.count), verdict(f.too_few_rows, f.drifted)] for f in _period(dashboard).features
    }


def _drawn(page: Page, feature: str) -> dict[str, tuple[list[str], list[float]]]:
    """Trace name -> (x, y) of ``feature``'s chart against the baseline, as Plotly holds them in the page."""
    traces = page.evaluate("f => document.getElementById('baseline-' + f).data.map(t => [t.name, [t.x, t.y]])", feature)
    return {name: (list(x), list(y)) for name, (x, y) in traces}


def _cells(dashboard: Dashboard, feature: str) -> dict[str, tuple[list[str], list[float]]]:
    """The same from GetMonitoring's cells: each side's counts as shares of its own total."""
    (drift,) = (f for f in _period(dashboard).features if f.feature == feature)
    return {
        name: (list(drift.cells), [c / sum(counts) for c in counts])
        for name, counts in (("training baseline", drift.expected), ("now", drift.observed))
    }


def test_the_drift_shown_is_the_drift_get_monitoring_stores(viewer: BrowserContext, dashboard: Dashboard) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    page.goto(dashboard.url + PAGE)
    page.wait_for_selector("#drift-table tbody tr")
    # The page refreshes every second: read both sides until one refresh and one call saw the same roll-ups.
    deadline = time.monotonic() + 20
    while (shown := _shown(page)) != (stored := _stored(dashboard)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert shown == stored
    # Unseen values and the verdict, as GetMonitoring says them (the table may have refreshed: read both again).
    deadline = time.monotonic() + 20
    while (columns := _unseen_and_verdicts(page)) != (said := _said(dashboard)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert columns == said
    assert columns["city"][0] != "–" and columns["income"][0] == "–"
    expect(page.locator("#min-rows")).to_have_text("100")
    # Every input, and the model's output ("@prediction") when the baseline profiles it.
    assert set(shown) - {"@prediction"} == {"age", "income", "debt", "months_at_address", "city", "employment"}
    drifted = page.eval_on_selector_all("#drift-table tbody tr.drifted", "rows => rows.map(r => r.dataset.feature)")
    # Of the inputs only the shifted one (the predictions move with it).
    assert [f for f in drifted if f != "@prediction"] == ["income"]
    # The drift chart draws one line per feature, and the threshold line from the control plane's settings.
    names = page.evaluate("document.getElementById('chart-drift').data.map(t => t.name)")
    assert sorted(names) == sorted(shown)
    assert "drift threshold 0.2" in page.inner_text("#chart-drift")
    # One chart per feature, made once and redrawn in place over later refreshes: the training baseline's
    # histogram, and with it the values of the period of each feature the drift table shows.
    expect(page.locator("#monitoring")).to_have_attribute("data-refreshes", re.compile(r"^([3-9]|\d\d+)$"))
    captions = page.locator("#baseline-charts figcaption").all_inner_texts()
    kinds = {**BASELINE, **{f.feature: f.kind for f in _period(dashboard).features if f.feature not in BASELINE}}
    assert sorted(captions) == sorted(f"{name} ({kind})" for name, kind in kinds.items())
    # The shifted feature's chart draws GetMonitoring's cells: the period's shares next to the training data's.
    deadline = time.monotonic() + 20
    while (drawn := _drawn(page, "income")) != (cells := _cells(dashboard, "income")) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert drawn == cells
    assert cells["now"][0][-1] == "missing" and cells["now"][1] != cells["training baseline"][1]
    assert page.evaluate("document.getElementById('baseline-income').layout.barmode") == "group"
    assert watched.problems() == []


def test_numbers_and_charts_follow_new_traffic_without_a_reload(viewer: BrowserContext, dashboard: Dashboard) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.goto(dashboard.url + PAGE)
    # (Playwright's expect polls without evaluating strings, which the page's content security policy forbids.)
    expect(page.locator("#total-requests")).to_have_text(re.compile(r"^\d+$"))
    # Wait for the totals to stand still (earlier tests' traffic counted), then mark this document.
    before = -1
    while (now := int(page.inner_text("#total-requests"))) != before or now != dashboard.served():
        before = now
        page.wait_for_timeout(1500)
    page.evaluate("window.marker = 'still the same document'")
    points = page.evaluate("document.getElementById('chart-traffic').data[0].y.reduce((a, b) => a + b, 0)")

    sent = dashboard.send(dashboard.normal)
    expect(page.locator("#total-requests")).to_have_text(str(before + sent), timeout=30_000)
    assert page.evaluate("window.marker") == "still the same document"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert navigations == [dashboard.url + PAGE]
    # The traffic chart was redrawn with the new requests in it.
    assert page.evaluate("document.getElementById('chart-traffic').data[0].y.reduce((a, b) => a + b, 0)") > points
    assert watched.problems() == []
