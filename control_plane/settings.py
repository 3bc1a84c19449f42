"""Settings of ``conduit control-plane``: ``CONDUIT_CP_*`` environment variables, overridden by command-line flags.

The prefix keeps them apart from ``conduit serve``'s ``CONDUIT_*`` flags; ``CONDUIT_HOME`` and ``CONDUIT_ADMIN_TOKEN``
are shared names and read as such. Parsed only in the composition root (``control_plane.app``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ControlPlaneSettings"]

MIB = 1024 * 1024
GIB = 1024 * MIB


class ControlPlaneSettings(BaseSettings):
    """How the control plane runs."""

    # Fields are set by name from flags and by alias (or prefixed name) from the environment.
    model_config = SettingsConfigDict(
        env_prefix="CONDUIT_CP_", extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    home: Path = Field(default=Path("~/.conduit"), validation_alias="CONDUIT_HOME")
    """Where Conduit keeps its local files (CONDUIT_HOME): the default database, artifacts and upload spool."""
    db: str | None = None
    """SQLAlchemy URL of the registry: ``sqlite:///FILE`` or ``postgresql+psycopg://…``; default
    ``sqlite:///<home>/registry.db``."""
    artifacts: str | None = None
    """Artifact store: a directory or ``s3://bucket/prefix``; default ``<home>/artifacts``."""
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible object store (MinIO, Ceph…); unset: AWS."""
    admin_token: str | None = Field(default=None, validation_alias="CONDUIT_ADMIN_TOKEN", repr=False)
    """Token of the first admin, created when the registry has no user (CONDUIT_ADMIN_TOKEN); unset: one is
    generated and printed once."""
    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface."""
    grpc_port: int = Field(default=8100, ge=0, le=65535)
    """Port of the gRPC API (control plane, health, reflection); 0 picks a free port."""
    tls_cert: Path | None = None
    """PEM certificate chain to serve TLS with (together with ``tls_key``); unset: plaintext."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    max_upload_bytes: int = Field(default=2 * GIB, ge=1)
    """Largest model artifact accepted by RegisterVersion, and largest data set file accepted by ImportDataset."""
    max_spool_bytes: int = Field(default=8 * GIB, ge=1)
    """Most bytes of uploads (artifacts, data sets, prediction logs, attachments) being received at once: each
    reserves its announced size until it is stored, and one that does not fit is refused at once with
    RESOURCE_EXHAUSTED. At least ``max_upload_bytes``."""
    max_parquet_rows: int = Field(default=100_000_000, ge=1)
    """Most rows a data set or prediction log may hold, as its Parquet metadata says: a larger one is refused before
    any job reads it."""
    max_parquet_decoded_bytes: int = Field(default=16 * GIB, ge=1)
    """Most bytes a data set or prediction log may decode to, as its Parquet metadata says (its row groups'
    uncompressed sizes, and its values at their types' widths): a decompression bomb is refused before any job
    reads it."""
    max_parquet_expansion: float = Field(default=100.0, ge=1)
    """Most times its own size a data set or prediction log above 64 MiB decoded may decode to (its Parquet
    metadata's uncompressed sizes): real tables compress a few times, bombs thousands."""
    max_attachment_bytes: int = Field(default=8 * MIB, ge=0)
    """Largest total size of the documents attached to one model version (evaluation data, spec, log); they travel
    in RegisterVersion's first message, so keep it below ``max_message_bytes``."""
    server_timeout: float = Field(default=15.0, gt=0)
    """Seconds without a heartbeat after which an inference server no longer counts as alive."""
    server_expiry: float = Field(default=600.0, gt=0)
    """Seconds without a heartbeat or registration after which a server's registration expires: until then only the
    user who registered the name may register it again or heartbeat as it (anyone else gets PERMISSION_DENIED);
    after, another user may take the name. Far above ``server_timeout``, so a restart or a short outage never frees
    a name; at least ``server_timeout``."""
    stream_recheck_interval: float = Field(default=2.0, gt=0)
    """Seconds between checks of the token behind each open stream (assignment watches, uploads, downloads): one
    whose user was disabled, or whose token is gone, ends with UNAUTHENTICATED within about this long."""
    watch_poll_interval: float = Field(default=0.5, gt=0)
    """Seconds between checks of a pool's assignments generation by each watch: this is how changes made through
    another control-plane replica reach the servers watching this one."""
    max_message_bytes: int = Field(default=16 * MIB, ge=2 * MIB)
    """Largest gRPC message received or sent (uploads and downloads travel in 1 MiB chunks)."""
    monitoring_retention: int = Field(default=30, ge=1)
    """Days of monitoring roll-ups (per-minute traffic, latency and feature sketches) kept."""
    monitoring_prune_interval: float = Field(default=3600.0, gt=0)
    """Seconds between deletions of the roll-ups older than ``monitoring_retention`` and of the prediction logs
    older than ``prediction_log_retention`` (with their files)."""
    prediction_log_retention: int = Field(default=30, ge=1)
    """Days of prediction logs kept: older ones are deleted with their files every ``monitoring_prune_interval``
    (and by a ``gc`` job, which leaves their files to its artifact collection)."""
    psi_threshold: float = Field(default=0.2, gt=0)
    """Population stability index from which a feature's shift against its training profile is large enough to count
    as drift (when ``chi2_p_threshold`` also says it is not noise)."""
    chi2_p_threshold: float = Field(default=0.01, gt=0, le=1)
    """A shift counts as drift only when the chi-squared test's p-value is below this."""
    drift_share: float = Field(default=0.5, gt=0, le=1)
    """Share of a model's input features that must drift for its data set to count as drifted."""
    drift_min_rows: int = Field(default=100, ge=1)
    """Fewest values a feature needs in a monitoring window for a drift verdict; fewer show "too few rows" and never
    count as drift (nor fire a drift alert)."""
    drift_min_expected: float = Field(default=5.0, gt=0)
    """Fewest rows the chi-squared test of drift must expect in each cell (Cochran's rule): cells expecting fewer are
    pooled, and a window too small to leave two such cells shows "too few rows"."""
    log_level: str = "INFO"
    """Python logging level name."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_spool_bytes < self.max_upload_bytes:
            raise ValueError(
                "CONDUIT_CP_MAX_SPOOL_BYTES must be at least the largest upload (--max-upload-bytes), or no upload "
                "that large ever fits"
            )
        if self.server_expiry < self.server_timeout:
            raise ValueError(
                "CONDUIT_CP_SERVER_EXPIRY must be at least CONDUIT_CP_SERVER_TIMEOUT: a live server's name never "
                "expires"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both --tls-cert and --tls-key, or neither")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.expanduser().is_file():
                raise ValueError(f"{path}: not a file")
        return self

    def home_dir(self) -> Path:
        """``home`` with ``~`` expanded."""
        return self.home.expanduser()

    def db_url(self) -> str:
        """The registry's SQLAlchemy URL."""
        return self.db or f"sqlite:///{self.home_dir() / 'registry.db'}"

    def artifacts_url(self) -> str:
        """Where artifacts are stored: a directory or an ``s3://`` URL."""
        return self.artifacts or str(self.home_dir() / "artifacts")

    def spool_dir(self) -> Path:
        """Where uploads are spooled while they arrive and are verified."""
        return self.home_dir() / "tmp"
