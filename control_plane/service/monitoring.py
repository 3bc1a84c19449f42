"""Monitoring: metrics pushed by inference servers added to the per-minute roll-ups, roll-ups past their retention
deleted, and reports of a model version's windows with drift against the data set it was trained on."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from contract.entities import DriftRule, MonitoringReport, VersionRef
from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import ArtifactStore
from control_plane.monitoring import (
    CumulativeTracker,
    Point,
    Temporality,
    build_report,
    rollups_of,
    window_start,
)
from control_plane.service._baseline import version_baseline
from control_plane.service._skew import check_reported_ns
from control_plane.service.servers import Clock, utc_now
from control_plane.store import AbstractStore

__all__ = ["MonitoringService"]

log = logging.getLogger(__name__)

DEFAULT_SPAN = timedelta(minutes=15)
MAX_WINDOWS = 1440


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class MonitoringService:
    """Args:
    artifacts: Where a version's ``profile.json`` attachment, its drift baseline, is read.
    retention: How long roll-ups are kept; points older than that are not stored at all.
    rule: The thresholds of the drift verdicts.
    clock: The current time, timezone-aware; cumulative series that started before the service count from their
        second point (see ``control_plane.monitoring.cumulative``).
    """

    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        *,
        retention: timedelta,
        rule: DriftRule | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._retention = retention
        self._rule = rule or DriftRule()
        self._clock = clock
        self._tracker = CumulativeTracker(started_ns=_ns(clock()))
        self._cumulative = asyncio.Lock()

    async def export(self, points: Sequence[Point]) -> None:
        """Add the counts of ``points`` (delta or cumulative) to the roll-ups.

        Raises:
            ConduitError: INVALID_ARGUMENT for points that break the metric contract, or whose times are before 2000
                or more than a day ahead of this clock (nothing is stored then); UNAVAILABLE when the database
                cannot be reached.
        """
        now = self._clock()
        for point in points:
            check_reported_ns(f"metric {point.metric}: a point's time", point.time_ns, now)
            if point.start_ns:  # 0: OTLP's "unknown"
                check_reported_ns(f"metric {point.metric}: a point's start time", point.start_ns, now)
        if all(point.temporality is Temporality.DELTA for point in points):
            await self._add(points)
            return
        # One export at a time computes differences against the remembered values, and they are remembered only once
        # stored: an exporter retrying after a failure must get the same differences again.
        async with self._cumulative:
            deltas, pending = self._tracker.deltas(points)
            await self._add(deltas)
            self._tracker.commit(pending, _ns(self._clock()))

    async def _add(self, points: Sequence[Point]) -> None:
        cutoff = self._clock() - self._retention
        rollups = [rollup for rollup in rollups_of(points) if rollup.minute >= cutoff]
        if rollups:
            await asyncio.to_thread(self._store.add_rollups, rollups)

    async def prune(self) -> int:
        """Delete the roll-ups older than the retention; returns how many (model, version, minute) went."""
        return await asyncio.to_thread(self._store.prune_rollups, self._clock() - self._retention)

    async def run_pruner(self, interval_s: float) -> None:
        """``prune`` now and every ``interval_s`` until cancelled; a failure is logged and tried again next time."""
        while True:
            try:
                removed = await self.prune()
            except Exception:
                log.exception("deleting old monitoring roll-ups failed")
            else:
                if removed:
                    log.info("deleted %d monitoring roll-up(s) older than %s", removed, self._retention)
            await asyncio.sleep(interval_s)

    async def report(
        self, ref: VersionRef, *, since: datetime | None, until: datetime | None, minutes: int
    ) -> MonitoringReport:
        """The version's windows of ``minutes`` (0: 1) from the one holding ``since`` (default: 15 minutes before
        ``until``) to ``until`` (default: now), with drift against the data set its lineage names.

        Raises:
            ConduitError: NOT_FOUND for an unknown model or version; INVALID_ARGUMENT for a negative window, a
                ``since`` not before ``until``, or more than ``MAX_WINDOWS`` windows.
        """
        minutes = minutes or 1
        if minutes < 0:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"window_minutes must be 1 or more, not {minutes}")
        until = until or self._clock()
        since = since or until - DEFAULT_SPAN
        if since >= until:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "since must be before until")
        start = window_start(since, minutes)
        windows = math.ceil((until - start) / timedelta(minutes=minutes))
        if windows > MAX_WINDOWS:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"{windows} windows of {minutes} minute(s); at most {MAX_WINDOWS}: shorten the span or widen them",
            )
        version = await asyncio.to_thread(self._store.get_version, ref.model, version=ref.version, alias=ref.alias)
        baseline = await asyncio.to_thread(version_baseline, self._store, self._artifacts, version)
        rollups = await asyncio.to_thread(self._store.list_rollups, version.model, str(version.version), start, until)
        # Drift statistics are numpy and scipy work: off the event loop.
        return await asyncio.to_thread(
            build_report, version.model, version.version, rollups, minutes=minutes, baseline=baseline, rule=self._rule
        )
