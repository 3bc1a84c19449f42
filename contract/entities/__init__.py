"""What the registry holds, as plain immutable values.

Stores return these, never ORM rows: an entity is complete when the session that read it closes, so nothing outside
the store can trigger a lazy load or write through a stale row.

One module per domain; import them from here (``from contract.entities import ModelVersion``).
"""

from contract.entities._alerting import AlertEvent, AlertRuleRecord, AlertStatus, JobRecord, JobRun
from contract.entities._common import Page
from contract.entities._datasets import (
    LISTED_CATEGORIES,
    TRAINING_PROFILE,
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    DatasetVersion,
    NewDatasetVersion,
    TrainingProfile,
)
from contract.entities._deployments import (
    UNSEEN_CATEGORIES,
    ArtifactRef,
    Assignment,
    Deployment,
    DeploymentSpec,
    LoadedModel,
    PoolAssignments,
    ServerRecord,
    ServerStatus,
    UnseenCategories,
    unseen_categories_of,
)
from contract.entities._imports import IMPORT_FORMATS, ImportSpec, redact_source_url
from contract.entities._monitoring import (
    DatasetRef,
    DriftRule,
    FeatureDrift,
    LatencyHistogram,
    MonitoringReport,
    MonitoringWindow,
    NewPredictionLog,
    PredictionLog,
    Rollup,
)
from contract.entities._registry import (
    AliasChange,
    Attachment,
    AttachmentContent,
    Lineage,
    Model,
    ModelVersion,
    NewVersion,
    TensorSignature,
    VersionRef,
)
from contract.entities._users import AuditEntry, Callers, CallerToken, Role, User

__all__ = [
    "IMPORT_FORMATS",
    "LISTED_CATEGORIES",
    "TRAINING_PROFILE",
    "UNSEEN_CATEGORIES",
    "AlertEvent",
    "AlertRuleRecord",
    "AlertStatus",
    "AliasChange",
    "ArtifactRef",
    "Assignment",
    "Attachment",
    "AttachmentContent",
    "AuditEntry",
    "CallerToken",
    "Callers",
    "CategoryCount",
    "ColumnProfile",
    "DatasetProfile",
    "DatasetRef",
    "DatasetVersion",
    "Deployment",
    "DeploymentSpec",
    "DriftRule",
    "FeatureDrift",
    "ImportSpec",
    "JobRecord",
    "JobRun",
    "LatencyHistogram",
    "Lineage",
    "LoadedModel",
    "Model",
    "ModelVersion",
    "MonitoringReport",
    "MonitoringWindow",
    "NewDatasetVersion",
    "NewPredictionLog",
    "NewVersion",
    "Page",
    "PoolAssignments",
    "PredictionLog",
    "Role",
    "Rollup",
    "ServerRecord",
    "ServerStatus",
    "TensorSignature",
    "TrainingProfile",
    "UnseenCategories",
    "User",
    "VersionRef",
    "redact_source_url",
    "unseen_categories_of",
]
