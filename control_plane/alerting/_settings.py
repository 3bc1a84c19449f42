"""Settings of alerting and the scheduler: ``CONDUIT_ALERTS_*`` environment variables.

Parsed only in the composition root, like ``ControlPlaneSettings``; this module reads nothing at import.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.outbound import OutboundPolicy, Refused, parse_allow_list
from control_plane.alerting._evaluate import FILLING_MIN_REQUESTS

__all__ = ["AlertingSettings"]

MIB = 1024 * 1024
GIB = 1024 * MIB
# What a job is given by the control plane itself, or must never get from it.
_NOT_PASSED = frozenset({"CONDUIT_ADMIN_TOKEN", "CONDUIT_TOKEN", "CONDUIT_CONTROL_PLANE", "HOME", "TMPDIR"})
_NOT_PASSED_PREFIXES = ("CONDUIT_CP_", "CONDUIT_ALERTS_", "AWS_")


class AlertingSettings(BaseSettings):
    """How alerts are evaluated and delivered, and how scheduled jobs run."""

    model_config = SettingsConfigDict(env_prefix="CONDUIT_ALERTS_", extra="forbid")

    smtp_host: str | None = None
    """SMTP server that email notifications go through; unset: ``email:`` channels fail to deliver, and say why."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    """Its port: 25 (plain or STARTTLS), 587 (submission, with ``smtp_starttls``) or 465 (with ``smtp_ssl``)."""
    smtp_from: str = "conduit@localhost"
    """The sender address of notifications."""
    smtp_starttls: bool = False
    """Upgrade the connection with STARTTLS before anything else is sent."""
    smtp_ssl: bool = False
    """Connect over TLS from the start (SMTPS, usually port 465)."""
    smtp_username: str | None = None
    """Log in with this user (and ``smtp_password``) after the optional STARTTLS."""
    smtp_password: SecretStr | None = None
    """Password of ``smtp_username``."""
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds one SMTP conversation may take."""
    smtp_allow: Annotated[tuple[str, ...], NoDecode] = ()
    """Where ``smtp_host`` may be although it is not a public address: comma-separated host names and addresses or
    CIDRs, as for ``webhook_allow`` (a relay on this machine: ``127.0.0.1/32``). Its own list, so that allowing an
    internal mail relay opens nothing to webhooks, whose URLs maintainers write."""
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds one webhook POST may take, connecting included."""
    webhook_allow: Annotated[tuple[str, ...], NoDecode] = ()
    """Webhook destinations allowed although they are not public (loopback, private, link-local, reserved…):
    comma-separated host names, trusted whatever they resolve to (``alerts.corp.internal``), and addresses or CIDRs
    (``127.0.0.1/32``, ``10.20.0.0/16``, ``fd00::/8``). A cloud metadata address is reached only when listed as that
    one address (``169.254.169.254/32``). Empty: public destinations only."""
    delivery_attempts: int = Field(default=5, ge=1, le=20)
    """Tries per notification before it is recorded as failed (connection errors, HTTP 5xx and 429, SMTP 4xx)."""
    retry_base_delay_s: float = Field(default=1.0, ge=0)
    """Wait before the second try; doubled before each next one."""
    retry_max_delay_s: float = Field(default=60.0, ge=0)
    """The longest wait between two tries."""
    repeat_s: float | None = Field(default=None, gt=0)
    """Notify an unacknowledged firing alert again after this many seconds; unset: once per change only."""
    lag_s: float = Field(default=120.0, ge=0)
    """How late a monitoring window may arrive after it ends and still count as current."""
    filling_min_requests: int = Field(default=FILLING_MIN_REQUESTS, ge=1)
    """Answered requests the minute still filling must hold before a ``for`` window (``p99_ms``, ``error_rate``)
    judges it; until then only ended minutes count, so one slow request at low traffic cannot fire a ``for 10s``."""
    misfire_grace_s: float = Field(default=300.0, gt=0)
    """A scheduled tick missed by more than this (control plane down) is skipped, not run late."""
    lease_ttl_s: float = Field(default=3600.0, gt=0)
    """How long a replica holds a job's tick; a run still unfinished after this may be taken over by another
    replica. Keep it above ``train_timeout_s``."""
    train_timeout_s: float = Field(default=3000.0, gt=0)
    """Seconds a training job may run (wall clock) before it is stopped and recorded as failed."""
    train_cpu_s: int = Field(default=12_000, ge=1)
    """CPU seconds a training job's process may use, every thread counted (RLIMIT_CPU); past them it is stopped and
    recorded as failed. The default is four cores busy for the whole of ``train_timeout_s``'s default."""
    train_memory_bytes: int = Field(default=8 * GIB, ge=256 * MIB)
    """Address space a training job's process may map (RLIMIT_AS); an allocation past it fails, and so does the job.
    It counts mapped libraries and reserved thread stacks too (a run of the bundled examples maps about 1 GiB)."""
    train_env: str = "PATH,LANG,LC_ALL,LC_CTYPE,TZ,OMP_NUM_THREADS,POLARS_MAX_THREADS,CONDUIT_CONTROL_PLANE_CA"
    """Comma-separated names of the control plane's environment variables a training job receives; it receives no
    other (no admin token, no database URL, no cloud credentials), besides its own ``CONDUIT_CONTROL_PLANE``,
    ``CONDUIT_TOKEN`` (of its creator, for this run only), ``HOME``, ``TMPDIR`` and ``MALLOC_ARENA_MAX``."""
    evaluate_interval_s: float = Field(default=60.0, gt=0)
    """Seconds between the built-in evaluations of every alert rule (run once across replicas), with or without an
    ``--evaluate`` job."""
    gc_grace_s: float = Field(default=3600.0, ge=0)
    """An artifact no version refers to is deleted by a ``--gc`` job once it was seen unreferenced this long ago
    (an upload in progress stores its artifact before its version)."""
    max_log_bytes: int = Field(default=256 * 1024, ge=1024)
    """Most bytes of a job's output kept with its run (its beginning and its end)."""

    @field_validator("smtp_allow", "webhook_allow", mode="before")
    @classmethod
    def _allow_list(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, str | list | tuple):
            raise ValueError("expected comma-separated host names, addresses and CIDRs")
        return parse_allow_list(value)

    def webhook_policy(self) -> OutboundPolicy:
        """Where webhooks may go."""
        return OutboundPolicy(self.webhook_allow)

    def smtp_policy(self) -> OutboundPolicy:
        """Where the SMTP server may be."""
        return OutboundPolicy(self.smtp_allow)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.smtp_ssl and self.smtp_starttls:
            raise ValueError("set smtp_ssl (TLS from the start) or smtp_starttls (upgrade), not both")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both smtp_username and smtp_password, or neither")
        if self.smtp_host is not None:
            # A literal address or localhost is settled now: better refused at start than on every mail.
            try:
                self.smtp_policy().check_host(self.smtp_host)
            except Refused as exc:
                raise ValueError(
                    f"smtp_host: {exc.reason}; allow it with CONDUIT_ALERTS_SMTP_ALLOW (e.g. 127.0.0.1/32)"
                ) from None
        if self.train_timeout_s >= self.lease_ttl_s:
            raise ValueError("train_timeout_s must be below lease_ttl_s, or a live run could be taken over")
        for name in self.train_env_names():
            if not name.replace("_", "").isalnum() or name in _NOT_PASSED or name.startswith(_NOT_PASSED_PREFIXES):
                raise ValueError(f"train_env: {name!r} cannot be passed to a training job")
        return self

    def train_env_names(self) -> list[str]:
        """``train_env`` as a list of names."""
        return [name.strip() for name in self.train_env.split(",") if name.strip()]
