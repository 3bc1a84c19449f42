"""Settings of ``conduit dashboard``: ``CONDUIT_DASHBOARD_*`` environment variables, overridden by command-line flags.

Parsed only in the composition root (``dashboard.app``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DashboardSettings"]


class DashboardSettings(BaseSettings):
    """How the dashboard runs."""

    model_config = SettingsConfigDict(env_prefix="CONDUIT_DASHBOARD_", extra="forbid")

    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface."""
    port: int = Field(default=8080, ge=0, le=65535)
    """HTTP port."""
    control_plane: str = "127.0.0.1:8100"
    """Address of the control plane's gRPC API (host:port)."""
    control_plane_ca: Path | None = None
    """PEM CA certificate of the control plane: talk TLS to it; unset: plaintext."""
    page_size: int = Field(default=50, ge=1, le=1000)
    """Rows per page of every paginated list (models, versions, deployments, audit)."""
    refresh_seconds: float = Field(default=5.0, gt=0)
    """Seconds between two fetches of a monitoring page's data by the browser."""
    secure_cookie: bool = False
    """Mark the session cookie Secure even on requests that arrive as plain HTTP (set it behind a proxy that ends
    TLS without forwarding the scheme); requests that arrive as HTTPS always get a Secure cookie."""
    session_idle_seconds: float = Field(default=1800.0, gt=0)
    """A sign-in session unused this long ends (30 minutes)."""
    session_lifetime_seconds: float = Field(default=43200.0, gt=0)
    """A sign-in session ends this long after it began, used or not (12 hours)."""
    rpc_timeout: float = Field(default=15.0, gt=0)
    """Deadline of each call to the control plane, in seconds."""
    log_level: str = "INFO"
    """Logging level."""
