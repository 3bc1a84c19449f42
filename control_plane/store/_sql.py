"""``SqlStore``: the registry on SQLite or PostgreSQL through SQLAlchemy; each method is one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from contract.entities import (
    AlertRuleRecord,
    AliasChange,
    AuditEntry,
    CallerToken,
    DatasetVersion,
    Deployment,
    DeploymentSpec,
    JobRecord,
    LoadedModel,
    Model,
    ModelVersion,
    NewDatasetVersion,
    NewPredictionLog,
    NewVersion,
    Page,
    PoolAssignments,
    PredictionLog,
    Role,
    Rollup,
    ServerRecord,
    User,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.store import (
    _alerting,
    _audit,
    _datasets,
    _deployments,
    _monitoring,
    _predictions,
    _registry,
    _servers,
    _users,
)
from control_plane.store._abstract import AbstractStore
from control_plane.store._engine import Database
from control_plane.store._migrate import ensure_current

__all__ = ["SqlStore"]


class SqlStore(AbstractStore):
    """The registry in a SQL database: ``sqlite:///path/registry.db`` or ``postgresql+psycopg://user@host:port/db``.

    The schema must already be migrated (``migrate(url)``); the store never creates tables.

    Raises:
        ConduitError: INVALID_ARGUMENT for an unsupported URL; UNAVAILABLE when the database cannot be reached;
            FAILED_PRECONDITION when the schema is missing or older than this code.
    """

    def __init__(self, url: str) -> None:
        self._db = Database(url)
        try:
            ensure_current(self._db)
        except BaseException:
            self._db.dispose()
            raise

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def engine(self) -> Engine:
        """The engine, for the alerting library's tables in the same database (``SqlAlertStore``,
        ``SqlLeaseStore``)."""
        return self._db.engine

    # -- models -------------------------------------------------------------------------------------------------

    def create_model(self, name: str, description: str, *, actor: str) -> Model:
        with self._db.write() as session:
            return _registry.create_model(session, name, description, actor=actor)

    def get_model(self, name: str) -> Model:
        with self._db.read() as session:
            return _registry.get_model(session, name)

    def list_models(self, *, include_archived: bool, page_size: int, page_token: str) -> Page[Model]:
        with self._db.read() as session:
            return _registry.list_models(
                session, include_archived=include_archived, page_size=page_size, page_token=page_token
            )

    def archive_model(self, name: str, *, actor: str) -> Model:
        with self._db.write() as session:
            return _registry.archive_model(session, name, actor=actor)

    # -- versions -----------------------------------------------------------------------------------------------

    def create_version(
        self, new: NewVersion, *, actor: str, create_model: bool = False, aliases: Sequence[str] = ()
    ) -> ModelVersion:
        with self._db.write() as session:
            return _registry.create_version(session, new, actor=actor, create_model=create_model, aliases=aliases)

    def get_version(self, model: str, *, version: int | None = None, alias: str | None = None) -> ModelVersion:
        with self._db.read() as session:
            return _registry.get_version(session, model, version=version, alias=alias)

    def list_versions(
        self, model: str, *, tags: Mapping[str, str], alias: str | None, page_size: int, page_token: str
    ) -> Page[ModelVersion]:
        with self._db.read() as session:
            return _registry.list_versions(
                session, model, tags=tags, alias=alias, page_size=page_size, page_token=page_token
            )

    def artifact_digests(self) -> set[str]:
        with self._db.read() as session:
            return _registry.artifact_digests(session)

    # -- data sets ----------------------------------------------------------------------------------------------

    def create_dataset_version(self, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
        with self._db.write() as session:
            return _datasets.create_dataset_version(session, new, actor=actor)

    def rebuild_dataset_profile(self, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
        with self._db.write() as session:
            return _datasets.rebuild_dataset_profile(session, new, actor=actor)

    def get_dataset(self, name: str, version: str | None = None) -> DatasetVersion:
        with self._db.read() as session:
            return _datasets.get_dataset(session, name, version)

    def list_datasets(self, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        with self._db.read() as session:
            return _datasets.list_datasets(session, page_size=page_size, page_token=page_token)

    def list_dataset_versions(self, name: str, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        with self._db.read() as session:
            return _datasets.list_dataset_versions(session, name, page_size=page_size, page_token=page_token)

    # -- aliases ------------------------------------------------------------------------------------------------

    def set_alias(self, model: str, alias: str, version: int, *, actor: str) -> AliasChange:
        with self._db.write() as session:
            return _registry.set_alias(session, model, alias, version, actor=actor)

    def delete_alias(self, model: str, alias: str, *, actor: str) -> int:
        with self._db.write() as session:
            return _registry.delete_alias(session, model, alias, actor=actor)

    # -- deployments --------------------------------------------------------------------------------------------

    def deploy(self, spec: DeploymentSpec, *, actor: str) -> Deployment:
        with self._db.write() as session:
            return _deployments.deploy(session, spec, actor=actor)

    def rollback(self, pool: str, model: str, *, actor: str) -> Deployment:
        with self._db.write() as session:
            return _deployments.rollback(session, pool, model, actor=actor)

    def list_deployments(
        self, *, pool: str | None, model: str | None, history: bool, page_size: int, page_token: str
    ) -> Page[Deployment]:
        with self._db.read() as session:
            return _deployments.list_deployments(
                session, pool=pool, model=model, history=history, page_size=page_size, page_token=page_token
            )

    def assignments(self, pool: str) -> PoolAssignments:
        with self._db.read() as session:
            return _deployments.assignments(session, pool)

    def generation(self, pool: str) -> int:
        with self._db.read() as session:
            return _deployments.generation(session, pool)

    # -- servers ------------------------------------------------------------------------------------------------

    def register_server(
        self,
        pool: str,
        address: str,
        name: str,
        *,
        actor: str,
        at: datetime | None = None,
        expiry: timedelta | None = None,
    ) -> ServerRecord:
        with self._db.write() as session:
            return _servers.register_server(session, pool, address, name, actor=actor, at=at, expiry=expiry)

    def heartbeat(
        self, server_id: str, models: Sequence[LoadedModel], generation: int, *, at: datetime, owner: str
    ) -> int:
        with self._db.write() as session:
            return _servers.heartbeat(session, server_id, models, generation, at=at, owner=owner)

    def get_server(self, server_id: str) -> ServerRecord:
        with self._db.read() as session:
            return _servers.get_server(session, server_id)

    def find_server(self, name: str) -> ServerRecord | None:
        with self._db.read() as session:
            return _servers.find_server(session, name)

    def list_servers(self, pool: str | None) -> list[ServerRecord]:
        with self._db.read() as session:
            return _servers.list_servers(session, pool)

    # -- users --------------------------------------------------------------------------------------------------

    def create_user(self, name: str, role: Role, token_hash: str, *, actor: str) -> User:
        with self._db.write() as session:
            return _users.create_user(session, name, role, token_hash, actor=actor)

    def add_token(self, user: str, token_hash: str, *, actor: str) -> None:
        with self._db.write() as session:
            _users.add_token(session, user, token_hash, actor=actor)

    def add_job_token(self, user: str, token_hash: str, *, job: str, expires_at: datetime) -> User:
        with self._db.write() as session:
            return _users.add_job_token(session, user, token_hash, job=job, expires_at=expires_at)

    def revoke_job_token(self, token_hash: str) -> bool:
        with self._db.write() as session:
            return _users.revoke_job_token(session, token_hash)

    def disable_user(self, name: str, *, actor: str) -> User:
        with self._db.write() as session:
            return _users.disable_user(session, name, actor=actor)

    def list_users(self) -> list[User]:
        with self._db.read() as session:
            return _users.list_users(session)

    def callers(self) -> list[CallerToken]:
        with self._db.read() as session:
            return _users.callers(session)

    def user_for_token(self, token_hash: str) -> User | None:
        with self._db.read() as session:
            return _users.user_for_token(session, token_hash)

    def bootstrap_admin(self, name: str, token_hash: str) -> bool:
        try:
            with self._db.write() as session:
                return _users.bootstrap_admin(session, name, token_hash)
        except IntegrityError:
            # Another control plane created the same admin between our check and our insert.
            return False

    # -- audit --------------------------------------------------------------------------------------------------

    def list_audit(
        self,
        *,
        since: datetime | None,
        actor: str | None,
        action: str | None,
        target_prefix: str | None,
        page_size: int,
        page_token: str,
    ) -> Page[AuditEntry]:
        with self._db.read() as session:
            return _audit.list_audit(
                session,
                since=since,
                actor=actor,
                action=action,
                target_prefix=target_prefix,
                page_size=page_size,
                page_token=page_token,
            )

    # -- monitoring ---------------------------------------------------------------------------------------------

    def add_rollups(self, rollups: Sequence[Rollup]) -> None:
        with self._db.write() as session:
            _monitoring.add_rollups(session, rollups)

    def list_rollups(self, model: str, version: str, since: datetime, until: datetime) -> list[Rollup]:
        with self._db.read() as session:
            return _monitoring.list_rollups(session, model, version, since, until)

    def prune_rollups(self, before: datetime) -> int:
        with self._db.write() as session:
            return _monitoring.prune_rollups(session, before)

    # -- alert rules and jobs -----------------------------------------------------------------------------------

    def create_alert_rule(self, rule: AlertRuleRecord, *, channel: str, actor: str) -> AlertRuleRecord:
        try:
            with self._db.write() as session:
                return _alerting.create_alert_rule(session, rule, channel=channel, actor=actor)
        except IntegrityError:
            raise ConduitError(ErrorCode.ALREADY_EXISTS, f"alert rule {rule.name!r} already exists") from None

    def list_alert_rules(self) -> list[AlertRuleRecord]:
        with self._db.read() as session:
            return _alerting.list_alert_rules(session)

    def alert_rule_channels(self) -> dict[str, str]:
        with self._db.read() as session:
            return _alerting.alert_rule_channels(session)

    def delete_alert_rule(self, name: str, *, actor: str) -> AlertRuleRecord:
        with self._db.write() as session:
            return _alerting.delete_alert_rule(session, name, actor=actor)

    def silence_alert_rule(self, name: str, until: datetime | None, *, actor: str) -> AlertRuleRecord:
        with self._db.write() as session:
            return _alerting.silence_alert_rule(session, name, until, actor=actor)

    def create_job(self, job: JobRecord, *, actor: str) -> JobRecord:
        try:
            with self._db.write() as session:
                return _alerting.create_job(session, job, actor=actor)
        except IntegrityError:
            raise ConduitError(ErrorCode.ALREADY_EXISTS, f"job {job.name!r} already exists") from None

    def list_jobs(self) -> list[JobRecord]:
        with self._db.read() as session:
            return _alerting.list_jobs(session)

    def delete_job(self, name: str, *, actor: str) -> JobRecord:
        with self._db.write() as session:
            return _alerting.delete_job(session, name, actor=actor)

    # -- prediction logs ----------------------------------------------------------------------------------------

    def create_prediction_log(self, new: NewPredictionLog, *, actor: str) -> tuple[PredictionLog, bool]:
        with self._db.write() as session:
            return _predictions.create_prediction_log(session, new, actor=actor)

    def get_prediction_log(self, sha256: str) -> PredictionLog:
        with self._db.read() as session:
            return _predictions.get_prediction_log(session, sha256)

    def list_prediction_logs(
        self,
        model: str,
        *,
        version: int | None,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        page_token: str,
    ) -> Page[PredictionLog]:
        with self._db.read() as session:
            return _predictions.list_prediction_logs(
                session, model, version=version, since=since, until=until, page_size=page_size, page_token=page_token
            )

    def prune_prediction_logs(self, before: datetime) -> list[str]:
        with self._db.write() as session:
            return _predictions.prune_prediction_logs(session, before)

    def close(self) -> None:
        self._db.dispose()
