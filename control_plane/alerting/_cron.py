"""Cron schedules (five fields, or ``@hourly``-style names), evaluated in UTC by croniter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting._time import as_utc

__all__ = ["CronSchedule"]

_NAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A standard cron expression (minute, hour, day of month, month, day of week), always in UTC so that every
    replica, wherever it runs, computes the same ticks."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """The schedule of ``--cron TEXT``; whitespace is normalised.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the expression: not five fields, a value out of range, seconds or
                year fields, or a name croniter does not know.
        """
        expression = " ".join(text.split())
        if expression.startswith("@"):
            if expression not in _NAMES:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"cron {text!r}: unknown name; use one of {', '.join(_NAMES)}"
                )
        elif len(expression.split()) != 5:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"cron {text!r}: write five fields (minute hour day-of-month month day-of-week), like '*/5 * * * *'",
            )
        try:
            croniter(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except (CroniterError, ValueError) as exc:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cron {text!r}: {exc}") from None
        return cls(expression)

    def __str__(self) -> str:
        return self.expression

    def next_after(self, at: datetime) -> datetime:
        """The first tick strictly after ``at``."""
        return croniter(self.expression, as_utc(at, "a cron time")).get_next(datetime)

    def latest(self, at: datetime) -> datetime:
        """The last tick at or before ``at``."""
        # croniter's get_prev is strictly before its start. Ticks fall on whole seconds (minutes, even), so the
        # whole second after ``at`` is a start that includes a tick at ``at`` and no later one.
        start = as_utc(at, "a cron time").replace(microsecond=0) + timedelta(seconds=1)
        return croniter(self.expression, start).get_prev(datetime)
