"""Model lifecycle through the gRPC API: hot swap under load, polling, failed loads, unload and load."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import export_sklearn, write_model_version

Stub = pb_grpc.GRPCInferenceServiceStub
SWAPS = 20
LOAD_TASKS = 8
# Bound on waits for the repository poller (which runs every POLL seconds).
POLL = 0.05
POLL_BOUND = 15.0


def replace_model(repository: Path, name: str, version: int, payload: bytes) -> None:
    """Write ``model.onnx`` the way a deployment tool should: a temporary file, then an atomic rename."""
    target = repository / name / str(version) / "model.onnx"
    partial = target.with_name(".model.onnx.tmp")
    partial.write_bytes(payload)
    os.replace(partial, target)


async def probabilities(stub: Stub, model: str, row: np.ndarray, version: str = "") -> tuple[str, np.ndarray]:
    """The version that answered and the ``probabilities`` output of one row."""
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name="input", datatype="FP32", shape=row.shape)
    request.raw_input_contents.append(row.tobytes())
    request.outputs.add(name="probabilities")
    response = await stub.ModelInfer(request)
    return response.model_version, np.frombuffer(response.raw_output_contents[0], dtype=np.float32)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds: the repository poller's progress is not observable any other way."""
    deadline = time.monotonic() + POLL_BOUND
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen within {POLL_BOUND}s"
        await asyncio.sleep(POLL)


async def is_ready(stub: Stub, name: str, version: str = "") -> bool:
    return (await stub.ModelReady(pb.ModelReadyRequest(name=name, version=version))).ready


async def is_not(value: Awaitable[bool]) -> bool:
    return not await value


async def index_entry(stub: Stub, name: str, version: str) -> pb.RepositoryIndexResponse.ModelIndex:
    index = await stub.RepositoryIndex(pb.RepositoryIndexRequest())
    (entry,) = [m for m in index.models if (m.name, m.version) == (name, version)]
    return entry


async def load(stub: Stub, name: str) -> None:
    await stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name))


class Models:
    """Two different trained models over the same 32 features, and a row they answer differently."""

    def __init__(self, classifier) -> None:
        rows = classifier.rows
        self.rows = rows
        self.linear = classifier.onnx
        tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(rows, classifier.estimator.predict(rows))
        self.tree = export_sklearn(tree, rows[:100])
        self.probe = rows[:1]
        self.expected = {
            self.linear: classifier.estimator.predict_proba(self.probe)[0].astype(np.float32),
            self.tree: tree.predict_proba(self.probe)[0].astype(np.float32),
        }
        assert len(self.linear) != len(self.tree), "the swap needs files whose fingerprints differ"
        assert np.abs(self.expected[self.linear] - self.expected[self.tree]).max() > 1e-3

    def answered_by(self, answer: np.ndarray) -> bytes:
        """Which of the two models gave ``answer``."""
        for payload, expected in self.expected.items():
            if np.allclose(answer, expected, atol=1e-5):
                return payload
        raise AssertionError(f"{answer} is neither model's answer")


@pytest.fixture(scope="module")
def models(classifier) -> Models:
    return Models(classifier)


@pytest.fixture
def repository(repository: Path, models: Models) -> Path:
    """Adds ``swap``: version 1 is the logistic regression."""
    write_model_version(repository, "swap", 1, models.linear)
    return repository


async def test_hot_swap_under_load_fails_no_request(server, stub: Stub, repository: Path, models: Models) -> None:
    answers: list[bytes] = []
    failures: list[BaseException] = []
    swapping = True

    async def keep_inferring() -> None:
        while swapping:
            try:
                _, answer = await probabilities(stub, "swap", models.probe)
                answers.append(models.answered_by(answer))
            except (grpc.aio.AioRpcError, AssertionError) as exc:
                failures.append(exc)

    workers = [asyncio.create_task(keep_inferring()) for _ in range(LOAD_TASKS)]
    try:
        current = models.linear
        for swap in range(SWAPS):
            current = models.tree if current is models.linear else models.linear
            replace_model(repository, "swap", 1, current)
            await load(stub, "swap")
            # Once the load call returned, new requests go to the new session.
            _, answer = await probabilities(stub, "swap", models.probe)
            assert models.answered_by(answer) is current, f"swap {swap}: still the old model's answer"
    finally:
        swapping = False
        await asyncio.gather(*workers)

    assert failures == []
    assert len(answers) > SWAPS
    assert {models.linear, models.tree} <= set(answers)
    assert await is_ready(stub, "swap", "1")
    # Statistics of the version survive its swaps: every request counted once, none failed.
    stats = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="swap", version="1"))).model_stats[0]
    assert stats.inference_stats.success.count == len(answers) + SWAPS
    assert stats.inference_stats.fail.count == 0


async def test_poller_picks_up_a_new_version_and_unloads_a_removed_one(
    start_server, repository: Path, connect, models: Models
) -> None:
    _, port, _ = await start_server(repository, poll_interval=POLL)
    stub = connect(port)
    version, answer = await probabilities(stub, "swap", models.probe)
    assert version == "1"
    assert models.answered_by(answer) is models.linear

    write_model_version(repository, "swap", 2, models.tree)
    await eventually(lambda: is_ready(stub, "swap", "2"), "loading version 2")
    version, answer = await probabilities(stub, "swap", models.probe)
    assert version == "2"
    assert models.answered_by(answer) is models.tree
    assert await is_ready(stub, "swap", "1")  # older versions keep serving when asked for by number
    metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="swap"))
    assert list(metadata.versions) == ["1", "2"]

    shutil.rmtree(repository / "swap" / "2")
    await eventually(lambda: is_not(is_ready(stub, "swap", "2")), "unloading version 2")
    version, answer = await probabilities(stub, "swap", models.probe)
    assert version == "1"
    assert models.answered_by(answer) is models.linear
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await probabilities(stub, "swap", models.probe, version="2")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_broken_file_over_a_serving_version_keeps_the_old_one(
    server, stub: Stub, repository: Path, models: Models
) -> None:
    replace_model(repository, "swap", 1, b"not a model at all")
    try:
        await load(stub, "swap")
    except grpc.aio.AioRpcError as refused:  # reporting the failed reload to its caller is allowed too
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION

    _, answer = await probabilities(stub, "swap", models.probe)
    assert models.answered_by(answer) is models.linear
    assert await is_ready(stub, "swap", "1")
    entry = await index_entry(stub, "swap", "1")
    assert entry.state == "READY"
    assert entry.reason

    # Fixed files are picked up by the next load, and the reason goes away.
    replace_model(repository, "swap", 1, models.tree)
    await load(stub, "swap")
    _, answer = await probabilities(stub, "swap", models.probe)
    assert models.answered_by(answer) is models.tree
    assert (await index_entry(stub, "swap", "1")).reason == ""


async def test_broken_new_version_leaves_the_previous_one_serving(
    server, stub: Stub, repository: Path, models: Models
) -> None:
    write_model_version(repository, "swap", 2, b"not a model at all")
    try:
        await load(stub, "swap")
    except grpc.aio.AioRpcError as refused:
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION

    version, answer = await probabilities(stub, "swap", models.probe)
    assert version == "1"
    assert models.answered_by(answer) is models.linear
    assert not await is_ready(stub, "swap", "2")
    entry = await index_entry(stub, "swap", "2")
    assert entry.state == "UNAVAILABLE"
    assert entry.reason
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await probabilities(stub, "swap", models.probe, version="2")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_unload_then_load(server, stub: Stub, models: Models) -> None:
    assert await is_ready(stub, "swap")

    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="swap"))
    assert not await is_ready(stub, "swap")
    assert not await is_ready(stub, "swap", "1")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await probabilities(stub, "swap", models.probe)
    assert refused.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
    index = await stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
    assert "swap" not in {m.name for m in index.models}
    assert "identity_fp32" in {m.name for m in index.models}  # the other models were left alone

    await load(stub, "swap")
    assert await is_ready(stub, "swap")
    assert await is_ready(stub, "swap", "1")
    _, answer = await probabilities(stub, "swap", models.probe)
    assert models.answered_by(answer) is models.linear
    assert (await index_entry(stub, "swap", "1")).state == "READY"


async def test_unload_answers_requests_already_queued(server, stub: Stub, repository: Path) -> None:
    reader = server.reader

    async def held_in_flight() -> bool:
        data = reader.get_metrics_data()
        return any(
            point.attributes.get("model") == "held" and point.value == 1
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "conduit.inference.in_flight"
            for point in metric.data.data_points
        )

    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    # Requests of "held" wait up to a minute for a batch of 8 rows: only the unload's drain can release this one.
    write_model_version(repository, "held", 1, identity, {"max_batch_size": 8, "max_queue_delay_us": 60_000_000})
    await load(stub, "held")
    request = pb.ModelInferRequest(model_name="held")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.array([[1, 2, 3]], dtype=np.float32).tobytes())
    queued = asyncio.ensure_future(stub.ModelInfer(request))
    await eventually(held_in_flight, "the request reaching the server")

    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="held"))
    response = await asyncio.wait_for(queued, 10)
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[0], dtype=np.float32), [1, 2, 3])
