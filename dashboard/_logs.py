"""Logs the control plane keeps, searched on the dashboard's side: a version's training.log attachment and the logs
of job runs. A query keeps the lines that contain it (case-insensitive); an empty one keeps every line."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard._data import DashboardData
from dashboard._entities import JobRunRow
from inference_server.errors import ConduitError, ErrorCode

__all__ = ["LogLine", "RunLog", "TrainingLog", "job_run_logs", "training_log"]

TRAINING_LOG = "training.log"


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
    run: JobRunRow
    lines: list[LogLine]
    total_lines: int


def _matching(text: str, query: str) -> tuple[list[LogLine], int]:
    lines = text.splitlines()
    needle = query.casefold()
    kept = [LogLine(n, line) for n, line in enumerate(lines, 1) if needle in line.casefold()]
    return kept, len(lines)


async def training_log(data: DashboardData, token: str, model: str, version: int, query: str) -> TrainingLog:
    """The lines of ``model:version``'s training log matching ``query`` (``found`` false when it has none)."""
    try:
        _, content = await data.attachment(token, model, version, TRAINING_LOG)
    except ConduitError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        # The version itself must exist: a missing version is the page's NOT_FOUND, a missing log an empty state.
        await data.version(token, model, version)
        return TrainingLog(model, version, [], 0, found=False)
    lines, total = _matching(content.decode("utf-8", errors="replace"), query)
    return TrainingLog(model, version, lines, total, found=True)


async def job_run_logs(data: DashboardData, token: str, job: str, query: str, *, limit: int = 50) -> list[RunLog]:
    """The newest ``limit`` runs (of ``job``, or of every scheduled job), each with its log lines matching ``query``;
    runs with no matching line are left out when ``query`` is set."""
    logs = []
    for run in await data.recent_runs(token, job, limit=limit):
        lines, total = _matching(run.log, query)
        if lines or not query:
            logs.append(RunLog(run, lines, total))
    return logs
