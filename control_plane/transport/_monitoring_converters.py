"""Prediction log uploads as the core's values (``contract.wire`` converts the entities)."""

from __future__ import annotations

from contract.entities import NewPredictionLog
from contract.errors import ConduitError, ErrorCode
from contract.wire import datetime_of
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["new_prediction_log"]


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
