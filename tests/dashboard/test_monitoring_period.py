"""The monitoring page over each period it offers: the drift it labels as the period's covers the chosen period
ending now, its charts' time axes span that period, and the traffic chart's axis labels are round numbers that
neither overlap nor leave the chart."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from contract.entities import VersionRef
from dashboard._monitoring import PERIODS

from .conftest import MODEL, Dashboard, watch

# The refresh that drew the page, and the test's own clock reading it: a few seconds apart at most.
SLACK = timedelta(seconds=20)
LABEL = re.compile(r"^\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC – (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\)$")


def _moment(text: str) -> datetime:
    """A time as the page or Plotly writes it ("YYYY-MM-DD HH:MM[:SS[.fff]]", UTC), to the second."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC, microsecond=0)


def _stored(dashboard: Dashboard, start: datetime, end: datetime) -> dict[str, int]:
    """Feature -> values GetMonitoring counts from ``start`` to ``end``, in one window starting at ``start`` (windows
    start at multiples of their length since the epoch)."""
    with dashboard.admin() as admin:
        answer = admin.run(
            admin.api.get_monitoring(
                VersionRef(MODEL, alias="production"),
                since=start,
                until=end + timedelta(seconds=1),
                window_minutes=int(start.timestamp()) // 60,
            )
        )
    (window,) = answer.windows
    assert window.start == start
    return {f.feature: f.count for f in window.features}


@pytest.mark.parametrize("period", sorted(PERIODS))
def test_the_drift_labelled_as_the_periods_covers_the_chosen_period(
    viewer: BrowserContext, dashboard: Dashboard, period: int
) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    page.goto(f"{dashboard.url}/models/{MODEL}/monitoring?alias=production&period={period}")
    expect(page.locator("#summary-window")).to_have_text(LABEL)
    now = datetime.now(UTC)
    label = LABEL.match(page.inner_text("#summary-window"))
    assert label is not None
    start, end = _moment(label[1]), _moment(label[2])
    # From the whole minute the period starts in (the roll-ups' grain) to now.
    assert start == (end - timedelta(minutes=period)).replace(second=0)
    assert now - SLACK <= end <= now
    # The table counts the values of that span, as GetMonitoring does.
    shown = page.eval_on_selector_all(
        "#drift-table tbody tr",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.feature, r.cells[2].textContent]))",
    )
    assert shown == {feature: str(count) for feature, count in _stored(dashboard, start, end).items()}
    # The charts' time axes show the period, not only the minute or two that hold traffic.
    for chart in ("chart-traffic", "chart-latency", "chart-drift"):
        first, last = (_moment(t) for t in page.evaluate(f"document.getElementById('{chart}')._fullLayout.xaxis.range"))
        assert last == end
        # The first window may start before the period: at a multiple of its length.
        assert start - timedelta(minutes=PERIODS[period]) < first <= start
    assert watched.problems() == []


def _boxes(page: Page, selector: str) -> list[dict[str, Any]]:
    """Text and bounding box of every element ``selector`` matches that is drawn (Plotly hides a tick label past
    the plot by not displaying it)."""
    boxes: list[dict[str, Any]] = page.eval_on_selector_all(
        selector,
        """els => els.map(e => [e, e.getBoundingClientRect()]).filter(([, b]) => b.width > 0 && b.height > 0)
            .map(([e, b]) => ({ text: e.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom }))""",
    )
    return boxes


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"])


def _round_step(values: list[float]) -> bool:
    """Evenly spaced by 1, 2, 2.5 or 5 times a power of ten."""
    steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    if len(steps) != 1:
        return False
    (step,) = steps
    mantissa = step / 10.0 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1.0, 2.0, 2.5, 5.0))


@pytest.mark.parametrize("period", sorted(PERIODS))
def test_the_traffic_charts_axis_labels_are_round_apart_and_inside_the_chart(
    viewer: BrowserContext, dashboard: Dashboard, period: int
) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    page.goto(f"{dashboard.url}/models/{MODEL}/monitoring?alias=production&period={period}")
    expect(page.locator("#monitoring")).to_have_attribute("data-refreshes", re.compile(r"^[1-9]"))
    chart = "#chart-traffic"
    (svg,) = _boxes(page, f"{chart} svg.main-svg >> nth=0")
    ticks = {axis: _boxes(page, f"{chart} .{axis}tick text") for axis in ("x", "y", "y2")}
    titles = _boxes(page, f"{chart} .g-xtitle text, {chart} .g-ytitle text, {chart} .g-y2title text")
    labels = [box for boxes in ticks.values() for box in boxes] + titles
    assert len(titles) == 3 and all(ticks.values())
    # The error rate (failed requests in the period) has its own round ticks, not the left axis's grid lines.
    errors = [float(box["text"]) for box in ticks["y2"]]
    assert max(errors) > 0 and _round_step(errors), errors
    for i, label in enumerate(labels):
        assert svg["left"] <= label["left"] and label["right"] <= svg["right"], (label, svg)
        assert svg["top"] <= label["top"] and label["bottom"] <= svg["bottom"], (label, svg)
        for other in labels[i + 1 :]:
            assert not _overlap(label, other), (label, other)
    assert watched.problems() == []
