"""Applying assignments with a real cache and ModelManager, artifacts already cached: switch, rollback, canary, a
version that fails to load (the previous one keeps serving and the failure is reported), removal, restore, and a
restore that finds a version missing."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contract.entities import ArtifactRef, Assignment, PoolAssignments
from inference_server.follower import ArtifactCache, Reconciler
from inference_server.models import ModelManager
from inference_server.stats import ModelStats
from tests.conftest import TrainedModel, identity_model

BROKEN = b"this is not an ONNX graph"


async def cached(cache: ArtifactCache, payload: bytes, version: int) -> ArtifactRef:
    ref = ArtifactRef(version, hashlib.sha256(payload).hexdigest(), len(payload))

    async def chunks() -> AsyncIterator[ArtifactRef | bytes]:
        yield payload

    await cache.store(ref, chunks())
    return ref


def new_follower(cache: ArtifactCache) -> tuple[Reconciler, ModelManager]:
    models = ModelManager(cache.repository, stats_factory=lambda _n, _v: ModelStats(), clock=time.perf_counter_ns)
    return Reconciler(models, cache, pool="default"), models


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


async def test_switch_rollback_canary_failure_and_removal(cache: ArtifactCache, classifier: TrainedModel) -> None:
    # Artifacts are cached right before the apply that needs them: an apply prunes what no assignment refers to.
    v1 = await cached(cache, classifier.onnx, 1)
    other = await cached(cache, identity_model("INT64"), 1)
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", v1), Assignment("o", other)]))
        assert (models.versions("m"), models.get("m").spec.version, follower.generation) == (["1"], "1", 1)

        v2 = await cached(cache, identity_model("FP32"), 2)
        await follower.apply(PoolAssignments.of("default", 2, [Assignment("m", v2), Assignment("o", other)]))
        assert models.versions("m") == ["2"] and cache.installed("m") == {2}

        await follower.apply(PoolAssignments.of("default", 3, [Assignment("m", v1, v2, 25.0)]))
        assert models.versions("m") == ["1", "2"] and models.routing("m") == ("1", "2", 25.0)
        assert models.versions("o") == [] and cache.models() == {"m"}

        # A primary that fails to load: the served versions and their routing stay, the failure is reported.
        v3 = await cached(cache, BROKEN, 3)
        await follower.apply(PoolAssignments.of("default", 4, [Assignment("m", v3)]))
        assert models.versions("m") == ["1", "2"] and models.routing("m") == ("1", "2", 25.0)
        assert set(follower.failures()) == {"m"} and follower.generation == 3
        failed = [r for r in follower.reports() if r.version == 3]
        assert [(r.state, bool(r.reason)) for r in failed] == [("UNAVAILABLE", True)]
        assert cache.load_state() == PoolAssignments.of("default", 3, [Assignment("m", v1, v2, 25.0)])

        await follower.apply(PoolAssignments.of("default", 5, [Assignment("m", v2)]))
        assert models.versions("m") == ["2"] and follower.failures() == {} and follower.generation == 5
        assert cache.installed("m") == {2}
    finally:
        await models.close()

    # A restart restores the last applied assignments from the cache alone.
    restarted, models = new_follower(cache)
    try:
        await restarted.restore()
        assert models.versions("m") == ["2"] and models.routing("m") == ("2", "", 0.0)
        assert restarted.generation == 5
    finally:
        await models.close()


async def test_failed_canary_leaves_the_primary_serving_everything(
    cache: ArtifactCache, classifier: TrainedModel
) -> None:
    v1 = await cached(cache, classifier.onnx, 1)
    broken = await cached(cache, BROKEN, 2)
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", v1, broken, 50.0)]))
        assert models.versions("m") == ["1"] and models.routing("m") == ("1", "", 0.0)
        assert "canary version 2" in follower.failures()["m"]
        assert all(models.get("m").spec.version == "1" for _ in range(50))
    finally:
        await models.close()


async def test_missing_artifact_without_control_plane_is_a_reported_failure(cache: ArtifactCache) -> None:
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", ArtifactRef(1, "0" * 64, 10))]))
        assert models.versions("m") == []
        assert [(r.model, r.version, r.state) for r in follower.reports()] == [("m", 1, "UNAVAILABLE")]
    finally:
        await models.close()


async def test_canary_equal_to_the_primary_is_no_canary(cache: ArtifactCache, classifier: TrainedModel) -> None:
    # Promotion: a 10% canary of version 2, then the alias moves to 2 while the canary is still 2.
    v1 = await cached(cache, classifier.onnx, 1)
    v2 = await cached(cache, identity_model("FP32"), 2)
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", v1, v2, 10.0)]))
        assert models.routing("m") == ("1", "2", 10.0)
        await follower.apply(PoolAssignments.of("default", 2, [Assignment("m", v2, v2, 10.0)]))
        assert models.routing("m") == ("2", "", 0.0) and models.versions("m") == ["2"]
        assert follower.failures() == {} and follower.generation == 2
        assert all(models.get("m").spec.version == "2" for _ in range(50))
    finally:
        await models.close()


async def test_restore_reports_a_missing_version_and_the_next_apply_repairs_it(
    cache: ArtifactCache, classifier: TrainedModel
) -> None:
    v1 = await cached(cache, classifier.onnx, 1)
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", v1)]))
        assert models.versions("m") == ["1"]
    finally:
        await models.close()
    # Lost while the server was down (a disk cleaned up by hand): the saved state still says version 1 is applied.
    shutil.rmtree(cache.repository / "m")
    cache.artifact(v1).unlink()

    restarted, models = new_follower(cache)
    try:
        await restarted.restore()
        assert models.versions("m") == [] and set(restarted.failures()) == {"m"}
        assert [(r.model, r.version, r.state) for r in restarted.reports()] == [("m", 1, "UNAVAILABLE")]
        # The control plane, once back, sends the same assignments: they are applied again, not skipped.
        await cached(cache, classifier.onnx, 1)
        await restarted.apply(PoolAssignments.of("default", 1, [Assignment("m", v1)]))
        assert models.versions("m") == ["1"] and restarted.failures() == {}
    finally:
        await models.close()


async def test_the_assignments_unseen_categories_option_configures_its_versions_and_survives_a_restart(
    cache: ArtifactCache, classifier: TrainedModel
) -> None:
    v1 = await cached(cache, classifier.onnx, 1)
    follower, models = new_follower(cache)
    try:
        await follower.apply(PoolAssignments.of("default", 1, [Assignment("m", v1, unseen_categories="refuse")]))
        assert models.get("m").spec.config.unseen_categories == "refuse"
        # Only the option changes: the version serving is reloaded with it.
        await follower.apply(PoolAssignments.of("default", 2, [Assignment("m", v1)]))
        assert models.get("m").spec.config.unseen_categories == "score"
        assert not cache.config_file("m").exists()
        await follower.apply(PoolAssignments.of("default", 3, [Assignment("m", v1, unseen_categories="refuse")]))
        assert models.get("m").spec.config.unseen_categories == "refuse" and follower.failures() == {}
    finally:
        await models.close()

    restarted, models = new_follower(cache)
    try:
        await restarted.restore()
        assert models.get("m").spec.config.unseen_categories == "refuse" and restarted.generation == 3
    finally:
        await models.close()
