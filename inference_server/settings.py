"""Settings of ``conduit serve``: read from ``CONDUIT_*`` environment variables, overridden by command-line flags.

Parsed only in the composition root (``inference_server.app``); nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServerSettings"]

MIB = 1024 * 1024


class ServerSettings(BaseSettings):
    """How one inference server runs."""

    model_config = SettingsConfigDict(env_prefix="CONDUIT_", extra="forbid")

    model_repository: Path
    """Directory laid out as ``<model>/<version>/model.onnx`` with an optional ``<model>/config.json``."""

    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface."""
    grpc_port: int = Field(default=8001, ge=0, le=65535)
    """Port of the gRPC data plane (Open Inference Protocol, health, reflection)."""
    metrics_port: int = Field(default=8002, ge=0, le=65535)
    """Port of the Prometheus scrape endpoint; worker i of N listens on metrics_port + i. 0 disables it."""
    workers: int = Field(default=1, ge=1)
    """Worker processes sharing the gRPC port with SO_REUSEPORT."""
    poll_interval: float | None = Field(default=None, gt=0)
    """Seconds between scans of the repository for new, changed and removed models; unset: no polling."""
    max_message_bytes: int = Field(default=64 * MIB, ge=1024)
    """Largest gRPC message accepted or sent."""
    drain_timeout: float = Field(default=30.0, gt=0)
    """Seconds a stopping server waits for in-flight requests."""
    otlp_endpoint: str | None = None
    """OTLP/gRPC collector to push metrics to (for example http://127.0.0.1:4317); unset: no push."""
    otlp_interval: float = Field(default=10.0, gt=0)
    """Seconds between OTLP metric pushes."""
    metrics_flush_interval: float = Field(default=1.0, gt=0)
    """Seconds between moves of buffered request measurements into the OpenTelemetry instruments."""
    log_level: str = "INFO"
    """Python logging level name."""
    server_name: str = "conduit"
    """Name answered by ServerMetadata."""

    @field_validator("model_repository")
    @classmethod
    def _is_directory(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"{value}: not a directory")
        return value
