"""What a training run records about its making beyond ``contract.entities.Lineage``: the code's git commit and the
versions of the libraries that shape a model."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["code_version", "package_versions"]

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


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a model (missing ones left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def code_version() -> str:
    """The commit of the git checkout this package runs from; "" for an installed wheel or without git."""
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
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()
