"""Scheduled jobs as ``conduit jobs add NAME --cron EXPR --train SPEC.toml | --evaluate | --gc`` declares them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting._cron import CronSchedule
from control_plane.store import check_name

__all__ = ["Job", "JobKind"]


class JobKind(enum.Enum):
    EVALUATE = "evaluate"
    """Evaluate every alert rule and drift."""
    TRAIN = "train"
    """Run a training spec and register the result."""
    GC = "gc"
    """Collect artifacts no version refers to any more."""


@dataclass(frozen=True, slots=True)
class Job:
    """A named action run on a cron schedule; ``spec`` is the training spec of a TRAIN job (else None);
    ``created_by`` the user whose rights a train job runs with (None: not known, as before it was stored)."""

    name: str
    schedule: CronSchedule
    kind: JobKind
    spec: Path | None = None
    created_by: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is JobKind.TRAIN) != (self.spec is not None):
            raise ValueError("a train job needs a spec, and only a train job has one")

    @classmethod
    def parse(
        cls, name: str, *, cron: str, train: str | Path | None = None, evaluate: bool = False, gc: bool = False
    ) -> Job:
        """The job of ``conduit jobs add NAME --cron CRON`` with exactly one of ``--train SPEC``, ``--evaluate``,
        ``--gc``. The spec must be a ``.toml`` path; whether it exists is for the caller to check where it runs.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault.
        """
        check_name("job", name)
        schedule = CronSchedule.parse(cron)
        chosen = [
            flag for flag, given in (("--train", train is not None), ("--evaluate", evaluate), ("--gc", gc)) if given
        ]
        if len(chosen) != 1:
            found = " and ".join(chosen) if chosen else "none"
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"job {name!r}: give exactly one of --train SPEC, --evaluate or --gc, not {found}",
            )
        if train is not None:
            spec = Path(train)
            if spec.suffix != ".toml":
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"job {name!r}: the training spec {str(spec)!r} is not a .toml file"
                )
            return cls(name, schedule, JobKind.TRAIN, spec)
        return cls(name, schedule, JobKind.EVALUATE if evaluate else JobKind.GC)

    @property
    def action(self) -> str:
        """The action as the command line writes it: ``--train SPEC``, ``--evaluate`` or ``--gc``."""
        return f"--train {self.spec}" if self.spec is not None else f"--{self.kind.value}"
