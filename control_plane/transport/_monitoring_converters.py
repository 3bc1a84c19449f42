"""Monitoring reports and prediction logs to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

from contract.entities import (
    FeatureDrift,
    LatencyHistogram,
    MonitoringReport,
    MonitoringWindow,
    NewPredictionLog,
    PredictionLog,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._converters import datetime_of, timestamp

__all__ = ["latency_histogram", "monitoring_response", "new_prediction_log", "prediction_log"]


def latency_histogram(value: LatencyHistogram) -> cp.LatencyHistogram:
    message = cp.LatencyHistogram(
        bounds=list(value.bounds), counts=list(value.counts), count=value.count, sum=value.sum
    )
    if value.min is not None:
        message.min = value.min
    if value.max is not None:
        message.max = value.max
    return message


def _feature_drift(value: FeatureDrift) -> cp.FeatureDrift:
    message = cp.FeatureDrift(
        feature=value.feature,
        kind=value.kind,
        count=value.count,
        psi=value.psi,
        js=value.js,
        chi2=value.chi2,
        chi2_p_value=value.chi2_p_value,
        drifted=value.drifted,
        cells=value.cells,
        observed=value.observed,
        expected=value.expected,
    )
    if value.ks is not None and value.ks_p_value is not None:
        message.ks, message.ks_p_value = value.ks, value.ks_p_value
    return message


def _monitoring_window(value: MonitoringWindow) -> cp.MonitoringWindow:
    message = cp.MonitoringWindow(
        start=timestamp(value.start),
        end=timestamp(value.end),
        requests=value.requests,
        errors=dict(value.errors),
        features=[_feature_drift(f) for f in value.features],
        dataset_drift=value.dataset_drift,
        drifted_share=value.drifted_share,
    )
    if value.latency is not None:
        message.latency.CopyFrom(latency_histogram(value.latency))
    for field, estimate in zip(("latency_p50", "latency_p90", "latency_p99"), value.quantiles, strict=True):
        if estimate is not None:
            setattr(message, field, estimate)
    return message


def monitoring_response(value: MonitoringReport) -> cp.GetMonitoringResponse:
    rule = value.rule
    message = cp.GetMonitoringResponse(
        model=value.model,
        version=value.version,
        thresholds=cp.DriftThresholds(
            psi_threshold=rule.psi_threshold, chi2_p_threshold=rule.chi2_p_threshold, drift_share=rule.drift_share
        ),
        windows=[_monitoring_window(w) for w in value.windows],
    )
    if value.baseline is not None:
        message.baseline.CopyFrom(cp.DatasetRef(name=value.baseline.name, version=value.baseline.version))
    return message


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
