"""The one error family of Conduit: every failure a caller can see is a ``ConduitError`` with an ``ErrorCode``.

Transports map codes to their own status (``contract.status`` holds the gRPC table); the core never imports a
transport.
"""

from __future__ import annotations

import enum

__all__ = ["ConduitError", "ErrorCode"]


class ErrorCode(enum.Enum):
    """What went wrong, independent of the transport that reports it."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"


class ConduitError(Exception):
    """An error with a code a caller can act on and a message a person can read."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ConduitError({self.code.name}, {self.message!r})"
