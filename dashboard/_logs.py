"""Logs the control plane keeps, searched on the dashboard's side: a version's training.log attachment, the logs of
job runs, and a model's failed requests per minute by gRPC status. A query keeps the lines that contain it
(case-insensitive); an empty one keeps every line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contract.client import ControlPlaneClient
from contract.entities import JobRun, VersionRef
from contract.errors import ConduitError, ErrorCode
from dashboard._data import monitoring, recent_runs

__all__ = ["ErrorCount", "LogLine", "RunLog", "TrainingLog", "error_counts", "job_run_logs", "training_log"]

TRAINING_LOG = "training.log"
# A day of one-minute windows: the control plane's limit is 1,440 windows, and a span that does not start on a
# minute boundary touches one more than it has minutes.
_DAY_MINUTES = 24 * 60 - 1


@dataclass(frozen=True)
class LogLine:
    number: int
    text: str


@dataclass(frozen=True)
class TrainingLog:
    model: str
    version: int
    lines: list[LogLine]
    total_lines: int
    found: bool


@dataclass(frozen=True)
class RunLog:
    run: JobRun
    lines: list[LogLine]
    total_lines: int


def _matching(text: str, query: str) -> tuple[list[LogLine], int]:
    lines = text.splitlines()
    needle = query.casefold()
    kept = [LogLine(n, line) for n, line in enumerate(lines, 1) if needle in line.casefold()]
    return kept, len(lines)


async def training_log(api: ControlPlaneClient, model: str, version: int, query: str) -> TrainingLog:
    """The lines of ``model:version``'s training log matching ``query`` (``found`` false when it has none)."""
    ref = VersionRef(model, version=version)
    try:
        content = (await api.get_attachment(ref, TRAINING_LOG)).content
    except ConduitError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        # The version itself must exist: a missing version is the page's NOT_FOUND, a missing log an empty state.
        await api.get_version(ref)
        return TrainingLog(model, version, [], 0, found=False)
    lines, total = _matching(content.decode("utf-8", errors="replace"), query)
    return TrainingLog(model, version, lines, total, found=True)


async def job_run_logs(api: ControlPlaneClient, job: str, query: str, *, limit: int = 50) -> list[RunLog]:
    """The newest ``limit`` runs (of ``job``, or of every scheduled job), each with its log lines matching ``query``;
    runs with no matching line are left out when ``query`` is set."""
    logs = []
    for run in await recent_runs(api, job, limit=limit):
        lines, total = _matching(run.log, query)
        if lines or not query:
            logs.append(RunLog(run, lines, total))
    return logs


@dataclass(frozen=True)
class ErrorCount:
    """Requests to one version that failed with ``status`` during the minute starting at ``minute``."""

    minute: datetime
    version: int
    status: str
    count: int


async def error_counts(
    api: ControlPlaneClient, ref: VersionRef, query: str, *, since_minutes: int = _DAY_MINUTES
) -> list[ErrorCount]:
    """The failed requests to ``ref``'s version per minute and status over the last ``since_minutes``, newest first;
    a query keeps the statuses that contain it. Servers count failures by status (their messages stay with the
    caller), so this is the error log the control plane can give."""
    report = await monitoring(api, ref, since_minutes=since_minutes, window_minutes=1)
    needle = query.casefold()
    counts = [
        ErrorCount(window.start, report.version, status, count)
        for window in report.windows
        for status, count in sorted(window.errors.items())
        if count and needle in status.casefold()
    ]
    return sorted(counts, key=lambda c: c.minute, reverse=True)
