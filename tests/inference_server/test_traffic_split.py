"""Routing of requests that name no version: the assigned primary beats a higher loaded version, a canary takes its
share (visible in the per-version statistics), and a request naming a version gets exactly that version."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from contract.errors import ConduitError, ErrorCode
from inference_server.models import ModelManager
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.stats import ModelStats
from tests.conftest import TrainedModel, identity_model
from tests.inference_server.conftest import Connect, StartServer
from trainers.onnx_export import write_model_version

REQUESTS = 2000
CANARY_PERCENT = 30.0
# Binomial(2000, 0.3) has a standard deviation of about 20.5: five of them keep this test from flaking.
TOLERANCE = 103


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    repo = tmp_path / "models"
    for version in (1, 2, 3):
        write_model_version(repo, "m", version, identity_model("FP32"))
    return repo


def _manager(repository: Path, draw: float = 0.5) -> ModelManager:
    return ModelManager(
        repository, stats_factory=lambda _name, _version: ModelStats(), clock=time.perf_counter_ns, draw=lambda: draw
    )


async def test_primary_wins_over_a_higher_version(two_versions: Path) -> None:
    models = _manager(two_versions)
    await models.load_all()
    try:
        assert models.get("m").spec.version == "3"
        models.set_routing("m", "1")
        assert models.get("m").spec.version == "1"
        assert models.get("m", "3").spec.version == "3"  # an explicit version is not rerouted
        models.clear_routing("m")
        assert models.get("m").spec.version == "3"
    finally:
        await models.close()


async def test_canary_draw_and_fallbacks(two_versions: Path) -> None:
    below, above = _manager(two_versions, draw=0.29), _manager(two_versions, draw=0.3)
    for models in (below, above):
        await models.load_all()
        models.set_routing("m", "1", "2", CANARY_PERCENT)
    try:
        assert below.get("m").spec.version == "2"
        assert above.get("m").spec.version == "1"
        # A routed primary that is not loaded falls back to the newest ready version rather than failing requests.
        below.set_routing("m", "9")
        assert below.get("m").spec.version == "3"
        with pytest.raises(ConduitError) as raised:
            below.set_routing("m", "1", "2", 101.0)
        assert raised.value.code is ErrorCode.INVALID_ARGUMENT
        # Unloading forgets the routing: a model loaded again starts from its newest version.
        await above.unload("m")
        await above.load("m")
        assert above.get("m").spec.version == "3"
    finally:
        await below.close()
        await above.close()


async def test_canary_share_shows_in_statistics(
    start_server: StartServer, connect: Connect, tmp_path: Path, classifier: TrainedModel
) -> None:
    repo = tmp_path / "split"
    for version in (1, 2):
        write_model_version(repo, "clf", version, classifier.onnx)
    server, port, _ = await start_server(repo)
    server.models.set_routing("clf", "1", "2", CANARY_PERCENT)
    stub = connect(port)
    row = classifier.rows[:1]

    async def one() -> str:
        request = pb.ModelInferRequest(model_name="clf")
        request.inputs.add(name="input", datatype="FP32", shape=row.shape)
        request.raw_input_contents.append(row.tobytes())
        return (await stub.ModelInfer(request)).model_version

    answered: list[str] = []
    for _ in range(REQUESTS // 100):
        answered += await asyncio.gather(*(one() for _ in range(100)))
    statistics = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="clf"))
    counts = {s.version: s.inference_count for s in statistics.model_stats}
    assert counts["1"] + counts["2"] == REQUESTS
    assert abs(counts["2"] - REQUESTS * CANARY_PERCENT / 100) < TOLERANCE, counts
    assert counts == {v: answered.count(v) for v in ("1", "2")}
