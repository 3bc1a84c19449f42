"""Composition root of ``conduit control-plane``: settings -> schema -> store, artifacts -> core -> servicers -> gRPC.

The only module of the control plane that reads settings, prints to the console and installs signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from contract.entities import DriftRule, ImportSpec
from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import (
    DEFAULT_IMPORT_COMMAND,
    DEFAULT_TRAIN_COMMAND,
    AlertEngine,
    AlertingSettings,
    EmailSender,
    Evaluator,
    ImportSettings,
    Job,
    Notifier,
    RetryPolicy,
    RunLimits,
    RunResult,
    SqlAlertStore,
    SqlLeaseStore,
    TrainRunner,
    WebhookSender,
    import_argv,
    import_environment,
)
from control_plane.artifacts import ArtifactStore, LocalArtifactStore, open_artifact_store
from control_plane.auth import Authenticator
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.service import (
    AlertingService,
    Changes,
    Clock,
    DatasetService,
    DeploymentService,
    JobRunners,
    MonitoringService,
    ParquetLimits,
    PredictionLogService,
    RegistryService,
    ServerService,
    Services,
    Spool,
    UploadService,
    UserService,
    WatchService,
    utc_now,
)
from control_plane.service._metrics_source import RegistryMetrics
from control_plane.settings import ControlPlaneSettings
from control_plane.store import AbstractStore, SqlStore, migrate, schema_is_current
from control_plane.transport import metrics
from control_plane.transport.servicer import ControlPlaneServicer

__all__ = ["ControlPlaneServer", "main", "migrate_main"]

log = logging.getLogger("conduit.control_plane")

SERVICE_NAME = cp.DESCRIPTOR.services_by_name["ControlPlane"].full_name
# Health answers for the server as a whole and for each service it offers.
HEALTH_NAMES = ("", SERVICE_NAME, metrics.SERVICE_NAME)
PROGRAM = "conduit control-plane"


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the store itself; never echo what might be a secret
        return "<database URL>"


def _first_line(exc: BaseException) -> str:
    # Database drivers answer with multi-line messages and SQL; the first line says what went wrong.
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class ControlPlaneServer:
    """The control plane's gRPC server: ``start`` it, then ``stop`` it.

    Args:
        settings: Parsed settings.
        alerting: Parsed settings of alerting and scheduled jobs; default: all defaults.
        clock: The current time (aware), for server liveness; tests inject one.
        train_command: The argv of a train job's process (``{spec}`` is its spec); default ``conduit train``.
        imports: Parsed settings of import jobs; default: all defaults (public destinations, no variables).
        import_command: The argv of an import job's process; default ``conduit datasets import --spec {spec}``.
    """

    def __init__(
        self,
        settings: ControlPlaneSettings,
        *,
        alerting: AlertingSettings | None = None,
        clock: Clock = utc_now,
        train_command: Sequence[str] = DEFAULT_TRAIN_COMMAND,
        imports: ImportSettings | None = None,
        import_command: Sequence[str] = DEFAULT_IMPORT_COMMAND,
    ) -> None:
        self.settings = settings
        self.alerting = alerting or AlertingSettings()
        self.imports = imports or ImportSettings()
        self._stop_jobs = threading.Event()
        self._job_threads: list[threading.Thread] = []
        self._train_command = tuple(train_command)
        self._train: TrainRunner | None = None
        self._import_command = import_argv(tuple(import_command), self.imports)
        self._import: TrainRunner | None = None
        self._clock = clock
        self.port = 0
        self.admin_token: str | None = None
        """The admin token generated at start (when the registry had no user and none was configured); shown once."""
        self._store: AbstractStore | None = None
        self._changes = Changes()
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None
        self._pruner: asyncio.Task[None] | None = None

    @property
    def target(self) -> str:
        """host:port a client on this machine connects to."""
        host = self.settings.host
        return f"{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{self.port}"

    async def start(self) -> int:
        """Migrate the schema, open the stores, create the first admin if needed, listen. Returns the bound port.

        Raises:
            ConduitError: UNAVAILABLE when the port cannot be bound; INVALID_ARGUMENT or FAILED_PRECONDITION for a
                database or artifact store that cannot be used.
        """
        settings = self.settings
        url = settings.db_url()
        if settings.db is None:
            settings.home_dir().mkdir(parents=True, exist_ok=True)
        # Every replica runs this; the migrations serialise themselves, and a current schema makes it a no-op.
        await asyncio.to_thread(migrate, url)
        store = self._store = await asyncio.to_thread(SqlStore, url)
        artifacts = open_artifact_store(settings.artifacts_url(), s3_endpoint_url=settings.s3_endpoint_url)
        spool = Spool(
            settings.spool_dir(), max_bytes=settings.max_upload_bytes, max_total_bytes=settings.max_spool_bytes
        )
        parquet = ParquetLimits(
            max_rows=settings.max_parquet_rows,
            max_decoded_bytes=settings.max_parquet_decoded_bytes,
            max_expansion=settings.max_parquet_expansion,
        )
        drift_rule = DriftRule(
            settings.psi_threshold,
            settings.chi2_p_threshold,
            settings.drift_share,
            settings.drift_min_rows,
            settings.drift_min_expected,
        )
        runners = self._job_runners(store, artifacts, drift_rule)
        services = Services(
            registry=RegistryService(store, artifacts, self._changes),
            uploads=UploadService(
                store, artifacts, self._changes, spool=spool, max_attachment_bytes=settings.max_attachment_bytes
            ),
            datasets=DatasetService(store, artifacts, spool=spool, parquet=parquet),
            deployments=DeploymentService(store, self._changes),
            servers=ServerService(
                store, server_timeout=settings.server_timeout, server_expiry=settings.server_expiry, clock=self._clock
            ),
            watch=WatchService(store, self._changes, poll_interval=settings.watch_poll_interval),
            users=UserService(store),
            monitoring=MonitoringService(
                store,
                artifacts,
                retention=timedelta(days=settings.monitoring_retention),
                rule=drift_rule,
                clock=self._clock,
            ),
            alerting=AlertingService(
                store,
                runners.alerts,
                runners.leases,
                runners,
                webhook_policy=self.alerting.webhook_policy(),
                imports=self.imports,
            ),
            predictions=PredictionLogService(
                store,
                artifacts,
                spool=spool,
                retention=timedelta(days=settings.prediction_log_retention),
                clock=self._clock,
                parquet=parquet,
            ),
        )
        removed = await asyncio.to_thread(spool.clear)
        if removed:
            log.info("removed %d unfinished upload(s) left by a previous run", removed)
        if isinstance(artifacts, LocalArtifactStore):
            # Copies into the store cut short by a crash. A copy in progress in another replica sharing the directory
            # keeps touching its file, so a minute without a write tells the two apart.
            partial = await asyncio.to_thread(artifacts.clean_temporary, 60.0)
            if partial:
                log.info("removed %d partial artifact file(s) left by a previous run", partial)
        self.admin_token = await services.users.bootstrap_admin(settings.admin_token)

        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # A second control plane on a busy port must fail, not share it.
            ("grpc.so_reuseport", 0),
            # Following servers ping every 10 s, even between calls, to notice a partition; refusing those pings
            # (gRPC's default: one per 5 min) would make the control plane close their connections.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ]
        server = self._server = grpc.aio.server(options=options)
        authenticator = Authenticator(store, recheck_interval=settings.stream_recheck_interval)
        cp_grpc.add_ControlPlaneServicer_to_server(ControlPlaneServicer(services, authenticator), server)
        metrics.add_metrics_service(metrics.MetricsServicer(services.monitoring, authenticator), server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection(
            (SERVICE_NAME, metrics.SERVICE_NAME, health_name, reflection.SERVICE_NAME), server
        )
        address = f"{settings.host}:{settings.grpc_port}"
        try:
            if settings.tls_cert is not None and settings.tls_key is not None:
                credentials = grpc.ssl_server_credentials(
                    [(settings.tls_key.expanduser().read_bytes(), settings.tls_cert.expanduser().read_bytes())]
                )
                self.port = server.add_secure_port(address, credentials)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:
            raise ConduitError(ErrorCode.UNAVAILABLE, f"cannot listen on {address} (is the port in use?)") from None
        await server.start()
        for service in HEALTH_NAMES:
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._pruner = asyncio.create_task(self._prune(services, settings.monitoring_prune_interval))
        self._start_jobs(runners)
        log.info("control plane on %s (registry %s, artifacts %s)", address, _redacted(url), artifacts.describe())
        return self.port

    @staticmethod
    async def _prune(services: Services, interval_s: float) -> None:
        """The built-in pruning, every ``interval_s``: roll-ups and prediction logs (with their files) past their
        retention, so that neither needs a gc job."""
        await asyncio.gather(services.monitoring.run_pruner(interval_s), services.predictions.run_pruner(interval_s))

    def _job_runners(self, store: SqlStore, artifacts: ArtifactStore, drift_rule: DriftRule) -> JobRunners:
        alerting = self.alerting
        email = EmailSender(alerting) if alerting.smtp_host is not None else None
        notifier = Notifier(
            webhook=WebhookSender(policy=alerting.webhook_policy(), timeout_s=alerting.webhook_timeout_s),
            email=email,
            retry=RetryPolicy(alerting.delivery_attempts, alerting.retry_base_delay_s, alerting.retry_max_delay_s),
        )
        evaluator = Evaluator(
            RegistryMetrics(store, artifacts, drift_rule),
            lag_s=alerting.lag_s,
            filling_min_requests=alerting.filling_min_requests,
        )
        alerts = SqlAlertStore(store.engine)
        leases = SqlLeaseStore(store.engine)
        engine = AlertEngine(evaluator, alerts, notifier, repeat_s=alerting.repeat_s)
        home = self.settings.home_dir()
        return JobRunners(
            store, artifacts, engine, alerts, leases, train=self._run_train, train_timeout_s=alerting.train_timeout_s,
            spec_dir=home / "jobs", holder=f"{socket.gethostname()}:{os.getpid()}", gc_grace_s=alerting.gc_grace_s,
            rollup_retention=timedelta(days=self.settings.monitoring_retention), lease_ttl_s=alerting.lease_ttl_s,
            misfire_grace_s=alerting.misfire_grace_s,
            prediction_log_retention=timedelta(days=self.settings.prediction_log_retention), imports=self._run_import,
        )  # fmt: skip

    def _run_train(self, job: Job, tick: datetime, token: str) -> RunResult:
        if self._train is None:
            raise RuntimeError("train jobs run only once the control plane listens")
        return self._train(job, tick, token)

    def _run_import(self, job: Job, tick: datetime, token: str) -> RunResult:
        if self._import is None or job.spec is None:
            raise RuntimeError("import jobs run only once the control plane listens")
        # Read when the run starts: the job stores env:VAR references, the values are this process's now.
        spec = ImportSpec.from_json(job.spec.read_text())
        return self._import(job, tick, token, import_environment(spec, self.imports, os.environ))

    def _start_jobs(self, runners: JobRunners) -> None:
        """The scheduler and the built-in evaluation, each on a thread of its own until ``stop``."""
        alerting = self.alerting
        # A job's process gets only the variables named by train_env, and the address of this control plane (known
        # only now that the port is bound), which it calls with its creator's token for the run.
        env = {name: os.environ[name] for name in alerting.train_env_names() if name in os.environ}
        env["CONDUIT_CONTROL_PLANE"] = self.target
        # glibc reserves an arena of address space per thread; with a memory limit on the address space, two keep
        # a run's reservations close to what it uses.
        env["MALLOC_ARENA_MAX"] = "2"
        limits = RunLimits(alerting.train_timeout_s, alerting.train_cpu_s, alerting.train_memory_bytes)
        self._train = TrainRunner(
            self._train_command, limits=limits, max_log_bytes=alerting.max_log_bytes, env=env,
            work_dir=self.settings.home_dir() / "jobs" / "runs",
        )  # fmt: skip
        # An import reads s3:// URLs through the artifact store's endpoint. Its wall clock is its own, but no longer
        # than a train run's: the run's token and lease are sized for that.
        if self.settings.s3_endpoint_url:
            env["CONDUIT_CP_S3_ENDPOINT_URL"] = self.settings.s3_endpoint_url
        wall_s = min(self.imports.timeout_s, alerting.train_timeout_s)
        self._import = TrainRunner(
            self._import_command, limits=RunLimits(wall_s, alerting.train_cpu_s, alerting.train_memory_bytes),
            max_log_bytes=alerting.max_log_bytes, env=env,
            work_dir=self.settings.home_dir() / "jobs" / "runs",
        )  # fmt: skip
        interval = alerting.evaluate_interval_s
        runners.reload()
        self._stop_jobs.clear()
        self._job_threads = [
            threading.Thread(
                target=runners.scheduler.run_forever, args=(self._stop_jobs,), kwargs={"poll_s": min(interval, 30.0)},
                name="conduit-scheduler", daemon=True,
            ),
            threading.Thread(
                target=runners.run_builtin_evaluation, args=(self._stop_jobs, interval), name="conduit-evaluate",
                daemon=True,
            ),
        ]  # fmt: skip
        for thread in self._job_threads:
            thread.start()

    async def _stop_job_threads(self) -> None:
        self._stop_jobs.set()
        for thread in self._job_threads:
            # A running job is waited for: a train run is bounded by its timeout, an evaluation by its deliveries.
            await asyncio.to_thread(thread.join)
        self._job_threads = []

    async def stop(self, grace: float | None = 5.0) -> None:
        """End the watches, refuse new calls, let running ones finish for up to ``grace`` seconds, stop the
        scheduler, close the store."""
        self._changes.close()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self._health is not None:
            for service in HEALTH_NAMES:
                await self._health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self._stop_job_threads()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = None


def _settings(overrides: dict[str, Any]) -> ControlPlaneSettings | None:
    try:
        return ControlPlaneSettings(**overrides)
    except ValidationError as exc:
        _print_errors(exc, "--")
        return None


def _alerting_settings() -> AlertingSettings | None:
    try:
        return AlertingSettings()
    except ValidationError as exc:
        _print_errors(exc, "CONDUIT_ALERTS_")
        return None


def _import_settings() -> ImportSettings | None:
    try:
        return ImportSettings()
    except ValidationError as exc:
        _print_errors(exc, "CONDUIT_IMPORT_")
        return None


def _print_errors(exc: ValidationError, prefix: str) -> None:
    """Each error on its own line, naming the setting as the user wrote it: ``--flag`` or ``CONDUIT_ALERTS_NAME``."""
    for error in exc.errors():
        if error["loc"]:
            name = "_".join(str(part) for part in error["loc"])
            field = "--" + name.replace("_", "-") if prefix == "--" else prefix + name.upper()
            print(f"{PROGRAM}: {field}: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        else:  # a rule over several settings: its message names them
            print(f"{PROGRAM}: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)


async def _serve(settings: ControlPlaneSettings, alerting: AlertingSettings, imports: ImportSettings) -> None:
    server = ControlPlaneServer(settings, alerting=alerting, imports=imports)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await server.start()
        if server.admin_token is not None:
            print(f"{PROGRAM}: admin token (shown once): {server.admin_token}", file=sys.stderr, flush=True)
        print(f"{PROGRAM}: listening on {settings.host}:{server.port}", flush=True)
        await stopping.wait()
        log.info("stopping")
    finally:
        await server.stop()
    log.info("stopped")


def main(overrides: dict[str, Any]) -> int:
    """``conduit control-plane``: settings from ``CONDUIT_CP_*`` variables overridden by flags; run until SIGTERM
    or SIGINT.

    Returns:
        The process exit code: 2 for invalid settings, 1 when the server failed, 0 after a clean stop.
    """
    settings = _settings(overrides)
    alerting = _alerting_settings()
    imports = _import_settings()
    if settings is None or alerting is None or imports is None:
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(settings, alerting, imports))
    except ConduitError as exc:
        print(f"{PROGRAM}: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"{PROGRAM}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0


def migrate_main(overrides: dict[str, Any]) -> int:
    """``conduit control-plane migrate``: bring the registry's schema to the newest version and exit.

    Returns:
        The process exit code: 2 for invalid settings, 1 when the migration failed, 0 otherwise.
    """
    settings = _settings(overrides)
    if settings is None:
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = settings.db_url()
    try:
        if settings.db is None:
            settings.home_dir().mkdir(parents=True, exist_ok=True)
        if schema_is_current(url):
            print(f"{PROGRAM}: {_redacted(url)} is already at the newest schema")
            return 0
        migrate(url)
    except ConduitError as exc:
        print(f"{PROGRAM}: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"{PROGRAM}: {_first_line(exc)}", file=sys.stderr)
        return 1
    print(f"{PROGRAM}: migrated {_redacted(url)} to the newest schema")
    return 0
