"""Composition root of ``conduit serve``: settings -> telemetry -> models -> data plane -> servicers -> gRPC server.

This is the only module that reads settings, builds the MeterProvider and TracerProvider, installs signal handlers
and forks workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import TracerProvider
from pydantic import ValidationError

from contract.client import ControlPlaneClient
from contract.entities import Callers
from contract.errors import ConduitError, ErrorCode
from inference_server import kernels
from inference_server.auth import Authorizer, TokenTable, read_tokens_file, watch_tokens_file
from inference_server.dataplane import DataPlane
from inference_server.follower import ArtifactCache, Follower, Reconciler
from inference_server.models import ModelManager
from inference_server.predictions import LocalSink, PredictionLogger, PredictionSampler, Sink, UploadSink
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.settings import ServerSettings
from inference_server.stats import ModelStats
from inference_server.telemetry import (
    SCOPE,
    HistogramSet,
    PeriodicReader,
    PrometheusReader,
    SumSet,
    Telemetry,
    Tracing,
    histogram_set,
    sum_set,
)
from inference_server.transport._auth import GuardedServer
from inference_server.transport._native import NativeTransport, native_front
from inference_server.transport._tls import ReloadingCertificates
from inference_server.transport.servicer import STREAM_READ_AHEAD, InferenceServicer

if TYPE_CHECKING:
    from conduit_native import Front

__all__ = ["InferenceServer", "main", "run"]

log = logging.getLogger("conduit.serve")

# A control plane that does not answer a unary call within this many seconds counts as down.
CONTROL_PLANE_CALL_TIMEOUT_S = 10.0
# Seconds between checks of the tokens file for changes: a removed token stops working within this.
FILES_POLL_S = 2.0
# Seconds between the native front's checks of the TLS files (grpc.aio checks at every handshake): a rotated
# certificate is served to new connections within this. A check is a stat of each file.
TLS_POLL_S = 0.5
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def _version() -> str:
    try:
        return metadata.version("conduit")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class InferenceServer:
    """One gRPC inference server process: start it, then stop it to drain.

    It serves ``settings.model_repository``, or follows the control plane at ``settings.control_plane`` from a local
    artifact cache (each worker of several materialises its own repository from the shared, verified artifacts).
    """

    def __init__(
        self,
        settings: ServerSettings,
        meter_provider: MeterProvider,
        histograms: HistogramSet,
        *,
        sums: SumSet | None = None,
        tracer_provider: TracerProvider | None = None,
        reuse_port: bool = False,
        worker: int = 0,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.settings = settings
        # The one monotonic clock of the request path: arrivals, deadlines, queue and compute times, warm-up timings
        # and trace timestamps all come from it, so they can be subtracted from each other (and faked in tests).
        self._clock = clock
        self._cache: ArtifactCache | None = None
        if settings.model_repository is not None:
            repository = settings.model_repository
        else:
            root = settings.follower_cache_dir()
            self._cache = ArtifactCache(root, root / ("repository" if worker == 0 else f"repository-{worker}"))
            repository = self._cache.repository
        self._worker = worker
        self._meter_provider = meter_provider
        self._telemetry = Telemetry(
            meter_provider,
            histograms,
            in_flight=lambda: [(v.spec.name, v.spec.version, v.stats.in_flight) for v in self._models.served()],
            sums=sums if settings.sketches else None,
            tracing=Tracing(tracer_provider, settings.trace_sample_ratio, scope=SCOPE, clock_ns=clock)
            if tracer_provider is not None and settings.trace_sample_ratio > 0
            else None,
        )
        self._models = ModelManager(
            repository, stats_factory=self._new_stats, clock=clock, observers=self._telemetry.observers
        )
        self.follower: Follower | None = None
        self.predictions = self._new_sampler(meter_provider)
        self._prediction_logger: PredictionLogger | None = None
        self.dataplane = DataPlane(
            self._models,
            server_name=settings.server_name,
            server_version=_version(),
            clock=clock,
            predictions=self.predictions,
            max_inflight_bytes=settings.max_inflight_bytes,
            model_control=_model_control_refusal(settings),
        )
        self.authorizer = _authorizer(settings)
        # The compiled front's module, or None for grpc.aio alone.
        self._front_module = _front_module(settings)
        self._front: Front | None = None
        self._native: NativeTransport | None = None
        self._socket_dir: Path | None = None
        self._reuse_port = reuse_port
        self._certificates = (
            ReloadingCertificates(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
            if settings.tls_cert is not None and settings.tls_key is not None
            else None
        )
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Off unless several workers share the port: a second server on a busy port must fail, not split traffic.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
        self._server = grpc.aio.server(options=options)
        # Every service is added through ``services``: behind the authorization check when callers are authenticated,
        # straight onto the server otherwise (the open path pays nothing for the option).
        services: Any = self._server if self.authorizer is None else GuardedServer(self._server, self.authorizer)
        # The shared-memory and trace RPCs are left to the generated base class, which answers UNIMPLEMENTED.
        servicer = InferenceServicer(  # type: ignore[abstract]
            self.dataplane, stream_window_bytes=settings.stream_window_bytes
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, services)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, services)
        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        # What reflection.enable_server_reflection does for a grpc.aio server, through ``services``.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
            reflection.aio.ReflectionServicer(names), services
        )
        self.port = 0
        self._withdrawn = False
        self._background: list[asyncio.Task[None]] = []
        self._follower_task: asyncio.Task[None] | None = None

    @property
    def models(self) -> ModelManager:
        """The versions this server serves, their states and where requests without a version go."""
        return self._models

    @property
    def queued_calls(self) -> int:
        """Inference calls the native front has received and the event loop has not taken yet (0 on the Python
        front, which hands each call over as it arrives)."""
        return self._front.queued() if self._front is not None else 0

    def _new_stats(self, model: str, version: str) -> ModelStats:
        return ModelStats(sink=self._telemetry.recorder(model, version), tracer=self._telemetry.tracer(model, version))

    def _new_sampler(self, meter_provider: MeterProvider) -> PredictionSampler | None:
        """The prediction log's sampler, when this server logs predictions, with its counter of sampled rows (kept,
        or dropped because the buffer was full or their flush could not write them)."""
        settings = self.settings
        ratio = settings.prediction_log_ratio()
        if ratio <= 0:
            return None
        sampler = PredictionSampler(
            ratio,
            max_rows=settings.prediction_log_buffer_rows,
            max_bytes=settings.prediction_log_buffer_bytes,
            flush_rows=settings.prediction_log_flush_rows,
        )

        def observe(_options: CallbackOptions) -> list[Observation]:
            return [
                Observation(sampler.kept_rows, {"outcome": "kept"}),
                Observation(sampler.dropped_rows, {"outcome": "dropped"}),
            ]

        meter_provider.get_meter(SCOPE).create_observable_counter(
            "conduit.prediction_log.rows",
            callbacks=[observe],
            unit="{row}",
            description="Rows sampled for the prediction log, kept, or dropped (buffer full, or not written)",
        )
        return sampler

    def _new_prediction_sink(self) -> Sink:
        settings = self.settings
        if self.follower is None:
            assert settings.prediction_log_dir is not None  # checked by the settings when the ratio is above 0
            return LocalSink(settings.prediction_log_dir.expanduser(), worker=self._worker)
        outbox = settings.prediction_log_outbox()
        follower = self.follower
        sink = UploadSink(
            outbox if self._worker == 0 else outbox / f"w{self._worker}",
            lambda: follower.client,
            server=self._instance_name(),
            max_bytes=settings.prediction_log_outbox_bytes,
        )

        def observe(_options: CallbackOptions) -> list[Observation]:
            return [
                Observation(sink.rejected_files, {"outcome": "rejected"}),
                Observation(sink.dropped_files, {"outcome": "dropped"}),
            ]

        self._meter_provider.get_meter(SCOPE).create_observable_counter(
            "conduit.prediction_log.files",
            callbacks=[observe],
            unit="{file}",
            description="Prediction log files not uploaded: rejected (kept in rejected/) or dropped (outbox full)",
        )
        return sink

    def _instance_name(self) -> str:
        settings = self.settings
        name = settings.instance_name or f"{socket.gethostname()}-{os.getpid()}"
        return name if self._worker == 0 or settings.instance_name is None else f"{name}-w{self._worker}"

    def _new_follower(self, cache: ArtifactCache) -> Follower:
        settings = self.settings
        reconciler = Reconciler(self._models, cache, pool=settings.pool, retry_interval=settings.heartbeat_interval)
        authorizer = self.authorizer
        on_callers = None
        digest = ""
        if authorizer is not None:
            # Who may call, as last fetched: a restart while the control plane is away still knows its callers.
            cached = cache.load_callers()
            if cached is not None:
                authorizer.replace(TokenTable.of_callers(cached))
                digest = cached.digest

            async def on_callers(callers: Callers) -> None:
                authorizer.replace(TokenTable.of_callers(callers))
                await asyncio.to_thread(cache.save_callers, callers)

        return Follower(
            reconciler,
            None,
            pool=settings.pool,
            address="",
            name=self._instance_name(),
            heartbeat_interval=settings.heartbeat_interval,
            backoff_initial=settings.reconnect_backoff_initial,
            backoff_max=settings.reconnect_backoff_max,
            on_callers=on_callers,
            callers_digest=digest,
        )

    def _new_client(self) -> ControlPlaneClient:
        settings = self.settings
        assert settings.control_plane is not None and settings.token is not None  # checked by the settings
        ca = settings.control_plane_ca.read_bytes() if settings.control_plane_ca is not None else None
        return ControlPlaneClient.connect(
            settings.control_plane, token=settings.token, root_certificates=ca, timeout=CONTROL_PLANE_CALL_TIMEOUT_S
        )

    async def start(self) -> int:
        """Load the repository, listen, then report ready. Returns the bound gRPC port."""
        # Compile (or load from cache) the numba kernels before the first request can need them.
        await asyncio.to_thread(kernels.warm_up)
        # Load before listening: with several workers on one port, the kernel would otherwise hand connections to a
        # worker that has no models yet. A follower loads what it served last, from its cache, without the control
        # plane: start-up never waits for it.
        if self._cache is not None:
            self.follower = self._new_follower(self._cache)
            await self.follower.reconciler.restore()
        else:
            await self._models.load_all()
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        if self._front_module is not None:
            self.port = await self._start_native(address)
        else:
            try:
                if self._certificates is not None:
                    self.port = self._server.add_secure_port(address, self._certificates.credentials())
                else:
                    self.port = self._server.add_insecure_port(address)
            except RuntimeError:
                raise ConduitError(ErrorCode.UNAVAILABLE, f"cannot listen on {address} (is the port in use?)") from None
            # gRPC's health service starts SERVING: not before this server says so.
            await self._set_serving(False)
            await self._server.start()
        self._background.append(asyncio.create_task(self._telemetry.run_flusher(self.settings.metrics_flush_interval)))
        if self.settings.poll_interval:
            self._background.append(asyncio.create_task(self._poll(self.settings.poll_interval)))
        if self.settings.tokens_file is not None and self.authorizer is not None:
            self._background.append(
                asyncio.create_task(watch_tokens_file(self.settings.tokens_file, self.authorizer, FILES_POLL_S))
            )
        if self.follower is not None:
            self.follower.client = self._new_client()
            self.follower.address = self.settings.advertise or f"{_advertised_host(self.settings.host)}:{self.port}"
            self._follower_task = asyncio.create_task(self.follower.run())
        if self.predictions is not None:
            self._prediction_logger = PredictionLogger(
                self.predictions, self._new_prediction_sink(), interval_s=self.settings.prediction_log_flush_interval
            )
            self._prediction_logger.start()
        if self.follower is None or self.follower.reconciler.assigned.is_set():
            await self._report_ready()
        else:
            # A follower with an empty cache: live, but not ready (health NOT_SERVING) until its first assignment is
            # in, so that a load balancer sends nothing it cannot answer yet.
            self._background.append(asyncio.create_task(self._ready_when_assigned(self.follower)))
        log.info("serving on %s:%d (%s)", self.settings.host, self.port, self._describe_security())
        if not self.settings.loopback():
            if self.authorizer is None:
                log.warning("authentication is off (--no-auth): anyone who reaches %s may call this server", address)
            elif self._certificates is None:
                log.warning("callers' tokens cross the network in clear text: serve TLS (--tls-cert, --tls-key)")
        return self.port

    async def _start_native(self, address: str) -> int:
        """Serve grpc.aio on a private Unix socket and the compiled front on ``address``; returns the bound port."""
        settings = self.settings
        assert self._front_module is not None
        front = self._front_module.Front(
            settings.host,
            settings.grpc_port,
            reuse_port=self._reuse_port,
            threads=_front_threads(settings),
            max_message_bytes=settings.max_message_bytes,
            max_queued_bytes=settings.max_inflight_bytes,
            stream_window_bytes=settings.stream_window_bytes,
            stream_read_ahead=STREAM_READ_AHEAD,
        )
        if self._certificates is not None:
            try:
                front.set_tls(*self._certificates.pem())
            except ValueError as exc:
                raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"TLS files: {exc}") from None
        # A directory only this user can enter: what reaches the socket skipped the front's TLS.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="conduit-front-"))
        internal = self._socket_dir / "grpc.sock"
        self._server.add_insecure_port(f"unix:{internal}")
        await self._set_serving(False)
        await self._server.start()
        native = NativeTransport(front, self.dataplane, self.authorizer)
        native.start()
        try:
            port: int = front.start(str(internal))
        except OSError:
            native.close()
            await self._server.stop(0)
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
            raise ConduitError(ErrorCode.UNAVAILABLE, f"cannot listen on {address} (is the port in use?)") from None
        if self._certificates is not None:
            self._background.append(asyncio.create_task(self._reload_certificates(front)))
        self._front, self._native = front, native
        return port

    async def _reload_certificates(self, front: Front) -> None:
        """The native front's TLS files, served again when they change (grpc.aio checks at every handshake)."""
        certificates = self._certificates
        assert certificates is not None
        while True:
            await asyncio.sleep(TLS_POLL_S)
            pem = await asyncio.to_thread(certificates.changed)
            if pem is not None:
                try:
                    front.set_tls(*pem)
                except ValueError as exc:
                    log.warning("keeping the previous TLS certificate: %s", exc)

    def _describe_security(self) -> str:
        settings = self.settings
        if self._certificates is None:
            transport = "plaintext"
        else:
            transport = "mutual TLS" if settings.tls_client_ca is not None else "TLS"
        if self.authorizer is None:
            callers = "no caller authentication"
        elif settings.tokens_file is not None:
            callers = f"callers authenticated by the tokens in {settings.tokens_file}"
        else:
            callers = "callers authenticated as the control plane's users"
        control = (
            "model control explicit" if settings.model_control == "explicit" and settings.control_plane is None else ""
        )
        front = "native front" if self._front_module is not None else "python front"
        return ", ".join(part for part in (front, transport, callers, control) if part)

    async def _report_ready(self) -> None:
        if self._withdrawn:  # stopping: an assignment arriving now changes nothing
            return
        self.dataplane.set_ready(True)
        await self._set_serving(True)

    async def _ready_when_assigned(self, follower: Follower) -> None:
        await follower.reconciler.assigned.wait()
        await self._report_ready()
        log.info("ready: the first assignments of pool %s are applied", self.settings.pool)

    async def withdraw(self) -> None:
        """Report NOT_SERVING through gRPC health and not ready through ServerReady, still answering every call: the
        first step of a stop, which load balancers see before the port refuses."""
        self._withdrawn = True
        self.dataplane.set_ready(False)
        await self._set_serving(False)

    async def wait_refused(self) -> None:
        """Wait until the follower ends, which it does only when the control plane refuses this server's token; for
        ever when the server follows no control plane.

        Raises:
            ConduitError: UNAUTHENTICATED or PERMISSION_DENIED, saying why the control plane refused.
        """
        if self._follower_task is None:
            await asyncio.Event().wait()
        else:
            await asyncio.shield(self._follower_task)

    async def stop(self, grace: float | None = None) -> None:
        """Stop following the control plane, refuse new calls, answer every accepted one (up to ``grace`` seconds),
        drain the batchers, flush the prediction log."""
        if self._follower_task is not None:
            self._follower_task.cancel()
            await asyncio.gather(self._follower_task, return_exceptions=True)
            self._follower_task = None
        self.dataplane.set_ready(False)
        await self._set_serving(False)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        grace = self.settings.drain_timeout if grace is None else grace
        if self._front is not None:
            # Python keeps answering the front's calls while it drains them: the wait is off the event loop.
            await asyncio.to_thread(self._front.stop, grace)
            self._front = None
        if self._native is not None:
            self._native.close()
            self._native = None
        await self._server.stop(grace)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        await self._models.close()
        self._telemetry.flush()
        # After the drain, so that the last answered requests are logged too, and before the control plane's
        # connection closes, so that they can still be uploaded (what cannot waits in the outbox for the next start).
        if self._prediction_logger is not None:
            await self._prediction_logger.stop()
            self._prediction_logger = None
        if self.follower is not None and self.follower.client is not None:
            await self.follower.client.close()
            self.follower.client = None

    async def _set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            await self._health.set(service, status)

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._models.sync()
            except Exception:  # a poll must never kill the server; the next one retries
                log.exception("repository poll failed")


def _model_control_refusal(settings: ServerSettings) -> str | None:
    """Why RepositoryModelLoad/Unload are refused on this server; ``None`` when they change what it serves."""
    if settings.control_plane is not None:
        return (
            f"this server follows pool {settings.pool!r} of the control plane, which alone decides what it serves: "
            "deploy through the control plane"
        )
    if settings.model_control != "explicit":
        return "model control is off: start conduit serve with --model-control explicit to load and unload models"
    return None


def _front_module(settings: ServerSettings) -> ModuleType | None:
    """The compiled front's module when this server uses it; ``None`` for grpc.aio alone."""
    if settings.front == "python":
        return None
    module = native_front()
    if module is None and settings.front == "native":
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION,
            "--front native: this installation has no native front (conduit_native; `make install` builds it); "
            "serve with --front python",
        )
    return module


def _front_threads(settings: ServerSettings) -> int:
    if settings.front_threads:
        return settings.front_threads
    cores = len(os.sched_getaffinity(0))
    return max(1, min(4, cores // (2 * settings.workers)))


def _authorizer(settings: ServerSettings) -> Authorizer | None:
    """The authorizer of a server that authenticates its callers, with the tokens known at start."""
    if not settings.authenticates():
        return None
    if settings.tokens_file is not None:
        return Authorizer(read_tokens_file(settings.tokens_file))
    # Following: the tokens of the control plane's users, as the follower last saved them, until it fetches them.
    return Authorizer(None)


def _advertised_host(host: str) -> str:
    # Listening on every interface says nothing about where callers reach this machine: its host name does.
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host


# OpenTelemetry's "delta" preference: counters and histograms report what happened since the previous export;
# up-down counters (the in-flight gauge) and gauges stay cumulative, as a level has no meaningful delta.
DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


@dataclass(frozen=True, slots=True)
class _OtlpTarget:
    endpoint: str
    insecure: bool
    credentials: grpc.ChannelCredentials | None = None
    headers: dict[str, str] | None = None


def _otlp_target(settings: ServerSettings) -> _OtlpTarget | None:
    """Where OTLP metrics go: ``otlp_endpoint`` as given, else the followed control plane (its token in the
    ``authorization`` metadata and the follower's TLS settings), else nowhere."""
    if not settings.otlp_push:
        return None
    if settings.otlp_endpoint:
        return _OtlpTarget(settings.otlp_endpoint, insecure=settings.otlp_endpoint.startswith("http:"))
    if settings.control_plane is None:
        return None
    headers = {"authorization": f"Bearer {settings.token}"}
    if settings.control_plane_ca is None:
        return _OtlpTarget(f"http://{settings.control_plane}", insecure=True, headers=headers)
    credentials = grpc.ssl_channel_credentials(root_certificates=settings.control_plane_ca.read_bytes())
    return _OtlpTarget(f"https://{settings.control_plane}", insecure=False, credentials=credentials, headers=headers)


def _resource() -> Resource:
    return Resource.create(
        {"service.name": "conduit-inference-server", "service.instance.id": f"{os.uname().nodename}-{os.getpid()}"}
    )


def _tracer_provider(settings: ServerSettings) -> SdkTracerProvider | None:
    """Spans of sampled requests go to ``otlp_endpoint`` only: the control plane keeps metrics, not traces, so a
    server pushing to it alone traces nothing."""
    if not settings.otlp_push or not settings.otlp_endpoint or settings.trace_sample_ratio <= 0:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    target = _otlp_target(settings)
    assert target is not None
    provider = SdkTracerProvider(resource=_resource())
    exporter = OTLPSpanExporter(endpoint=target.endpoint, insecure=target.insecure)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _meter_provider(settings: ServerSettings, worker: int) -> tuple[SdkMeterProvider, HistogramSet, SumSet]:
    histograms = histogram_set()
    sums = sum_set()
    readers: list[MetricReader] = []
    if settings.metrics_port:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        readers.append(PrometheusReader(histograms, sums, registry=registry))
        port = settings.metrics_port + worker
        try:
            start_http_server(port, addr=settings.host, registry=registry)
        except OSError as exc:
            raise ConduitError(
                ErrorCode.UNAVAILABLE, f"cannot serve metrics on {settings.host}:{port}: {exc.strerror}"
            ) from None
    target = _otlp_target(settings)
    if target is not None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        temporality = DELTA if settings.otlp_temporality == "delta" else None
        exporter = OTLPMetricExporter(
            endpoint=target.endpoint,
            insecure=target.insecure,
            credentials=target.credentials,
            headers=target.headers,
            preferred_temporality=temporality,
        )
        readers.append(PeriodicReader(histograms, exporter, sums, export_interval_millis=settings.otlp_interval * 1000))
    resource = _resource()
    # Exemplars need traces, which this server does not record; turning them off halves the cost of a measurement.
    provider = SdkMeterProvider(metric_readers=readers, resource=resource, exemplar_filter=AlwaysOffExemplarFilter())
    return provider, histograms, sums


async def _serve(settings: ServerSettings, worker: int, reuse_port: bool) -> None:
    meter_provider, histograms, sums = _meter_provider(settings, worker)
    tracer_provider = _tracer_provider(settings)
    server = InferenceServer(
        settings,
        meter_provider,
        histograms,
        sums=sums,
        tracer_provider=tracer_provider,
        reuse_port=reuse_port,
        worker=worker,
    )
    signals: asyncio.Queue[int] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signals.put_nowait, signum)
    await server.start()
    signalled = asyncio.create_task(signals.get())
    refused = asyncio.create_task(server.wait_refused())
    await asyncio.wait({signalled, refused}, return_when=asyncio.FIRST_COMPLETED)
    error = refused.exception() if refused.done() else None
    refused.cancel()
    if error is None and await signalled == signal.SIGTERM and settings.drain_grace > 0:
        # A load balancer learns of the stop from health checks only: keep answering until it has looked.
        log.info("stopping: NOT_SERVING through health, still answering for %g s before draining", settings.drain_grace)
        await server.withdraw()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signals.get(), settings.drain_grace)
    signalled.cancel()
    await asyncio.gather(signalled, refused, return_exceptions=True)
    log.info("stopping: draining in-flight requests")
    await server.stop()
    meter_provider.shutdown()
    if tracer_provider is not None:
        tracer_provider.shutdown()
    if error is not None:
        # A token the control plane refuses stays refused: the server stops, and _worker says why in one line.
        raise error
    log.info("stopped")


def _worker(settings: ServerSettings, worker: int, reuse_port: bool) -> int:
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s %(levelname)s [w{worker}] %(name)s: %(message)s")
    try:
        asyncio.run(_serve(settings, worker, reuse_port))
    except ConduitError as exc:
        print(f"conduit serve: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _worker_process(settings: ServerSettings, worker: int) -> None:
    sys.exit(_worker(settings, worker, reuse_port=True))


def main(overrides: dict[str, Any]) -> int:
    """``conduit serve``: settings from ``CONDUIT_*`` variables overridden by flags, then ``run``.

    Returns:
        The process exit code: 2 for invalid settings, 1 when the server failed, 0 after a clean stop.
    """
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"]:
                field = "--" + "-".join(str(part) for part in error["loc"]).replace("_", "-")
                print(f"conduit serve: {field}: {error['msg']}", file=sys.stderr)
            else:  # a rule over several settings: its message names the flags
                print(f"conduit serve: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    return run(settings)


def run(settings: ServerSettings) -> int:
    """Run ``conduit serve`` until SIGTERM or SIGINT; returns the process exit code."""
    if settings.workers == 1:
        return _worker(settings, 0, reuse_port=False)
    if settings.grpc_port == 0:
        print("conduit serve: --workers above 1 needs a fixed --grpc-port", file=sys.stderr)
        return 2
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(settings, i), name=f"conduit-worker-{i}")
        for i in range(settings.workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # Supervise: when one worker fails, stop the others and fail the whole server rather than run at partial
    # capacity unnoticed.
    code = 0
    running = list(processes)
    while running:
        ready = multiprocessing.connection.wait([p.sentinel for p in running])
        for process in [p for p in running if p.sentinel in ready]:
            process.join()
            running.remove(process)
            if process.exitcode != 0 and code == 0:
                code = 1
                print(f"conduit serve: {process.name} exited with code {process.exitcode}", file=sys.stderr)
                for other in running:
                    if other.pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(other.pid, signal.SIGTERM)
    return code
