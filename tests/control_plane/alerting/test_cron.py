"""Cron ticks, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from control_plane.alerting import CronSchedule


def utc(*fields: int, micro: int = 0) -> datetime:
    return datetime(*fields, microsecond=micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", utc(2026, 3, 2, 10, 2), utc(2026, 3, 2, 10, 5)),
        ("*/5 * * * *", utc(2026, 3, 2, 10, 5), utc(2026, 3, 2, 10, 10)),
        ("*/5 * * * *", utc(2026, 3, 2, 23, 59, 59), utc(2026, 3, 3, 0, 0)),
        ("0 3 * * *", utc(2026, 3, 2, 3, 0, 1), utc(2026, 3, 3, 3, 0)),
        ("0 9 * * 1-5", utc(2026, 3, 6, 9, 30), utc(2026, 3, 9, 9, 0)),  # Friday → Monday
        ("0 0 31 * *", utc(2026, 4, 1), utc(2026, 5, 31)),  # April has no 31st
        ("@hourly", utc(2026, 3, 2, 10, 0), utc(2026, 3, 2, 11, 0)),
        ("@daily", utc(2026, 12, 31, 12), utc(2027, 1, 1)),
    ],
)
def test_next_tick_is_strictly_after(expression: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(after) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 3, 2, 10, 5), utc(2026, 3, 2, 10, 5)),
        (utc(2026, 3, 2, 10, 5, micro=1), utc(2026, 3, 2, 10, 5)),
        (utc(2026, 3, 2, 10, 9, 59, micro=999_999), utc(2026, 3, 2, 10, 5)),
        (utc(2026, 3, 2, 10, 4, 59), utc(2026, 3, 2, 10, 0)),
    ],
)
def test_latest_tick_is_at_or_before(at: datetime, expected: datetime) -> None:
    assert CronSchedule.parse("*/5 * * * *").latest(at) == expected


def test_ticks_are_utc_whatever_zone_the_time_is_given_in() -> None:
    paris = datetime(2026, 3, 2, 11, 2, tzinfo=ZoneInfo("Europe/Paris"))
    assert CronSchedule.parse("0 * * * *").next_after(paris) == utc(2026, 3, 2, 11)
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule.parse("0 * * * *").next_after(datetime(2026, 3, 2))
