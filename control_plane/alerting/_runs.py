"""What a scheduled run produces, shared by the scheduler, its runners and the lease store."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["JobRun", "RunOutcome", "RunResult"]


class RunOutcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a runner returns: whether the job did its work, and its log (bounded by the runner)."""

    ok: bool
    log: str = ""


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
