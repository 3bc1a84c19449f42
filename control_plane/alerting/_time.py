"""Time as the alerting modules take it: injected clocks returning timezone-aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "as_utc", "utcnow"]

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware; tests inject a clock that moves when told."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime, what: str) -> datetime:
    """``at`` in UTC; a naive datetime is a programming error, since its zone would be a guess.

    Raises:
        ValueError: ``at`` has no zone.
    """
    if at.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return at.astimezone(UTC)
