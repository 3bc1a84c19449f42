"""A model-repository directory, read and nothing else: ``DIR/<model>/config.json`` and
``DIR/<model>/<version>/model.onnx``.

The scanner only says what is on disk; loading and serving are ``ModelManager``'s, which takes the files by path.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_FILE", "MODEL_FILE", "ModelRepository"]

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"


class ModelRepository:
    """The models and versions a repository directory holds."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> set[str]:
        """Every model directory; none when the repository does not exist (yet)."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def has(self, name: str) -> bool:
        """Whether ``name`` is a model directory of the repository (and not a path that leads out of it)."""
        return bool(name) and "/" not in name and not name.startswith(".") and (self.root / name).is_dir()

    def config_file(self, name: str) -> Path:
        """Where the configuration of ``name`` is; the file may not exist (all defaults)."""
        return self.root / name / CONFIG_FILE

    def versions(self, name: str) -> dict[str, Path]:
        """The model file of each version of ``name``, by version, for version directories that hold one."""
        model_dir = self.root / name
        on_disk = {
            p.name: p / MODEL_FILE
            for p in model_dir.iterdir()
            # isdecimal and isascii: "²" is a digit to isdigit() but not an int() can read.
            if p.name.isascii() and p.name.isdecimal() and p.is_dir() and (p / MODEL_FILE).is_file()
        }
        # Versions are integers; "007" and "7" would be the same version, so keep the canonical spelling only.
        return {str(int(v)): path for v, path in on_disk.items() if str(int(v)) == v}
