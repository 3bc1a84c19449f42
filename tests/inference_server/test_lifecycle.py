"""Model lifecycle through the gRPC API: hot swap under load, polling, failed loads and their cleanup, unload and load,
loads whose caller gives up, and repository directories with odd names."""

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
# "late" runs about this long, and its loader gives up after LATE_DEADLINE_S, well before its warm-up ends.
LATE_RUN_S = 0.15
LATE_DEADLINE_S = 0.2


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


async def index_names(stub: Stub) -> set[str]:
    return {m.name for m in (await stub.RepositoryIndex(pb.RepositoryIndexRequest())).models}


async def has_entry(stub: Stub, name: str) -> bool:
    return name in await index_names(stub)


async def infer_code(stub: Stub, model: str) -> grpc.StatusCode:
    """The status of one FP32 ``[1, 3]`` request to ``model``."""
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.zeros((1, 3), dtype=np.float32).tobytes())
    try:
        await stub.ModelInfer(request)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


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
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # an explicit load that did not take says so
        await load(stub, "swap")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

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
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await load(stub, "swap")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

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


async def test_a_load_whose_caller_gave_up_still_ends_ready(
    server, stub: Stub, repository: Path, slow_identity
) -> None:
    # Warm-up runs the graph six times, so this load takes about a second: far past the caller's deadline.
    write_model_version(repository, "late", 1, slow_identity(LATE_RUN_S), {"max_batch_size": 1})
    with pytest.raises(grpc.aio.AioRpcError) as gave_up:
        await stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="late"), timeout=LATE_DEADLINE_S)
    assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    # No further call: the load that was under way finishes on its own.
    await eventually(lambda: is_ready(stub, "late", "1"), "the abandoned load finishing")
    entry = await index_entry(stub, "late", "1")
    assert (entry.state, entry.reason) == ("READY", "")
    request = pb.ModelInferRequest(model_name="late")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.array([[1, 2, 3]], dtype=np.float32).tobytes())
    response = await stub.ModelInfer(request)
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[0], dtype=np.float32), [1, 2, 3])
    # Nothing of the abandoned load is left holding the model: the next load goes through.
    await asyncio.wait_for(load(stub, "late"), POLL_BOUND)


@pytest.mark.parametrize("config", ["{not json", '{"max_batch_size": -1}', '{"no_such_setting": 1}'])
async def test_bad_config_over_a_serving_model_keeps_it_serving_and_says_why(
    server, stub: Stub, repository: Path, models: Models, config: str
) -> None:
    (repository / "swap" / "config.json").write_text(config)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await load(stub, "swap")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    _, answer = await probabilities(stub, "swap", models.probe)
    assert models.answered_by(answer) is models.linear
    assert await is_ready(stub, "swap", "1")
    entry = await index_entry(stub, "swap", "1")
    assert entry.state == "READY"
    assert entry.reason

    # A valid config.json is taken by the next load, and the reason goes away.
    (repository / "swap" / "config.json").write_text('{"max_queue_size": 100}')
    await load(stub, "swap")
    entry = await index_entry(stub, "swap", "1")
    assert (entry.state, entry.reason) == ("READY", "")


async def test_a_failed_model_removed_from_disk_leaves_the_index_when_polled(
    start_server, repository: Path, connect
) -> None:
    write_model_version(repository, "broken", 1, b"not a model at all")
    _, port, _ = await start_server(repository, poll_interval=POLL)
    stub = connect(port)
    assert (await index_entry(stub, "broken", "1")).state == "UNAVAILABLE"
    assert await infer_code(stub, "broken") == grpc.StatusCode.UNAVAILABLE

    shutil.rmtree(repository / "broken")
    await eventually(lambda: is_not(has_entry(stub, "broken")), "the removed model leaving the index")
    assert await infer_code(stub, "broken") == grpc.StatusCode.NOT_FOUND
    assert await is_ready(stub, "swap")  # the poll left the other models alone


async def test_a_failed_model_removed_from_disk_is_not_found_by_the_next_load(
    server, stub: Stub, repository: Path
) -> None:
    write_model_version(repository, "broken", 1, b"not a model at all")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await load(stub, "broken")
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await index_entry(stub, "broken", "1")).state == "UNAVAILABLE"

    shutil.rmtree(repository / "broken")
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await load(stub, "broken")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert "broken" not in await index_names(stub)
    assert await infer_code(stub, "broken") == grpc.StatusCode.NOT_FOUND


async def test_directory_names_that_are_not_ascii_numbers_do_not_stop_the_server(
    start_server, repository: Path, connect, models: Models
) -> None:
    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    # "²" and "1²" are digits to str.isdigit() but not numbers int() can read.
    for odd in ("²", "1²"):
        (repository / "identity_fp32" / odd).mkdir()
        (repository / "identity_fp32" / odd / "model.onnx").write_bytes(identity)
    write_model_version(repository, "²x", 1, identity)
    (repository / "²x" / "²").mkdir()
    (repository / "²x" / "²" / "model.onnx").write_bytes(identity)

    _, port, _ = await start_server(repository, poll_interval=POLL)
    stub = connect(port)
    assert await infer_code(stub, "identity_fp32") == grpc.StatusCode.OK
    _, answer = await probabilities(stub, "swap", models.probe)
    assert models.answered_by(answer) is models.linear
    metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="identity_fp32"))
    assert list(metadata.versions) == ["1"]
    assert {"identity_fp32", "swap", "classifier"} <= await index_names(stub)
    await load(stub, "identity_fp32")
    # The repository poller survives the odd names too: it still picks up a new model.
    write_model_version(repository, "after", 1, identity)
    await eventually(lambda: is_ready(stub, "after"), "the poller loading a new model")


async def test_putting_back_the_serving_files_clears_the_failure_reason(
    server, stub: Stub, repository: Path, models: Models
) -> None:
    (repository / "swap" / "config.json").write_text("{not json")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await load(stub, "swap")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The files on disk are again exactly the ones serving: the load succeeds, so the index has nothing to explain.
    (repository / "swap" / "config.json").unlink()
    await load(stub, "swap")
    entry = await index_entry(stub, "swap", "1")
    assert (entry.state, entry.reason) == ("READY", "")
