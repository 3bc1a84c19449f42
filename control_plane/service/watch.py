"""WatchAssignments: a pool's assignments now, then again whenever its generation changes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from contract.entities import PoolAssignments
from control_plane.service.changes import Changes
from control_plane.store import AbstractStore

__all__ = ["WatchService"]


class WatchService:
    """Args:
    poll_interval: Seconds between checks of the generation in the database, which is how a change made through
        another replica is noticed; changes made through this process wake the watch at once.
    """

    def __init__(self, store: AbstractStore, changes: Changes, *, poll_interval: float) -> None:
        self._store = store
        self._changes = changes
        self._poll_interval = poll_interval

    async def watch(self, pool: str) -> AsyncIterator[PoolAssignments]:
        """Yield the pool's assignments at once, then on every change; returns when the server stops."""
        seen: int | None = None
        while not self._changes.closed:
            # The ticket first, the generation second: a change notified in between still wakes the wait below.
            ticket = self._changes.ticket()
            generation = await asyncio.to_thread(self._store.generation, pool)
            if generation != seen:
                assignments = await asyncio.to_thread(self._store.assignments, pool)
                seen = assignments.generation
                yield assignments
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await ticket.wait()
