"""A server following a real control plane fetches each assigned version's training data profile through its
lineage (GetVersion, then GetDataset) and sketches its traffic against it; without the profile it serves all the
same, without sketches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from clients import AsyncInferenceClient
from contract.entities import Lineage
from contract.metrics import PREDICTION, SKETCH_BIN
from tests.conftest import free_port
from tests.inference_server.conftest import ProfiledModel, StartServer
from tests.inference_server.follower.test_follower import (
    ADMIN_TOKEN,
    FOLLOW,
    POOL,
    ControlPlane,
    _run_control_plane,
    eventually,
)
from tests.inference_server.telemetry.test_sketches import sketch_points
from trainers import bundled
from trainers import datasets as ds

MODEL = "credit"


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async for plane in _run_control_plane(ControlPlane(tmp_path / "control-plane", free_port())):
        yield plane


async def register_with_lineage(plane: ControlPlane, model: ProfiledModel) -> int:
    """Import the credit data set, register the model as trained on it, deploy it to the pool."""
    frame = bundled.load("credit")
    path = plane.home.parent / "credit.parquet"
    ds.write_parquet(frame, path)
    dataset, _ = await plane.admin.import_dataset(
        "credit",
        path,
        version=ds.content_version(frame),
        profile=ds.profile(frame),
        source="bundled:credit",
        target="default",
    )
    lineage = Lineage(dataset=dataset.name, dataset_version=dataset.version)
    version = await plane.register(model.result.onnx, model=MODEL, lineage=lineage)
    await plane.admin.deploy(POOL, MODEL, version=version)
    return version


async def follow_and_send(
    start_server: StartServer, plane: ControlPlane, model: ProfiledModel, token: str, cache: Path
) -> dict[tuple[str, str], dict[str, int]]:
    viewer = await plane.viewer_token(f"caller-{token[-6:]}")
    server, port, reader = await start_server(
        None, control_plane=plane.address, token=token, cache_dir=cache, otlp_push=False, **FOLLOW
    )

    async def serving() -> bool:
        return server.models.versions(MODEL) == ["1"]

    await eventually(serving, "the assigned version serving")
    rows = model.result.test_inputs
    metadata = [("authorization", f"Bearer {viewer}")]
    async with AsyncInferenceClient(f"127.0.0.1:{port}", timeout=10.0, metadata=metadata) as client:
        for start in range(0, 48, 16):
            await client.infer(MODEL, {name: array[start : start + 16] for name, array in rows.items()})
    await server.stop()
    return sketch_points(reader, SKETCH_BIN) | {
        key: value for key, value in sketch_points(reader, "conduit.sketch.category").items()
    }


async def test_the_profile_comes_through_the_lineage_and_the_traffic_is_sketched(
    control_plane: ControlPlane, start_server: StartServer, credit: ProfiledModel, tmp_path: Path
) -> None:
    await register_with_lineage(control_plane, credit)
    # A token allowed to read versions and data sets, as the profile needs (see the report on server tokens).
    sketches = await follow_and_send(start_server, control_plane, credit, ADMIN_TOKEN, tmp_path / "cache")
    assert (tmp_path / "cache" / "repository" / MODEL / "1" / "profile.json").is_file()
    assert sum(sketches[(MODEL, "age")].values()) == 48
    assert sum(sketches[(MODEL, PREDICTION)].values()) == 48
    age = np.concatenate([credit.result.test_inputs["age"][:48]]).reshape(-1)
    assert sketches[(MODEL, "age")]["missing"] == int(np.isnan(age).sum())


async def test_without_the_profile_the_version_serves_unsketched(
    control_plane: ControlPlane, start_server: StartServer, credit: ProfiledModel, tmp_path: Path
) -> None:
    await register_with_lineage(control_plane, credit)
    # A server-role token: whether or not the control plane lets it read the lineage, the version serves.
    token = await control_plane.server_token("server-without-profiles")
    sketches = await follow_and_send(start_server, control_plane, credit, token, tmp_path / "cache")
    has_profile = (tmp_path / "cache" / "repository" / MODEL / "1" / "profile.json").is_file()
    assert bool(sketches) == has_profile
