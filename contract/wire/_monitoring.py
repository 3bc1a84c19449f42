"""Monitoring reports, latency histograms and prediction logs to and from their messages."""

from __future__ import annotations

from contract.entities import (
    DatasetRef,
    DriftRule,
    FeatureDrift,
    LatencyHistogram,
    MonitoringReport,
    MonitoringWindow,
    NewPredictionLog,
    PredictionLog,
)
from contract.errors import ConduitError, ErrorCode
from contract.wire._fields import optional_double
from contract.wire._time import datetime_of, required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "QUANTILE_FIELDS",
    "latency_histogram",
    "latency_histogram_of",
    "monitoring_report",
    "monitoring_report_of",
    "new_prediction_log_of",
    "prediction_log",
    "prediction_log_header",
    "prediction_log_of",
]

QUANTILE_FIELDS = ("latency_p50", "latency_p90", "latency_p99")
"""The fields of a window's ``quantiles``, in order."""


def latency_histogram(value: LatencyHistogram) -> cp.LatencyHistogram:
    message = cp.LatencyHistogram(
        bounds=list(value.bounds), counts=list(value.counts), count=value.count, sum=value.sum
    )
    if value.min is not None:
        message.min = value.min
    if value.max is not None:
        message.max = value.max
    return message


def latency_histogram_of(message: cp.LatencyHistogram) -> LatencyHistogram:
    return LatencyHistogram(
        bounds=tuple(message.bounds),
        counts=tuple(message.counts),
        count=message.count,
        sum=message.sum,
        min=optional_double(message, "min"),
        max=optional_double(message, "max"),
    )


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
        too_few_rows=value.too_few_rows,
    )
    if value.ks is not None and value.ks_p_value is not None:
        message.ks, message.ks_p_value = value.ks, value.ks_p_value
    if value.unseen is not None:
        message.unseen = value.unseen
    return message


def _feature_drift_of(message: cp.FeatureDrift) -> FeatureDrift:
    return FeatureDrift(
        feature=message.feature,
        kind=message.kind,
        count=message.count,
        psi=message.psi,
        js=message.js,
        chi2=message.chi2,
        chi2_p_value=message.chi2_p_value,
        drifted=message.drifted,
        ks=optional_double(message, "ks"),
        ks_p_value=optional_double(message, "ks_p_value"),
        cells=tuple(message.cells),
        observed=tuple(message.observed),
        expected=tuple(message.expected),
        too_few_rows=message.too_few_rows,
        unseen=message.unseen if message.HasField("unseen") else None,
    )


def _window(value: MonitoringWindow) -> cp.MonitoringWindow:
    message = cp.MonitoringWindow(
        start=timestamp(value.start),
        end=timestamp(value.end),
        requests=value.requests,
        errors=dict(value.errors),
        features=[_feature_drift(f) for f in value.features],
        dataset_drift=value.dataset_drift,
        drifted_share=value.drifted_share,
        too_few_rows=value.too_few_rows,
    )
    if value.latency is not None:
        message.latency.CopyFrom(latency_histogram(value.latency))
    for field, estimate in zip(QUANTILE_FIELDS, value.quantiles, strict=True):
        if estimate is not None:
            setattr(message, field, estimate)
    return message


def _window_of(message: cp.MonitoringWindow) -> MonitoringWindow:
    return MonitoringWindow(
        start=required_datetime_of(message, "start"),
        end=required_datetime_of(message, "end"),
        requests=message.requests,
        errors=dict(message.errors),
        latency=latency_histogram_of(message.latency) if message.HasField("latency") else None,
        quantiles=tuple(optional_double(message, field) for field in QUANTILE_FIELDS),
        features=tuple(_feature_drift_of(f) for f in message.features),
        dataset_drift=message.dataset_drift,
        drifted_share=message.drifted_share,
        too_few_rows=message.too_few_rows,
    )


def monitoring_report(value: MonitoringReport) -> cp.GetMonitoringResponse:
    rule = value.rule
    message = cp.GetMonitoringResponse(
        model=value.model,
        version=value.version,
        thresholds=cp.DriftThresholds(
            psi_threshold=rule.psi_threshold,
            chi2_p_threshold=rule.chi2_p_threshold,
            drift_share=rule.drift_share,
            min_rows=rule.min_rows,
            min_expected=rule.min_expected,
        ),
        windows=[_window(w) for w in value.windows],
    )
    if value.baseline is not None:
        message.baseline.CopyFrom(cp.DatasetRef(name=value.baseline.name, version=value.baseline.version))
    return message


def monitoring_report_of(message: cp.GetMonitoringResponse) -> MonitoringReport:
    thresholds = message.thresholds
    return MonitoringReport(
        model=message.model,
        version=message.version,
        baseline=DatasetRef(message.baseline.name, message.baseline.version) if message.HasField("baseline") else None,
        rule=DriftRule(
            thresholds.psi_threshold,
            thresholds.chi2_p_threshold,
            thresholds.drift_share,
            thresholds.min_rows,
            thresholds.min_expected,
        ),
        windows=tuple(_window_of(w) for w in message.windows),
    )


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


def prediction_log_of(message: cp.PredictionLog) -> PredictionLog:
    """The log as listed; the message does not say who uploaded it, so ``created_by`` is empty."""
    return PredictionLog(
        id=message.id,
        model=message.model,
        version=message.version,
        first_at=required_datetime_of(message, "first_at"),
        last_at=required_datetime_of(message, "last_at"),
        rows=message.rows,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        server=message.server,
        created_at=required_datetime_of(message, "created_at"),
        created_by="",
    )


def prediction_log_header(value: NewPredictionLog) -> cp.PredictionLogHeader:
    return cp.PredictionLogHeader(
        model=value.model,
        version=value.version,
        first_at=timestamp(value.first_at),
        last_at=timestamp(value.last_at),
        rows=value.rows,
        sha256=value.sha256,
        size_bytes=value.size_bytes,
        server=value.server,
    )


def new_prediction_log_of(message: cp.PredictionLogHeader) -> NewPredictionLog:
    """Raises: ConduitError: INVALID_ARGUMENT when the header leaves a time unset."""
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
