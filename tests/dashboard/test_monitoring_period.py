"""The monitoring page over each period it offers: the drift it labels as the period's covers the chosen period
ending now, and its charts' time axes span that period."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import BrowserContext, expect

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
