"""What a training run records about its making beyond ``contract.entities.Lineage``: the commit of the project the
spec lives in, Conduit's own commit, and the versions of the libraries that shape a model."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["SourceCommit", "conduit_commit", "package_versions", "source_commit"]

PACKAGES = (
    "conduit",
    "numpy",
    "polars",
    "scikit-learn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "onnxmltools",
    "optuna",
    "lightgbm",
    "xgboost-cpu",
)

DIRTY_SUFFIX = "-dirty"
"""Appended to a commit with uncommitted changes, as ``git describe --dirty`` writes it."""


@dataclass(frozen=True)
class SourceCommit:
    """The commit checked out in a git work tree, and whether the tree holds changes not committed."""

    commit: str
    dirty: bool

    def __str__(self) -> str:
        return self.commit + (DIRTY_SUFFIX if self.dirty else "")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a model (missing ones left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_commit(folder: Path | None) -> SourceCommit | None:
    """The commit of the git repository holding ``folder`` (a spec's directory) and whether its work tree is dirty;
    None without a folder, without git, outside a repository, or in a repository with no commit yet."""
    if folder is None:
        return None
    try:
        commit = _git(folder, "rev-parse", "--verify", "HEAD")
        # Untracked files count: a new module the spec's features come from is part of what was trained.
        changes = _git(folder, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    return SourceCommit(commit, bool(changes))


def conduit_commit() -> str:
    """The commit of the git checkout Conduit runs from; "" for an installed wheel or without git."""
    package = Path(__file__).resolve().parent
    try:
        top = _git(package, "rev-parse", "--show-toplevel")
        # A wheel installed in a virtualenv that lives inside some other repository is not that repository's code.
        if Path(top).resolve() != package.parent:
            return ""
        return _git(package, "rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return ""


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10, check=True, stdin=subprocess.DEVNULL
    )
    return done.stdout.strip()
