"""The one table that maps Conduit error codes to gRPC status codes, both ways."""

from __future__ import annotations

import grpc

from contract.errors import ConduitError, ErrorCode

__all__ = ["MAX_DETAILS_BYTES", "STATUS_OF", "details_of", "error_from_rpc", "error_from_status", "status_of"]

STATUS_OF: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}
_CODE_OF: dict[grpc.StatusCode, ErrorCode] = {status: code for code, status in STATUS_OF.items()}


def status_of(code: ErrorCode) -> grpc.StatusCode:
    """The gRPC status a ``ConduitError`` with ``code`` is answered with."""
    return STATUS_OF[code]


MAX_DETAILS_BYTES = 1024
"""Most UTF-8 bytes of a status's message. It travels percent-encoded in the ``grpc-message`` trailer (up to 3
bytes per byte), and a trailer above the peer's metadata limit (8 KiB by default) replaces the whole status with
RESOURCE_EXHAUSTED: a message echoing a caller's 10,000-character name must still arrive as INVALID_ARGUMENT."""


def details_of(message: str) -> str:
    """``message`` as a status's details: at most ``MAX_DETAILS_BYTES`` of UTF-8, cut with an ellipsis."""
    encoded = message.encode()
    if len(encoded) <= MAX_DETAILS_BYTES:
        return message
    ellipsis = "…"
    kept = encoded[: MAX_DETAILS_BYTES - len(ellipsis.encode())].decode(errors="ignore")
    return kept + ellipsis


def error_from_status(status: grpc.StatusCode, message: str) -> ConduitError:
    """Turn a gRPC status received by a client back into a ``ConduitError`` (unknown statuses become INTERNAL)."""
    return ConduitError(_CODE_OF.get(status, ErrorCode.INTERNAL), message)


def error_from_rpc(method: str, error: grpc.RpcError) -> ConduitError:
    """The ``ConduitError`` for a failed call, keeping the server's message next to the status name."""
    # Every error a call raises (sync or aio) carries code() and details(); the bare RpcError base does not.
    code = getattr(error, "code", None)
    status = code() if callable(code) else grpc.StatusCode.UNKNOWN
    details = getattr(error, "details", None)
    message = (details() if callable(details) else None) or str(error)
    return error_from_status(status, f"{method} failed with {status.name}: {message}")
