"""Monitoring: metrics pushed by inference servers added to the per-minute roll-ups, and roll-ups past their
retention deleted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from control_plane.monitoring import CumulativeTracker, Point, Temporality, rollups_of
from control_plane.service.servers import Clock, utc_now
from control_plane.store import AbstractStore

__all__ = ["MonitoringService"]

log = logging.getLogger(__name__)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class MonitoringService:
    """Args:
    retention: How long roll-ups are kept; points older than that are not stored at all.
    clock: The current time, timezone-aware; cumulative series that started before the service count from their
        second point (see ``control_plane.monitoring.cumulative``).
    """

    def __init__(self, store: AbstractStore, *, retention: timedelta, clock: Clock = utc_now) -> None:
        self._store = store
        self._retention = retention
        self._clock = clock
        self._tracker = CumulativeTracker(started_ns=_ns(clock()))
        self._cumulative = asyncio.Lock()

    async def export(self, points: Sequence[Point]) -> None:
        """Add the counts of ``points`` (delta or cumulative) to the roll-ups.

        Raises:
            ConduitError: INVALID_ARGUMENT for points that break the metric contract (nothing is stored then);
                UNAVAILABLE when the database cannot be reached.
        """
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
