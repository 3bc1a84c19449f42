"""What a scheduled run produces, shared by the scheduler, its runners and the lease store."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from contract.errors import ConduitError

__all__ = ["JobRun", "RunOutcome", "RunResult", "failure_line"]


class RunOutcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a runner returns: whether the job did its work, and its log (bounded by the runner)."""

    ok: bool
    log: str = ""


def failure_line(exc: BaseException) -> str:
    """What a job's log says of an error it met: viewers read job logs, so one line and never a traceback (the
    control plane's own log keeps that); a ConduitError's message is meant for users and is shown whole."""
    if isinstance(exc, ConduitError):
        return f"{exc.code.name}: {exc.message}"
    return f"unexpected {type(exc).__name__}; the control plane's log has the details"


@dataclass(frozen=True, slots=True)
class JobRun:
    """One tick of one job, run by this replica."""

    job: str
    tick: datetime
    holder: str
    outcome: RunOutcome
    log: str
    started_at: datetime
    finished_at: datetime
