"""Timestamps: the one conversion between datetimes and ``google.protobuf.Timestamp``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from contract.errors import ConduitError, ErrorCode

__all__ = ["datetime_of", "required_datetime_of", "timestamp"]


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


def required_datetime_of(message: Any, field: str) -> datetime:
    """``datetime_of`` of a field every answer sets.

    Raises:
        ConduitError: INTERNAL when the peer left it unset, INVALID_ARGUMENT when it is out of range.
    """
    value = datetime_of(message, field)
    if value is None:
        raise ConduitError(ErrorCode.INTERNAL, f"the answer ({type(message).__name__}) has no {field}")
    return value
