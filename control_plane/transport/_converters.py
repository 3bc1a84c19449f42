"""The converters every domain's messages share: timestamps and version references."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import VersionRef

__all__ = ["datetime_of", "timestamp", "version_ref"]


def timestamp(value: datetime) -> Timestamp:
    """A datetime as a Timestamp (naive datetimes are UTC, as the store writes them)."""
    result = Timestamp()
    result.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return result


def datetime_of(message: Any, field: str) -> datetime | None:
    """The Timestamp ``field`` of ``message`` as an aware UTC datetime; ``None`` when unset.

    Raises:
        ConduitError: INVALID_ARGUMENT when the Timestamp is outside years 1 to 9999 (or its nanos outside a second).
    """
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{field} out of range") from None


def version_ref(message: cp.VersionRef) -> VersionRef:
    selector = message.WhichOneof("selector")
    if selector == "version":
        return VersionRef(message.model, version=message.version)
    if selector == "alias":
        return VersionRef(message.model, alias=message.alias)
    return VersionRef(message.model)
