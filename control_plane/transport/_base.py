"""What every domain's servicer holds: the core's services, the authenticator, and the guarded call."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from contract.entities import User
from control_plane.auth import Authenticator
from control_plane.service import Services
from control_plane.transport._calls import Context, guarded

__all__ = ["DomainServicer"]


class DomainServicer:
    """The base of the domain servicers that ``ControlPlaneServicer`` combines into one gRPC service."""

    def __init__(self, services: Services, authenticator: Authenticator) -> None:
        self._s = services
        self._auth = authenticator

    def _call(self, name: str, context: Context) -> AbstractAsyncContextManager[User]:
        """Every call runs inside this: it yields the authorized caller and answers any failure with its status."""
        return guarded(name, context, self._auth)
