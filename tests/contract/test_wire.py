"""contract.wire: every entity survives the trip to its message and back unchanged, and what a message leaves unset
comes back as the entity's "none"."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from contract import wire
from contract.entities import (
    AlertEvent,
    AlertRuleRecord,
    AlertStatus,
    AliasChange,
    ArtifactRef,
    Assignment,
    Attachment,
    AuditEntry,
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    DatasetRef,
    DatasetVersion,
    Deployment,
    DriftRule,
    FeatureDrift,
    JobRecord,
    JobRun,
    LatencyHistogram,
    Lineage,
    LoadedModel,
    Model,
    ModelVersion,
    MonitoringReport,
    MonitoringWindow,
    NewPredictionLog,
    PoolAssignments,
    PredictionLog,
    Role,
    ServerRecord,
    ServerStatus,
    TensorSignature,
    User,
    VersionRef,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp

AT = datetime(2026, 12, 6, 5, 30, 12, 345678, tzinfo=UTC)
LATER = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
REF = ArtifactRef(3, "ab" * 32, 1234)
PROFILE = DatasetProfile(
    rows=10,
    columns=(
        ColumnProfile(
            "amount", "Float64", "numeric", 1, 0.1, (-math.inf, 0.5, math.inf), (4, 5), 0.0, 9.5, 3.2, 1.1, 9
        ),
        ColumnProfile("city", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("paris", 7),), distinct=2),
    ),
)
VERSION = ModelVersion(
    model="fraud",
    version=3,
    sha256="cd" * 32,
    size_bytes=99,
    inputs=(TensorSignature("input", "FP32", (-1, 32)),),
    outputs=(TensorSignature("label", "INT64", (-1,)), TensorSignature("probabilities", "FP32", (-1, 2))),
    metrics={"auc": 0.93},
    params={"C": "1.0"},
    tags={"team": "risk"},
    lineage=Lineage("credit", "0123456789abcdef", "[model]\n", "deadbeef", 2),
    description="tuned",
    created_at=AT,
    created_by="alice",
    aliases=("production",),
    attachments=(Attachment("evaluation.json", "application/json", "ef" * 32, 10),),
)
WINDOW = MonitoringWindow(
    start=AT,
    end=LATER,
    requests=40,
    errors={"INVALID_ARGUMENT": 2},
    latency=LatencyHistogram((0.001, 0.01), (5, 30, 5), 40, 0.2, 0.0005, None),
    quantiles=(0.004, None, 0.02),
    features=(
        FeatureDrift(
            "amount", "numeric", 40, 0.3, 0.2, 12.0, 0.001, True, 0.25, 0.01, ("[0, 1]", "missing"), (30, 10), (50, 0)
        ),
        FeatureDrift("city", "categorical", 40, 0.01, 0.02, 1.0, 0.6, False),
    ),
    dataset_drift=True,
    drifted_share=0.5,
)

# (entity, to message, from message)
ROUND_TRIPS: list[tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]] = [
    (Model("fraud", "", False, AT, "alice", 3, {"production": 3}), wire.model, wire.model_of),
    (VERSION, wire.model_version, wire.model_version_of),
    (AliasChange("fraud", "production", 3, None), wire.alias, wire.alias_of),
    (AliasChange("fraud", "production", 3, 2), wire.alias, wire.alias_of),
    (VersionRef("fraud"), wire.version_ref, wire.version_ref_of),
    (VersionRef("fraud", version=3), wire.version_ref, wire.version_ref_of),
    (VersionRef("fraud", alias="staging"), wire.version_ref, wire.version_ref_of),
    (PROFILE, wire.dataset_profile, wire.dataset_profile_of),
    (
        DatasetVersion(
            "credit", "0123456789abcdef", "12" * 32, 5, PROFILE, "file:credit.csv", "default", "", AT, "bob"
        ),
        wire.dataset_version,
        wire.dataset_version_of,
    ),
    (
        Deployment(
            7, "default", "fraud", "production", None, 4, 10.0, True, AT, "alice", 3, unseen_categories="refuse"
        ),
        wire.deployment,
        wire.deployment_of,
    ),
    (
        Deployment(8, "default", "fraud", None, 3, None, 0.0, False, AT, "alice", 3, undeployed=True),
        wire.deployment,
        wire.deployment_of,
    ),
    (
        ServerStatus(
            ServerRecord("s1", "default", "10.0.0.1:8001", "pod-1", AT, LATER, (LoadedModel("fraud", 3, "READY"),), 5),
            True,
        ),
        wire.server,
        wire.server_of,
    ),
    (ServerStatus(ServerRecord("s2", "default", "", "pod-2", AT, None, (), 0), False), wire.server, wire.server_of),
    (
        PoolAssignments.of(
            "default",
            9,
            [
                Assignment("b", REF, unseen_categories="refuse"),
                Assignment("a", REF, ArtifactRef(4, "0f" * 32, 1), 25.0),
            ],
        ),
        wire.assignments,
        wire.assignments_of,
    ),
    (User("alice", Role.MAINTAINER, False, AT), wire.user, wire.user_of),
    (
        AuditEntry(1, AT, "alice", "SetAlias", "model/fraud@production", {"version": 2}, {"version": 3}),
        wire.audit_entry,
        wire.audit_entry_of,
    ),
    (
        AuditEntry(2, AT, "alice", "DeleteAlias", "model/fraud@staging", {"version": 2}, None),
        wire.audit_entry,
        wire.audit_entry_of,
    ),
    (
        AlertRuleRecord("slow", "fraud", "production", "p99 > 100ms for 5m", "log", AT, "alice", LATER),
        wire.alert_rule,
        wire.alert_rule_of,
    ),
    (AlertRuleRecord("any", "fraud", None, "error_rate > 5%", "log", AT, "alice"), wire.alert_rule, wire.alert_rule_of),
    (AlertStatus("slow", "fraud", "3", "firing", AT, 0.25, True, "p99 0.25s"), wire.alert, wire.alert_of),
    (AlertStatus("slow", "fraud", "4", "inactive", None, None, False), wire.alert, wire.alert_of),
    (
        AlertEvent(
            5, "slow", "fraud", "3", "firing", AT, 0.25, "p99", "webhook:https://hooks.example/…", "delivered", 1, ""
        ),
        wire.alert_event,
        wire.alert_event_of,
    ),
    (JobRecord("nightly", "0 3 * * *", "train", "[model]\n", AT, "alice"), wire.job, wire.job_of),
    (JobRecord("gc", "@daily", "gc", None, AT, "alice"), wire.job, wire.job_of),
    (JobRun("nightly", AT, "cp-1", AT, LATER, "succeeded", "trained"), wire.job_run, wire.job_run_of),
    (JobRun("nightly", AT, "cp-1", AT, None, "", ""), wire.job_run, wire.job_run_of),
    (
        MonitoringReport("fraud", 3, DatasetRef("credit", "0123456789abcdef"), DriftRule(0.1, 0.05, 0.3), (WINDOW,)),
        wire.monitoring_report,
        wire.monitoring_report_of,
    ),
    (MonitoringReport("fraud", 3, None, DriftRule(), ()), wire.monitoring_report, wire.monitoring_report_of),
    (
        PredictionLog(4, "fraud", 3, AT, LATER, 6, "aa" * 32, 700, "pod-7", LATER, ""),
        wire.prediction_log,
        wire.prediction_log_of,
    ),
    (
        NewPredictionLog("fraud", 3, AT, LATER, 6, "aa" * 32, 700, "pod-7"),
        wire.prediction_log_header,
        wire.new_prediction_log_of,
    ),
]


@pytest.mark.parametrize(("entity", "to_message", "of_message"), ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_an_entity_survives_its_message(
    entity: Any, to_message: Callable[[Any], Any], of_message: Callable[[Any], Any]
) -> None:
    message = to_message(entity)
    # Through the bytes, as on the wire.
    assert of_message(type(message).FromString(message.SerializeToString())) == entity


def test_unset_optional_fields_come_back_as_none() -> None:
    window = wire.monitoring_report_of(cp.GetMonitoringResponse(model="m", version=1, windows=[_window()])).windows[0]
    assert window.latency is None and window.quantiles == (None, None, None)
    assert window.p50 is None and window.p99 is None
    event = wire.alert_event_of(cp.AlertEvent(id=1, at=wire.timestamp(AT)))
    assert event.value is None
    assert (
        wire.assignments_of(
            cp.Assignments(pool="p", models=[cp.Assignment(model="m", primary=cp.ArtifactRef(version=1))])
        )
        .models[0]
        .canary
        is None
    )


def _window() -> cp.MonitoringWindow:
    return cp.MonitoringWindow(start=wire.timestamp(AT), end=wire.timestamp(LATER))


def test_an_answer_without_its_creation_time_is_refused() -> None:
    with pytest.raises(ConduitError) as refused:
        wire.model_of(cp.Model(name="m"))
    assert refused.value.code is ErrorCode.INTERNAL


def test_a_header_without_its_times_is_invalid() -> None:
    with pytest.raises(ConduitError) as refused:
        wire.new_prediction_log_of(cp.PredictionLogHeader(model="m", version=1))
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_an_unknown_role_is_invalid() -> None:
    with pytest.raises(ConduitError) as refused:
        wire.role_of(cp.ROLE_UNSPECIFIED)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
