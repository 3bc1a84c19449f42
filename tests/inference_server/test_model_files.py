"""Loading versions by path: model files anywhere, no repository directory involved, and the repository scanner."""

from __future__ import annotations

import time
from pathlib import Path

from inference_server.models import ModelManager
from inference_server.repository import ModelRepository
from inference_server.stats import ModelStats
from tests.conftest import identity_model
from trainers.onnx_export import write_model_version


def _manager(repository: Path) -> ModelManager:
    return ModelManager(repository, stats_factory=lambda _name, _version: ModelStats(), clock=time.perf_counter_ns)


async def test_versions_load_from_files_outside_the_repository(tmp_path: Path) -> None:
    elsewhere = tmp_path / "artifacts"
    for version in (1, 2):
        write_model_version(elsewhere, "m", version, identity_model("FP32"))
    models = _manager(tmp_path / "empty-repository")
    try:
        await models.load_files("m", {"1": elsewhere / "m" / "1" / "model.onnx"})
        assert models.versions("m") == ["1"]
        await models.load_files("m", {"2": elsewhere / "m" / "2" / "model.onnx"})
        assert models.versions("m") == ["2"]  # a version not given any more is drained
        assert models.get("m").spec.version == "2"
    finally:
        await models.close()


def test_the_scanner_lists_models_and_canonical_versions(tmp_path: Path) -> None:
    for version in (1, 7):
        write_model_version(tmp_path, "m", version, identity_model("FP32"))
    (tmp_path / "m" / "007").mkdir()
    (tmp_path / ".hidden").mkdir()
    repository = ModelRepository(tmp_path)
    assert repository.names() == {"m"}
    assert sorted(repository.versions("m")) == ["1", "7"]
    assert repository.has("m") and not repository.has("../m") and not repository.has(".hidden")
    assert ModelRepository(tmp_path / "missing").names() == set()
