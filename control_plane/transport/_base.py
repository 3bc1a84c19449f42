"""What every domain's servicer holds: the core's services, the authenticator, the guarded call, and the re-checked
stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from contract.entities import User
from control_plane.auth import Authenticator
from control_plane.service import Services
from control_plane.transport._calls import Context, guarded, until_revoked

__all__ = ["DomainServicer"]

T = TypeVar("T")


class DomainServicer:
    """The base of the domain servicers that ``ControlPlaneServicer`` combines into one gRPC service."""

    def __init__(self, services: Services, authenticator: Authenticator) -> None:
        self._s = services
        self._auth = authenticator

    def _call(self, name: str, context: Context) -> AbstractAsyncContextManager[User]:
        """Every call runs inside this: it yields the authorized caller and answers any failure with its status."""
        return guarded(name, context, self._auth)

    def _live(self, context: Context, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """``items`` of a stream (sent or received) that ends with UNAUTHENTICATED within seconds of its caller's
        user being disabled or token removed: every stream goes through this, inside its ``_call``."""
        metadata = context.invocation_metadata() or ()
        return until_revoked(items, lambda: self._auth.recheck(metadata), self._auth.recheck_interval)
