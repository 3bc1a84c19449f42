"""Inference servers: registration, heartbeats and who is alive; whose server each one is.

A registration belongs to the user whose token made it. Only that user's tokens register the name again, heartbeat
its id, watch as it or upload prediction logs in its name; another user gets PERMISSION_DENIED until the
registration has been silent for ``server_expiry``, after which the name may be taken (under a new id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from contract.entities import LoadedModel, ServerRecord, ServerStatus
from contract.errors import ConduitError, ErrorCode
from control_plane.store import AbstractStore, shown

__all__ = ["Clock", "ServerService", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServerService:
    """Args:
    server_timeout: Seconds without a heartbeat (or, before the first one, since registration) after which a
        server is no longer alive.
    server_expiry: Seconds without a heartbeat or registration after which another user may take the server's
        name; ``None``: never.
    clock: The current time, timezone-aware.
    """

    def __init__(
        self,
        store: AbstractStore,
        *,
        server_timeout: float,
        server_expiry: float | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._timeout = timedelta(seconds=server_timeout)
        self._expiry = None if server_expiry is None else timedelta(seconds=server_expiry)
        self._clock = clock

    async def register(self, pool: str, address: str, name: str, *, actor: str) -> ServerRecord:
        """Register ``name`` as ``actor``'s server. Raises PERMISSION_DENIED when another user's registration of
        ``name`` has not expired."""
        return await asyncio.to_thread(
            self._store.register_server, pool, address, name, actor=actor, at=self._clock(), expiry=self._expiry
        )

    async def heartbeat(self, server_id: str, models: Sequence[LoadedModel], generation: int, *, actor: str) -> int:
        """Record the server's state; returns its pool's current assignments generation. Raises NOT_FOUND for an
        unknown id, PERMISSION_DENIED for another user's server."""
        return await asyncio.to_thread(
            self._store.heartbeat, server_id, models, generation, at=self._clock(), owner=actor
        )

    async def check_owner(self, server_id: str, *, actor: str) -> ServerRecord:
        """The server ``actor`` acts as. Raises NOT_FOUND for an unknown id, PERMISSION_DENIED for another user's
        server."""
        record = await asyncio.to_thread(self._store.get_server, server_id)
        if record.owner != actor:
            # Unowned registrations (from before owners were kept) are claimed by registering, as for heartbeats.
            if record.owner is None:
                raise ConduitError(ErrorCode.NOT_FOUND, f"server {shown(server_id)} is not registered")
            raise ConduitError(ErrorCode.PERMISSION_DENIED, f"server {shown(server_id)} is registered by another user")
        return record

    async def check_name(self, name: str, *, actor: str) -> None:
        """Refuse ``actor`` speaking in the name of a server another user registered (PERMISSION_DENIED); a name
        nobody registered is the caller's to use."""
        record = await asyncio.to_thread(self._store.find_server, name)
        if record is not None and record.owner not in (None, actor):
            raise ConduitError(ErrorCode.PERMISSION_DENIED, f"server name {shown(name)} is registered by another user")

    async def list_servers(self, pool: str | None) -> list[ServerStatus]:
        records = await asyncio.to_thread(self._store.list_servers, pool)
        now = self._clock()
        return [ServerStatus(record, now - record.last_heard() <= self._timeout) for record in records]
