"""Loading and unloading a model hundreds of times holds no memory (after Triton's L0_memory_growth).

The model cycled is a real one, a scikit-learn random forest exported to ONNX, loaded through RepositoryModelLoad on a
server with explicit model control, and answering a request after every load. The negative control keeps every
model it loads, and must show growth: the harness sees memory that is retained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.conftest import TrainedModel
from tests.inference_server.conftest import Connect
from trainers.onnx_export import write_model_version

from .conftest import CALL_TIMEOUT_S, StartMeasured

Stub = pb_grpc.GRPCInferenceServiceStub

# Cycles run before the baseline: the first loads grow the allocator's pools and onnxruntime's per-process state once.
WARMUP_CYCLES = 20
# Cycles measured: unload, load, answer one request.
CYCLES = 300
# Growth allowed over CYCLES cycles. Measured: 0.4 to 1.5 MiB over 300 cycles, and flat (within 1 MiB) over 3,000:
# allocator noise. A loaded forest holds about 0.5 MiB, so cycles that kept the model they unload would grow by
# 150 MiB; 4 MiB catches any leak of 14 KiB a cycle or more (a session's options, a batcher, its statistics).
CYCLE_GROWTH_MIB = 4.0
# Models the negative control loads and keeps, and the growth they must show: three times the bound of the cycles,
# so that the harness tells retained memory apart from noise. Measured: about 0.5 MiB a kept model, 29 MiB for 60.
KEPT_MODELS = 60
KEPT_MIN_GROWTH_MIB = 3 * CYCLE_GROWTH_MIB


@pytest.fixture
def forest_repository(tmp_path: Path, forest: TrainedModel) -> Path:
    repo = tmp_path / "models"
    write_model_version(repo, "forest", 1, forest.onnx, {"max_batch_size": 64})
    return repo


def rows_request(model: str, rows: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="input", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.tobytes())
    return request


async def load(stub: Stub, model: str) -> None:
    await stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=model), timeout=CALL_TIMEOUT_S)


async def cycle(stub: Stub, model: str, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """Unload ``model``, load it again, and answer ``request`` with the freshly loaded version."""
    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=model), timeout=CALL_TIMEOUT_S)
    await load(stub, model)
    return await stub.ModelInfer(request, timeout=CALL_TIMEOUT_S)


async def test_load_unload_cycles_hold_no_memory(
    start_measured: StartMeasured, connect: Connect, forest_repository: Path, forest: TrainedModel
) -> None:
    server = start_measured(forest_repository, "--model-control", "explicit")
    stub = connect(server.port)
    request = rows_request("forest", forest.rows[:4])
    expected = (await stub.ModelInfer(request, timeout=CALL_TIMEOUT_S)).raw_output_contents

    # The cycles really unload: in between, the model is not served.
    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="forest"), timeout=CALL_TIMEOUT_S)
    assert not (await stub.ModelReady(pb.ModelReadyRequest(name="forest"), timeout=CALL_TIMEOUT_S)).ready
    await load(stub, "forest")

    for _ in range(WARMUP_CYCLES):
        await cycle(stub, "forest", request)
    baseline = await server.memory.settled()
    for _ in range(CYCLES):
        answer = await cycle(stub, "forest", request)
        assert answer.raw_output_contents == expected
    growth = await server.memory.settled() - baseline

    assert growth <= CYCLE_GROWTH_MIB, f"{CYCLES} load/unload cycles grew the server by {growth:.1f} MiB"


async def test_models_kept_loaded_show_as_growth(
    start_measured: StartMeasured, connect: Connect, forest_repository: Path, forest: TrainedModel
) -> None:
    """Negative control: the same harness, loading models and never unloading them, measures them."""
    server = start_measured(forest_repository, "--model-control", "explicit")
    stub = connect(server.port)
    for _ in range(WARMUP_CYCLES):
        await cycle(stub, "forest", rows_request("forest", forest.rows[:4]))
    for i in range(KEPT_MODELS):
        write_model_version(forest_repository, f"kept_{i}", 1, forest.onnx, {"max_batch_size": 64})
    baseline = await server.memory.settled()
    for i in range(KEPT_MODELS):
        await load(stub, f"kept_{i}")
        await stub.ModelInfer(rows_request(f"kept_{i}", forest.rows[:4]), timeout=CALL_TIMEOUT_S)
    growth = await server.memory.settled() - baseline

    assert growth >= KEPT_MIN_GROWTH_MIB, f"{KEPT_MODELS} models kept loaded grew the server by only {growth:.1f} MiB"
