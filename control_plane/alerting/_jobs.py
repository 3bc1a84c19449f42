"""Scheduled jobs as ``conduit jobs add NAME --cron EXPR --train SPEC.toml | --import URL … | --evaluate | --gc``
declares them."""

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
    IMPORT = "import"
    """Import a data set from a URL (an ``ImportSpec`` as JSON); a new version only when the data changed."""


_WITH_SPEC = frozenset({JobKind.TRAIN, JobKind.IMPORT})


@dataclass(frozen=True, slots=True)
class Job:
    """A named action run on a cron schedule; ``spec`` is the training spec of a TRAIN job or the import spec of an
    IMPORT job (else None); ``created_by`` the user whose rights they run with (None: not known, as before it was
    stored)."""

    name: str
    schedule: CronSchedule
    kind: JobKind
    spec: Path | None = None
    created_by: str | None = None

    def __post_init__(self) -> None:
        if (self.kind in _WITH_SPEC) != (self.spec is not None):
            raise ValueError("a train or import job needs a spec, and only those have one")

    @classmethod
    def parse(
        cls,
        name: str,
        *,
        cron: str,
        train: str | Path | None = None,
        evaluate: bool = False,
        gc: bool = False,
        imports: str | Path | None = None,
    ) -> Job:
        """The job of ``conduit jobs add NAME --cron CRON`` with exactly one of ``--train SPEC``, ``--import``,
        ``--evaluate``, ``--gc``. The spec must be a ``.toml`` path (an import's a ``.json`` one); whether it exists
        is for the caller to check where it runs.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault.
        """
        check_name("job", name)
        schedule = CronSchedule.parse(cron)
        chosen = [
            flag
            for flag, given in (
                ("--train", train is not None), ("--import", imports is not None), ("--evaluate", evaluate),
                ("--gc", gc),
            )
            if given
        ]  # fmt: skip
        if len(chosen) != 1:
            found = " and ".join(chosen) if chosen else "none"
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"job {name!r}: give exactly one of --train SPEC, --import URL, --evaluate or --gc, not {found}",
            )
        if train is not None:
            spec = Path(train)
            if spec.suffix != ".toml":
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"job {name!r}: the training spec {str(spec)!r} is not a .toml file"
                )
            return cls(name, schedule, JobKind.TRAIN, spec)
        if imports is not None:
            return cls(name, schedule, JobKind.IMPORT, Path(imports))
        return cls(name, schedule, JobKind.EVALUATE if evaluate else JobKind.GC)

    @property
    def action(self) -> str:
        """The action as the command line writes it: ``--train SPEC``, ``--import SPEC``, ``--evaluate`` or ``--gc``."""
        return f"--{self.kind.value} {self.spec}" if self.spec is not None else f"--{self.kind.value}"
