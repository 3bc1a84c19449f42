"""How far the times servers report may be from the control plane's clock.

Servers stamp metrics and prediction logs with their own clocks. A time before 2000 or more than a day ahead of the
control plane's is a broken clock or a forged report, not an observation: stored, it would sit in the roll-ups and
listings for years (a point of the year 2200 outlives every retention), so it is refused with INVALID_ARGUMENT.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract.errors import ConduitError, ErrorCode

__all__ = ["EARLIEST", "MAX_AHEAD", "check_reported_ns", "check_reported_time"]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No report is older than this."""
MAX_AHEAD = timedelta(days=1)
"""No report is further than this ahead of the control plane's clock."""

_EARLIEST_NS = int(EARLIEST.timestamp()) * 1_000_000_000


def _refused(what: str) -> ConduitError:
    return ConduitError(
        ErrorCode.INVALID_ARGUMENT,
        f"{what} is before 2000 or more than {MAX_AHEAD.days} day ahead of the control plane's clock; check the "
        "sender's clock",
    )


def check_reported_time(what: str, moment: datetime, now: datetime) -> None:
    """Refuse ``moment`` (aware) outside ``[EARLIEST, now + MAX_AHEAD]``."""
    if not EARLIEST <= moment <= now + MAX_AHEAD:
        raise _refused(what)


def check_reported_ns(what: str, unix_ns: int, now: datetime) -> None:
    """``check_reported_time`` of nanoseconds since the epoch (OTLP's times)."""
    latest_ns = int((now + MAX_AHEAD).timestamp()) * 1_000_000_000
    if not _EARLIEST_NS <= unix_ns <= latest_ns:
        raise _refused(what)
