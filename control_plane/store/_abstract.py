"""The registry's storage contract. ``SqlStore`` implements it; the service layer only knows this class.

Every mutating method takes the acting user's name and writes its audit entry (before/after) in the same
transaction as the change, so the audit log can never disagree with the registry.
Errors are ``ConduitError``: NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

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

__all__ = ["AbstractStore"]


class AbstractStore(abc.ABC):
    """Models, versions, aliases, data sets, deployments, servers, users, the audit log and monitoring roll-ups."""

    # -- models -------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_model(self, name: str, description: str, *, actor: str) -> Model:
        """Raises ALREADY_EXISTS when the name is taken, INVALID_ARGUMENT for a malformed name."""

    @abc.abstractmethod
    def get_model(self, name: str) -> Model:
        """Raises NOT_FOUND."""

    @abc.abstractmethod
    def list_models(self, *, include_archived: bool, page_size: int, page_token: str) -> Page[Model]:
        """Models by name."""

    @abc.abstractmethod
    def archive_model(self, name: str, *, actor: str) -> Model:
        """Raises NOT_FOUND; FAILED_PRECONDITION while a pool still serves it."""

    # -- versions -----------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_version(
        self, new: NewVersion, *, actor: str, create_model: bool = False, aliases: Sequence[str] = ()
    ) -> ModelVersion:
        """Register ``new`` as the model's next version number, with its attachments, and point ``aliases`` at it,
        atomically.

        Concurrent calls for one model get distinct consecutive numbers. The artifact and the attachments' contents
        must already be stored.

        Raises:
            ConduitError: NOT_FOUND for an unknown model (unless ``create_model``), FAILED_PRECONDITION for an
                archived one, INVALID_ARGUMENT for malformed metadata or attachment names given twice.
        """

    @abc.abstractmethod
    def get_version(self, model: str, *, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """The version by number, by alias, or (neither) the latest. Raises NOT_FOUND."""

    @abc.abstractmethod
    def list_versions(
        self, model: str, *, tags: Mapping[str, str], alias: str | None, page_size: int, page_token: str
    ) -> Page[ModelVersion]:
        """Newest first. Raises NOT_FOUND for an unknown model."""

    @abc.abstractmethod
    def artifact_digests(self) -> set[str]:
        """Every sha256 a model version, an attachment, a data set version or a prediction log refers to (what
        artifact garbage collection must keep)."""

    # -- data sets ----------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_dataset_version(self, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
        """Record ``new`` (creating the data set on its first version); its Parquet file must already be stored.

        Returns:
            The version as stored, and whether this call created it: an existing (name, version) is returned
            unchanged, also when concurrent calls create it at once.

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed name, version, digest or profile.
        """

    @abc.abstractmethod
    def rebuild_dataset_profile(self, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
        """Replace the stored profile of ``new``'s (name, version) by ``new.profile`` when the stored one is
        ``outdated`` and ``new.profile`` is not; a version's rows never change, only how they are profiled.

        Returns:
            The version as stored, and whether this call replaced its profile (audited as RebuildDatasetProfile).

        Raises:
            ConduitError: NOT_FOUND for an unknown version; INVALID_ARGUMENT for a malformed profile, or one whose
                rows or columns are not the stored version's.
        """

    @abc.abstractmethod
    def get_dataset(self, name: str, version: str | None = None) -> DatasetVersion:
        """The version, or (None) the newest. Raises NOT_FOUND."""

    @abc.abstractmethod
    def list_datasets(self, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        """The newest version of each data set, by name."""

    @abc.abstractmethod
    def list_dataset_versions(self, name: str, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        """Newest first. Raises NOT_FOUND for an unknown data set."""

    # -- aliases ------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def set_alias(self, model: str, alias: str, version: int, *, actor: str) -> AliasChange:
        """Create or move an alias. Raises NOT_FOUND for an unknown model or version."""

    @abc.abstractmethod
    def delete_alias(self, model: str, alias: str, *, actor: str) -> int:
        """Returns the version it pointed at. Raises NOT_FOUND; FAILED_PRECONDITION while a deployment follows it."""

    # -- deployments --------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def deploy(self, spec: DeploymentSpec, *, actor: str) -> Deployment:
        """Make ``spec`` the pool's active deployment of the model; the previous one stays in the history.

        Raises:
            ConduitError: NOT_FOUND for an unknown model, alias or version; FAILED_PRECONDITION for an archived
                model; INVALID_ARGUMENT for a spec naming both or neither of alias and version, or a canary percent
                outside 0..100.
        """

    @abc.abstractmethod
    def rollback(self, pool: str, model: str, *, actor: str) -> Deployment:
        """Re-activate the deployment that preceded the active one (as a new history entry).

        Raises NOT_FOUND when the model has no deployment on the pool, FAILED_PRECONDITION when there is none before.
        """

    @abc.abstractmethod
    def list_deployments(
        self, *, pool: str | None, model: str | None, history: bool, page_size: int, page_token: str
    ) -> Page[Deployment]:
        """Active deployments (or, with ``history``, every one), newest first."""

    @abc.abstractmethod
    def assignments(self, pool: str) -> PoolAssignments:
        """What the pool's servers must serve now (models whose alias resolves to nothing are left out)."""

    @abc.abstractmethod
    def generation(self, pool: str) -> int:
        """The pool's assignments generation: grows whenever ``assignments(pool)`` may have changed; 0: never."""

    # -- servers ------------------------------------------------------------------------------------------------

    @abc.abstractmethod
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
        """Register a server as ``actor``'s, at ``at`` (default: now). The same user registering the same ``name``
        again keeps its id and takes the new pool and address.

        Raises:
            ConduitError: PERMISSION_DENIED when another user registered ``name`` and it has not been silent (no
                heartbeat nor registration) for longer than ``expiry`` (``None``: registrations never expire); past
                that, the name is taken over under a new id.
        """

    @abc.abstractmethod
    def heartbeat(
        self, server_id: str, models: Sequence[LoadedModel], generation: int, *, at: datetime, owner: str
    ) -> int:
        """Record a server's state (not audited: it is a report, sent every few seconds). Returns the pool's
        generation.

        Raises:
            ConduitError: NOT_FOUND for an unknown server id (or one registered before owners were kept: it
                registers again); PERMISSION_DENIED when a user other than ``owner`` registered it.
        """

    @abc.abstractmethod
    def get_server(self, server_id: str) -> ServerRecord:
        """The server with that id. Raises NOT_FOUND."""

    @abc.abstractmethod
    def find_server(self, name: str) -> ServerRecord | None:
        """The server registered under ``name``, if any."""

    @abc.abstractmethod
    def list_servers(self, pool: str | None) -> list[ServerRecord]:
        """Servers by pool and name."""

    # -- users --------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_user(self, name: str, role: Role, token_hash: str, *, actor: str) -> User:
        """Raises ALREADY_EXISTS, INVALID_ARGUMENT for a malformed name."""

    @abc.abstractmethod
    def add_token(self, user: str, token_hash: str, *, actor: str) -> None:
        """Raises NOT_FOUND."""

    @abc.abstractmethod
    def add_job_token(self, user: str, token_hash: str, *, job: str, expires_at: datetime) -> User:
        """A token of ``user`` for one run of ``job``, working until ``expires_at`` at the latest (audited with the
        user as actor). Raises NOT_FOUND, FAILED_PRECONDITION for a disabled user."""

    @abc.abstractmethod
    def revoke_job_token(self, token_hash: str) -> bool:
        """Delete a run's token (tokens of users are left alone); False when there was none."""

    @abc.abstractmethod
    def disable_user(self, name: str, *, actor: str) -> User:
        """A disabled user's tokens stop working. Raises NOT_FOUND."""

    @abc.abstractmethod
    def list_users(self) -> list[User]:
        """Users by name."""

    @abc.abstractmethod
    def callers(self) -> list[CallerToken]:
        """Every token of every enabled user, by hash; jobs' tokens are not among them."""

    @abc.abstractmethod
    def user_for_token(self, token_hash: str) -> User | None:
        """The enabled user holding an unexpired token with this hash, if any."""

    @abc.abstractmethod
    def bootstrap_admin(self, name: str, token_hash: str) -> bool:
        """Create the first admin when there are no users at all; returns whether it did. Safe to race."""

    # -- audit --------------------------------------------------------------------------------------------------

    @abc.abstractmethod
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
        """Newest first."""

    # -- monitoring ---------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def add_rollups(self, rollups: Sequence[Rollup]) -> None:
        """Add ``rollups`` to the stored ones of the same (model, version, minute), creating those missing, in one
        transaction (not audited: these are measurements). Concurrent calls for the same minute all add up."""

    @abc.abstractmethod
    def list_rollups(self, model: str, version: str, since: datetime, until: datetime) -> list[Rollup]:
        """The model version's roll-ups of the minutes in ``[since, until)``, oldest first."""

    @abc.abstractmethod
    def prune_rollups(self, before: datetime) -> int:
        """Delete the roll-ups of every minute before ``before``; returns how many (model, version, minute) went."""

    # -- prediction logs ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_prediction_log(self, new: NewPredictionLog, *, actor: str) -> tuple[PredictionLog, bool]:
        """Record ``new`` (not audited: servers upload these every few seconds); its file must already be stored.

        Returns:
            The log as stored, and whether this call created it: a sha256 already recorded is returned unchanged,
            also when concurrent calls record it at once.

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed name, version, digest, span, count or server name.
        """

    @abc.abstractmethod
    def get_prediction_log(self, sha256: str) -> PredictionLog:
        """Raises NOT_FOUND, INVALID_ARGUMENT for a malformed digest."""

    @abc.abstractmethod
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
        """The model's logs (of one version, or of all) whose rows overlap ``[since, until)``, newest first."""

    @abc.abstractmethod
    def prune_prediction_logs(self, before: datetime) -> list[str]:
        """Delete the logs whose latest row is older than ``before``; returns their sha256s. Their files become
        unreferenced artifacts: the caller deletes them, or artifact garbage collection does."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection pool."""

    # -- alert rules and jobs -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_alert_rule(self, rule: AlertRuleRecord, *, channel: str, actor: str) -> AlertRuleRecord:
        """Store a rule already validated by the caller (``created_*`` are set here); ALREADY_EXISTS.

        ``rule.channel`` is the channel as listings, the audit log and the dashboard show it (a webhook's URL
        redacted); ``channel`` the full text notifications are sent to, secrets included, kept apart and audited
        only as a fingerprint."""

    @abc.abstractmethod
    def list_alert_rules(self) -> list[AlertRuleRecord]:
        """Every rule, by name, each channel as shown (redacted)."""

    @abc.abstractmethod
    def alert_rule_channels(self) -> dict[str, str]:
        """The full channel of every rule by rule name, secrets included: for sending notifications only, never for
        an answer to a caller."""

    @abc.abstractmethod
    def delete_alert_rule(self, name: str, *, actor: str) -> AlertRuleRecord:
        """Remove a rule; returns it. NOT_FOUND."""

    @abc.abstractmethod
    def silence_alert_rule(self, name: str, until: datetime | None, *, actor: str) -> AlertRuleRecord:
        """Silence a rule's notifications until ``until`` (None: lift the silence). NOT_FOUND."""

    @abc.abstractmethod
    def create_job(self, job: JobRecord, *, actor: str) -> JobRecord:
        """Store a job already validated by the caller; ALREADY_EXISTS."""

    @abc.abstractmethod
    def list_jobs(self) -> list[JobRecord]:
        """Every job, by name."""

    @abc.abstractmethod
    def delete_job(self, name: str, *, actor: str) -> JobRecord:
        """Remove a job; returns it. NOT_FOUND."""
