"""The topology's model: two versions of one classifier, written as ONNX files, and the rows its load sends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import train_classifier
from tests.control_plane.e2e.conftest import train_challenger


def write_versions(directory: Path) -> tuple[Path, Path, np.ndarray]:
    """``v1.onnx`` and ``v2.onnx`` in ``directory``, and the rows."""
    first = train_classifier()
    second = train_challenger(first)
    paths = (directory / "v1.onnx", directory / "v2.onnx")
    for path, model in zip(paths, (first, second), strict=True):
        path.write_bytes(model.onnx)
    return paths[0], paths[1], first.rows
