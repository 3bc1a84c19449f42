"""Inference servers: registration, heartbeats and who is alive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from contract.entities import LoadedModel, ServerRecord, ServerStatus
from control_plane.store import AbstractStore

__all__ = ["Clock", "ServerService", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServerService:
    """Args:
    server_timeout: Seconds without a heartbeat (or, before the first one, since registration) after which a
        server is no longer alive.
    clock: The current time, timezone-aware.
    """

    def __init__(self, store: AbstractStore, *, server_timeout: float, clock: Clock = utc_now) -> None:
        self._store = store
        self._timeout = timedelta(seconds=server_timeout)
        self._clock = clock

    async def register(self, pool: str, address: str, name: str, *, actor: str) -> ServerRecord:
        return await asyncio.to_thread(self._store.register_server, pool, address, name, actor=actor)

    async def heartbeat(self, server_id: str, models: Sequence[LoadedModel], generation: int) -> int:
        """Record the server's state; returns its pool's current assignments generation."""
        return await asyncio.to_thread(self._store.heartbeat, server_id, models, generation, at=self._clock())

    async def list_servers(self, pool: str | None) -> list[ServerStatus]:
        records = await asyncio.to_thread(self._store.list_servers, pool)
        now = self._clock()
        return [ServerStatus(record, self._alive(record, now)) for record in records]

    def _alive(self, record: ServerRecord, now: datetime) -> bool:
        heard = record.last_heartbeat or record.registered_at
        if heard.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
            heard = heard.replace(tzinfo=UTC)
        return now - heard <= self._timeout
