"""Prediction logs to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

from datetime import UTC

from control_plane.entities import NewPredictionLog, PredictionLog
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport.converters import timestamp
from inference_server.errors import ConduitError, ErrorCode

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
    if not message.HasField("first_at") or not message.HasField("last_at"):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the header must set first_at and last_at")
    return NewPredictionLog(
        model=message.model,
        version=message.version,
        first_at=message.first_at.ToDatetime(tzinfo=UTC),
        last_at=message.last_at.ToDatetime(tzinfo=UTC),
        rows=message.rows,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        server=message.server,
    )
