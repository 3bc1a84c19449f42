"""Prediction logs to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

from contract.entities import NewPredictionLog, PredictionLog
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport.converters import datetime_of, timestamp

__all__ = ["new_prediction_log", "prediction_log"]


def prediction_log(value: PredictionLog) -> cp.PredictionLog:
    return cp.PredictionLog(
        id=value.id,
        model=value.model,
        version=value.version,
        first_at=timestamp(value.first_at),
        last_at=timestamp(value.last_at),
        rows=value.rows,
        sha256=value.sha256,
        size_bytes=value.size_bytes,
        server=value.server,
        created_at=timestamp(value.created_at),
    )


def new_prediction_log(message: cp.PredictionLogHeader) -> NewPredictionLog:
    first_at, last_at = datetime_of(message, "first_at"), datetime_of(message, "last_at")
    if first_at is None or last_at is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the header must set first_at and last_at")
    return NewPredictionLog(
        model=message.model,
        version=message.version,
        first_at=first_at,
        last_at=last_at,
        rows=message.rows,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        server=message.server,
    )
