"""The registry's tables as SQLAlchemy 2.0 typed ORM classes; Alembic migrations create them, never this module.

Every constraint and index is named (``NAMING``) so a later migration can drop or alter it by name on both SQLite and
PostgreSQL. Timestamps are stored timezone-aware and always come back in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "NAMING",
    "AlertRuleRow",
    "AlertSecretRow",
    "AliasRow",
    "AttachmentRow",
    "AuditRow",
    "Base",
    "DatasetRow",
    "DatasetVersionRow",
    "DeploymentRow",
    "JobRow",
    "ModelRow",
    "PoolRow",
    "PredictionLogRow",
    "RollupRow",
    "ServerRow",
    "SketchRow",
    "TagRow",
    "TokenRow",
    "UserRow",
    "UtcDateTime",
    "VersionRow",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME = 128
DIGEST = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp. SQLite keeps no zone, so values are normalised to UTC on the way in and tagged UTC
    on the way out; PostgreSQL's ``timestamptz`` comes back in the session's zone and is converted likewise."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry; pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    description: Mapped[str] = mapped_column(Text)
    archived: Mapped[bool]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))
    latest_version: Mapped[int] = mapped_column(Integer)
    """The version counter: bumped under the row's lock, so concurrent registrations get consecutive numbers."""

    aliases: Mapped[list[AliasRow]] = relationship(lazy="selectin", order_by="AliasRow.name", viewonly=True)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(DIGEST), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[list[Any]]
    outputs: Mapped[list[Any]]
    metrics: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    lineage: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))

    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)
    tags: Mapped[list[TagRow]] = relationship(lazy="selectin", order_by="TagRow.key")
    aliases: Mapped[list[AliasRow]] = relationship(
        lazy="selectin", order_by="AliasRow.name", viewonly=True, foreign_keys="AliasRow.version_id"
    )
    attachments: Mapped[list[AttachmentRow]] = relationship(lazy="selectin", order_by="AttachmentRow.name")


class TagRow(Base):
    """Tags get their own table (not JSON) so that filtering by tag is the same indexed lookup on every backend."""

    __tablename__ = "version_tags"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AttachmentRow(Base):
    """A document stored with a version; its content is an artifact, named by ``sha256``."""

    __tablename__ = "version_attachments"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(DIGEST), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)


class AliasRow(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    name: Mapped[str] = mapped_column(String(NAME))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    # Where the alias pointed before its last move, and when it moved: what a rollback of a pool following the alias
    # returns to.
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    moved_at: Mapped[datetime]

    version: Mapped[VersionRow] = relationship(
        lazy="joined", innerjoin=True, overlaps="aliases", foreign_keys=[version_id]
    )
    previous_version: Mapped[VersionRow | None] = relationship(foreign_keys=[previous_version_id])


class DatasetRow(Base):
    """A data set name; created with its first version."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class DatasetVersionRow(Base):
    """One version of a data set, named by the client's content hash; the newest has the highest id."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[str] = mapped_column(String(DIGEST))
    sha256: Mapped[str] = mapped_column(String(DIGEST), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    profile: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))

    dataset: Mapped[DatasetRow] = relationship(lazy="joined", innerjoin=True)


class PoolRow(Base):
    """A pool of inference servers; created on first use. ``generation`` grows with every change of its assignments."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class DeploymentRow(Base):
    """One entry of a pool's deployment history; rows are only ever added, and ``active`` moves between them."""

    __tablename__ = "deployments"
    __table_args__ = (
        # At most one active entry per (pool, model): the database enforces what the store's locking ensures.
        Index(
            "uq_deployments_active",
            "pool_id",
            "model_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index(None, "pool_id", "model_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    alias: Mapped[str | None] = mapped_column(String(NAME))
    version: Mapped[int | None] = mapped_column(Integer)
    canary_version: Mapped[int | None] = mapped_column(Integer)
    canary_percent: Mapped[float]
    undeploy: Mapped[bool]
    unseen_categories: Mapped[str] = mapped_column(String(16), server_default="score")
    """``score`` or ``refuse``: what the pool's servers answer to a categorical value the training data never had."""
    active: Mapped[bool]
    replaced_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    """The entry that was active when this one was made: what a rollback returns to."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))

    pool: Mapped[PoolRow] = relationship(lazy="joined", innerjoin=True)
    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)


class ServerRow(Base):
    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)
    address: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime | None]
    models: Mapped[list[Any]]
    generation: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(NAME))
    """The user who registered it, the only one who may heartbeat or re-register it; ``None`` for a registration
    from before owners were kept (the next registration claims it)."""

    pool: Mapped[PoolRow] = relationship(lazy="joined", innerjoin=True)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool]
    created_at: Mapped[datetime]


class TokenRow(Base):
    """Only the sha256 of a token is stored: a leaked database grants no access.

    A token with a ``job`` was made for one run of that job, as the job's creator: it works until ``expires_at`` at
    the latest and is deleted when the run ends.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(DIGEST), unique=True)
    created_at: Mapped[datetime]
    job: Mapped[str | None] = mapped_column(String(NAME))
    expires_at: Mapped[datetime | None]


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(NAME))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class RollupRow(Base):
    """What the inference servers reported about one model version during one minute (``control_plane.monitoring``).

    Model and version are the names the servers send, not foreign keys: metrics of a model the registry does not hold
    (a server on a model repository) are kept too, and a roll-up outlives nothing it would have to follow.
    """

    __tablename__ = "monitoring_rollups"
    __table_args__ = (UniqueConstraint("model", "version", "minute"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(NAME))
    version: Mapped[str] = mapped_column(String(64))
    minute: Mapped[datetime] = mapped_column(index=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    """Requests answered OK."""
    errors: Mapped[dict[str, Any]]
    """Failed requests by status name."""
    # The latency histogram of the OK requests; no bounds and a zero count while none was reported.
    latency_bounds: Mapped[list[Any]]
    latency_counts: Mapped[list[Any]]
    latency_count: Mapped[int] = mapped_column(BigInteger)
    latency_sum: Mapped[float]
    latency_min: Mapped[float | None]
    latency_max: Mapped[float | None]

    sketches: Mapped[list[SketchRow]] = relationship(order_by="(SketchRow.feature, SketchRow.kind)")


class SketchRow(Base):
    """A feature's counts per bin (``numeric``) or category (``categorical``) during the roll-up's minute."""

    __tablename__ = "monitoring_sketches"

    rollup_id: Mapped[int] = mapped_column(ForeignKey("monitoring_rollups.id"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    counts: Mapped[dict[str, Any]]


class AlertRuleRow(Base):
    """An alert rule as ``conduit alerts add`` declared it; its condition in canonical text, its channel as shown
    (a webhook's URL redacted to ``scheme://host/…``): the full channel is kept apart, in ``AlertSecretRow``."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    model: Mapped[str] = mapped_column(String(NAME))
    alias: Mapped[str | None] = mapped_column(String(NAME))
    condition: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))
    silenced_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean)


class AlertSecretRow(Base):
    """An alert rule's channel in full, secrets included (a webhook URL's credentials, path token and query): read
    to deliver notifications and nowhere else, never listed, audited or shown. ``fingerprint`` (the first 12 hex
    digits of its sha256) is what the audit log shows of it, so that a change is visible without the secret."""

    __tablename__ = "alert_secrets"

    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(12))


class JobRow(Base):
    """A scheduled job as ``conduit jobs add`` declared it; ``spec`` is a train job's TOML text."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    cron: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class PredictionLogRow(Base):
    """A Parquet file of predictions an inference server sampled, stored in the artifact store under ``sha256``.

    Model and version are what the server served, not foreign keys (as for roll-ups): a log outlives nothing it
    would have to follow, and retention deletes it by age alone. ``sha256`` is unique: a file uploaded twice (a retry
    after a lost answer) is one log.
    """

    __tablename__ = "prediction_logs"
    # One index per listing: by model and version, and by model alone (every version), both newest first.
    __table_args__ = (Index(None, "model", "version", "id"), Index(None, "model", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(NAME))
    version: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime] = mapped_column(index=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(DIGEST), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    server: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))
