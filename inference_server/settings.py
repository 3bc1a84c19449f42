"""Settings of ``conduit serve``: read from ``CONDUIT_*`` environment variables, overridden by command-line flags.

Parsed only in the composition root (``inference_server.app``); nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServerSettings"]

MIB = 1024 * 1024


class ServerSettings(BaseSettings):
    """How one inference server runs."""

    model_config = SettingsConfigDict(env_prefix="CONDUIT_", extra="forbid")

    model_repository: Path | None = None
    """Directory laid out as ``<model>/<version>/model.onnx`` with an optional ``<model>/config.json``. Exactly one of
    this and ``control_plane`` is set."""
    control_plane: str | None = None
    """Control plane address (host:port) to follow: serve what it assigns to ``pool``."""
    pool: str = Field(default="default", pattern=r"^[^/\\.][^/\\]*$")
    """Server pool whose assignments this server follows."""
    token: str | None = None
    """Bearer token of a user with the ``server`` role (CONDUIT_TOKEN); required with ``control_plane``."""
    control_plane_ca: Path | None = None
    """PEM file of the CA that signed the control plane's certificate; unset: plaintext connection."""
    home: Path = Path("~/.conduit")
    """Where Conduit keeps its local files (CONDUIT_HOME); the default cache lives under it."""
    cache_dir: Path | None = None
    """Artifact cache of a following server; default ``<home>/serve-cache/<pool>``."""
    advertise: str | None = None
    """host:port under which callers reach this server, as registered with the control plane; default host:port."""
    instance_name: str | None = None
    """Name registered with the control plane (the same name reuses its server id); default hostname-pid."""
    heartbeat_interval: float = Field(default=5.0, gt=0)
    """Seconds between heartbeats to the control plane."""
    reconnect_backoff_initial: float = Field(default=0.2, gt=0)
    """Seconds before the first reconnection attempt after the control plane went away; doubles on every failure."""
    reconnect_backoff_max: float = Field(default=5.0, gt=0)
    """Longest wait between reconnection attempts, in seconds."""

    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface."""
    grpc_port: int = Field(default=8001, ge=0, le=65535)
    """Port of the gRPC data plane (Open Inference Protocol, health, reflection)."""
    metrics_port: int = Field(default=8002, ge=0, le=65535)
    """Port of the Prometheus scrape endpoint; worker i of N listens on metrics_port + i. 0 disables it."""
    workers: int = Field(default=1, ge=1)
    """Worker processes sharing the gRPC port with SO_REUSEPORT."""
    front: Literal["auto", "native", "python"] = "auto"
    """The gRPC front: ``native`` terminates gRPC (and TLS) in compiled code off the GIL and hands inference calls to
    Python in batches; ``python`` is grpc.aio; ``auto`` is native where it was built (``conduit_native``), else
    python. Both serve the same protocol with the same answers."""
    front_threads: int = Field(default=0, ge=0)
    """Threads of the native front's runtime per worker; 0: one for every two cores available to each worker, at
    least 1 and at most 4 (the event loop that runs the models needs a core of its own)."""
    poll_interval: float | None = Field(default=None, gt=0)
    """Seconds between scans of the repository for new, changed and removed models; unset: no polling."""
    max_message_bytes: int = Field(default=64 * MIB, ge=1024)
    """Largest gRPC message accepted or sent."""
    max_inflight_bytes: int = Field(default=512 * MIB, ge=1024)
    """Bytes of decoded request tensors in flight at once, over every call of this worker; a request that would go
    beyond is answered RESOURCE_EXHAUSTED at once (a request alone larger than this is always refused)."""
    stream_window_bytes: int = Field(default=16 * MIB, ge=1024)
    """Bytes of one ModelStreamInfer stream's requests read ahead and answers not yet sent; past it, the stream stops
    reading until the client reads its answers (gRPC flow control then pushes back on the client)."""
    tls_cert: Path | None = None
    """PEM certificate chain to serve TLS with (with ``tls_key``); re-read when the files change, for the next
    connections. Unset: plaintext."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_client_ca: Path | None = None
    """PEM CA certificates: require callers to present a client certificate signed by one of them (mutual TLS)."""
    tokens_file: Path | None = None
    """Repository mode: TOML file of the callers' tokens, as sha256 hashes with a name and role
    (``conduit tokens add``); turns caller authentication on. Re-read when it changes."""
    no_auth: bool = False
    """Serve without caller authentication: needed to serve a non-loopback address in repository mode without a
    ``tokens_file``; with a control plane, turns its default authentication of callers off."""
    model_control: Literal["none", "explicit"] = "none"
    """Repository mode: ``explicit`` lets RepositoryModelLoad and RepositoryModelUnload change what is served (an
    admin's token when authentication is on); ``none`` refuses them. A server following a control plane always
    refuses them: the control plane alone decides what it serves."""
    drain_timeout: float = Field(default=30.0, gt=0)
    """Seconds a stopping server waits for in-flight requests."""
    drain_grace: float = Field(default=5.0, ge=0)
    """Seconds between SIGTERM and the drain, during which the server reports NOT_SERVING through gRPC health (and
    not ready through ServerReady) but still answers every call, so that a load balancer (Envoy, kube-proxy) stops
    sending before the port refuses. SIGINT, or a second signal, skips it."""
    otlp_endpoint: str | None = None
    """OTLP/gRPC collector to push metrics (and sampled traces) to, for example http://127.0.0.1:4317 (https://
    for TLS). Unset: a server following a control plane pushes its metrics there (with its token and the control
    plane's TLS settings), a standalone server pushes nothing."""
    otlp_push: bool = True
    """Push metrics with OTLP at all; false leaves only the Prometheus scrape."""
    otlp_interval: float = Field(default=10.0, gt=0)
    """Seconds between OTLP metric pushes."""
    otlp_temporality: Literal["delta", "cumulative"] = "delta"
    """Temporality of pushed counters and histograms: delta (each push carries what happened since the previous
    one, what the control plane's receiver stores) or cumulative. The Prometheus scrape is always cumulative."""
    trace_sample_ratio: float = Field(default=0.01, ge=0.0, le=1.0)
    """Share of inference requests traced (a span with queue and compute children), exported with OTLP to
    ``otlp_endpoint``. Only with an ``otlp_endpoint``: the control plane keeps no traces, so a server pushing to it
    alone records none. 0 turns tracing off."""
    metrics_flush_interval: float = Field(default=1.0, gt=0)
    """Seconds between moves of buffered request measurements into the OpenTelemetry instruments (the data sketches
    of the batches executed in between are counted then too)."""
    sketches: bool = True
    """Count served inputs and predictions against each model version's training data profile (drift monitoring:
    conduit.sketch.bin and conduit.sketch.category); versions without a profile have none either way."""
    prediction_log_sample: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of answered requests whose inputs and outputs are logged to Parquet (prediction logs). Unset: 0.01
    when following a control plane or writing to ``prediction_log_dir``, else 0. 0 turns logging off."""
    prediction_log_dir: Path | None = None
    """With ``model_repository``: where prediction logs are written, as ``<model>/<version>/<time>-<sha256>.parquet``
    (unset: no prediction logs). Following a control plane: where they wait for their upload (default
    ``<cache dir>/prediction-logs``)."""
    prediction_log_flush_interval: float = Field(default=10.0, gt=0)
    """Seconds between flushes of the sampled requests into a Parquet file (per model version)."""
    prediction_log_flush_rows: int = Field(default=10_000, ge=1)
    """Sampled rows from which a flush starts before its interval is up."""
    prediction_log_buffer_rows: int = Field(default=100_000, ge=1)
    """Sampled rows held in memory at most; a sampled request that does not fit is dropped (and counted)."""
    prediction_log_outbox_bytes: int = Field(default=1024 * MIB, ge=1)
    """Following a control plane: bytes of files its outbox (with its ``rejected/``) holds at most, per worker;
    beyond, the oldest are deleted unsent (and counted)."""
    prediction_log_buffer_bytes: int = Field(default=64 * MIB, ge=1)
    """Bytes of sampled tensors (inputs and outputs as copied) held in memory at most; a sampled request that does
    not fit is dropped (and counted), whichever of this and ``prediction_log_buffer_rows`` it reaches first."""
    log_level: str = "INFO"
    """Python logging level name."""
    server_name: str = "conduit"
    """Name answered by ServerMetadata."""

    @field_validator("model_repository")
    @classmethod
    def _is_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value}: not a directory")
        return value

    @field_validator("control_plane_ca", "tls_cert", "tls_key", "tls_client_ca", "tokens_file")
    @classmethod
    def _is_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value}: not a file")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.model_repository is None) == (self.control_plane is None):
            raise ValueError("set exactly one of --model-repository and --control-plane")
        if self.control_plane is not None:
            if not self.token:
                raise ValueError("--control-plane needs --token (or CONDUIT_TOKEN)")
            if self.poll_interval is not None:
                raise ValueError("--poll-interval only applies to --model-repository")
        if self.control_plane is None and self.prediction_log_dir is None and self.prediction_log_sample:
            raise ValueError("--prediction-log-sample with --model-repository needs --prediction-log-dir")
        if self.prediction_log_flush_rows > self.prediction_log_buffer_rows:
            # The buffer would drop rows before ever asking for a flush.
            raise ValueError("--prediction-log-flush-rows exceeds --prediction-log-buffer-rows")
        if self.reconnect_backoff_initial > self.reconnect_backoff_max:
            raise ValueError("--reconnect-backoff-initial exceeds --reconnect-backoff-max")
        self._check_security()
        return self

    def _check_security(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both --tls-cert and --tls-key, or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        if self.control_plane is not None:
            if self.tokens_file is not None:
                raise ValueError(
                    "--tokens-file only applies to --model-repository; a following server checks "
                    "callers against the control plane's users"
                )
            if self.model_control != "none":
                raise ValueError(
                    "--model-control only applies to --model-repository; the control plane decides "
                    "what a following server serves"
                )
        if self.tokens_file is not None and self.no_auth:
            raise ValueError("--no-auth contradicts --tokens-file")
        if self.control_plane is None and self.tokens_file is None and not self.no_auth and not self.loopback():
            raise ValueError(
                f"serving {self.host} (not loopback) without authentication: give --tokens-file, or --no-auth to "
                "serve anyone who reaches it"
            )

    def loopback(self) -> bool:
        """Whether ``host`` is a loopback address, reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def authenticates(self) -> bool:
        """Whether callers must present a token: following a control plane (unless ``no_auth``), or a tokens file."""
        if self.no_auth:
            return False
        return self.control_plane is not None or self.tokens_file is not None

    def prediction_log_ratio(self) -> float:
        """The share of requests logged (see ``prediction_log_sample``)."""
        if self.prediction_log_sample is not None:
            return self.prediction_log_sample
        return 0.01 if self.control_plane is not None or self.prediction_log_dir is not None else 0.0

    def prediction_log_outbox(self) -> Path:
        """Where a following server's prediction logs wait for their upload."""
        if self.prediction_log_dir is not None:
            return self.prediction_log_dir.expanduser()
        return self.follower_cache_dir() / "prediction-logs"

    def follower_cache_dir(self) -> Path:
        """The artifact cache directory of a server following the control plane."""
        if self.cache_dir is not None:
            return self.cache_dir.expanduser()
        return self.home.expanduser() / "serve-cache" / self.pool
