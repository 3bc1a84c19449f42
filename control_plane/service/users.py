"""Users, their tokens, the first admin, and the audit log."""

from __future__ import annotations

import asyncio
from datetime import datetime

from contract.entities import AuditEntry, Callers, Page, Role, User
from contract.errors import ConduitError, ErrorCode
from control_plane.auth import hash_token, new_token
from control_plane.store import AbstractStore

__all__ = ["ADMIN_USER", "UserService"]

ADMIN_USER = "admin"


class UserService:
    """A token is returned in plaintext exactly once, when it is made; the store keeps its hash only."""

    def __init__(self, store: AbstractStore) -> None:
        self._store = store

    async def bootstrap_admin(self, token: str | None) -> str | None:
        """Create user ``admin`` when the registry has no user at all.

        Args:
            token: The admin's token; ``None`` or empty: generate one.

        Returns:
            The generated token when one was generated and the admin created (to be shown once), else ``None``.
        """
        secret = token or new_token()
        created = await asyncio.to_thread(self._store.bootstrap_admin, ADMIN_USER, hash_token(secret))
        return secret if created and not token else None

    async def create_user(self, name: str, role: Role, *, actor: str) -> tuple[User, str]:
        """The new user and its first token."""
        token = new_token()
        user = await asyncio.to_thread(self._store.create_user, name, role, hash_token(token), actor=actor)
        return user, token

    async def create_token(self, user: str, *, actor: str) -> str:
        """Another token for ``user``; the ones it already has keep working."""
        token = new_token()
        await asyncio.to_thread(self._store.add_token, user, hash_token(token), actor=actor)
        return token

    async def disable_user(self, name: str, *, actor: str) -> User:
        if name == actor:
            # An admin locking itself out could leave the registry with nobody able to create users.
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, "a user cannot disable itself")
        return await asyncio.to_thread(self._store.disable_user, name, actor=actor)

    async def list_users(self) -> list[User]:
        return await asyncio.to_thread(self._store.list_users)

    async def callers(self, digest: str = "") -> Callers:
        """The token hashes inference servers accept; ``unchanged`` when the asker holds ``digest`` already."""
        current = Callers.of(await asyncio.to_thread(self._store.callers))
        return Callers(current.digest, unchanged=True) if digest and digest == current.digest else current

    async def list_audit(
        self,
        *,
        since: datetime | None,
        actor: str | None,
        action: str | None,
        target_prefix: str | None,
        page_size: int,
        page_token: str,
    ) -> Page[AuditEntry]:
        return await asyncio.to_thread(
            self._store.list_audit,
            since=since,
            actor=actor,
            action=action,
            target_prefix=target_prefix,
            page_size=page_size,
            page_token=page_token,
        )
