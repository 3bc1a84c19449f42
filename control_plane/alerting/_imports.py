"""Import jobs: ``conduit datasets import --spec SPEC.json`` run on a schedule as the job's creator.

An import job's spec is an ``ImportSpec`` as JSON. Its run is a confined process like a train run (``TrainRunner``,
with this module's command), given besides the train environment: the creator's token for the run, the variables
its ``env:VAR`` headers name (read from the control plane's environment when the run starts, and only those that
``CONDUIT_IMPORT_ENV`` lists), the artifact store's S3 endpoint and AWS variables for ``s3://`` URLs, and
``--outbound-allow`` with ``CONDUIT_IMPORT_ALLOW``, so that it reaches only public addresses and those listed.
The data set's content hash is its version: a run on unchanged data records nothing new and logs ``unchanged``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.entities import ImportSpec
from contract.errors import ConduitError, ErrorCode
from contract.outbound import OutboundPolicy, parse_allow_list

__all__ = ["DEFAULT_IMPORT_COMMAND", "ImportSettings", "import_argv", "import_environment"]

DEFAULT_IMPORT_COMMAND = (sys.executable, "-m", "clients.cli", "datasets", "import", "--spec", "{spec}")
# Never passed to a job however a header names them: the control plane's own secrets and settings.
_NEVER = frozenset({"CONDUIT_ADMIN_TOKEN", "CONDUIT_TOKEN", "CONDUIT_CONTROL_PLANE", "HOME", "TMPDIR", "PATH"})
_NEVER_PREFIXES = ("CONDUIT_CP_", "CONDUIT_ALERTS_", "CONDUIT_IMPORT_", "AWS_")
S3_PASSED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


class ImportSettings(BaseSettings):
    """What scheduled imports may reach and read: ``CONDUIT_IMPORT_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CONDUIT_IMPORT_", extra="forbid")

    allow: Annotated[tuple[str, ...], NoDecode] = ()
    """Import destinations allowed although they are not public (loopback, private, link-local…), as
    ``CONDUIT_ALERTS_WEBHOOK_ALLOW`` writes them: comma-separated host names and addresses or CIDRs
    (``127.0.0.1/32``, ``data.corp.internal``). Empty: public destinations only. Its own list: allowing an internal
    API for imports opens nothing to webhooks."""
    env: Annotated[tuple[str, ...], NoDecode] = ()
    """Comma-separated names of the control plane's environment variables an import job's ``env:VAR`` header may
    name (``PARTNER_API_TOKEN``); a job naming another is refused. Empty: jobs send no secret header."""
    timeout_s: float = Field(default=900.0, gt=0)
    """Seconds an import run may take (wall clock, every page and retry included) before it is stopped; at most
    ``CONDUIT_ALERTS_TRAIN_TIMEOUT_S``, which its token and lease are sized for. Its CPU and memory limits are a
    train run's."""

    @field_validator("allow", mode="before")
    @classmethod
    def _allow_list(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, str | list | tuple):
            raise ValueError("expected comma-separated host names, addresses and CIDRs")
        return parse_allow_list(value)

    @field_validator("env", mode="before")
    @classmethod
    def _names(cls, value: Any) -> tuple[str, ...]:
        names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n) for n in value]
        for name in filter(None, names):
            if not name.replace("_", "").isalnum() or name in _NEVER or name.startswith(_NEVER_PREFIXES):
                raise ValueError(f"{name!r} cannot be given to an import job")
        return tuple(filter(None, names))

    def policy(self) -> OutboundPolicy:
        """Where import jobs may go."""
        return OutboundPolicy(self.allow)

    def check(self, spec: ImportSpec, job: str) -> None:
        """Refuse a job spec that would store a secret or read a variable it may not.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the header or variable.
        """
        literal = spec.literal_secrets()
        if literal:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"job {job!r}: header {literal[0]} would be stored as written and shown to every viewer; "
                "write its value as env:VAR (read from the control plane's environment when the job runs)",
            )
        for name in spec.env:
            if name not in self.env:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"job {job!r}: env:{name} is not among the variables import jobs may read (CONDUIT_IMPORT_ENV)",
                )


def import_argv(command: tuple[str, ...], settings: ImportSettings) -> tuple[str, ...]:
    """The command of an import run, restricted to the destinations ``settings`` allows."""
    return (*command, "--outbound-allow", ",".join(settings.allow))


def import_environment(spec: ImportSpec, settings: ImportSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a run of ``spec`` gets besides the train environment: those its headers name (when allowed
    and set: the import says which is missing) and what ``s3://`` URLs need."""
    settings.check(spec, spec.name or "import")
    passed = {name: environ[name] for name in spec.env if name in environ}
    if spec.scheme == "s3":
        passed.update({name: environ[name] for name in S3_PASSED if name in environ})
    return passed
