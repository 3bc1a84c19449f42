"""The smallest honest Open Inference Protocol gRPC server: the floor that ``conduit serve`` is measured against.

It answers exactly what perf_analyzer needs (ServerMetadata, ModelMetadata, ModelConfig, ModelInfer; ServerLive and
ServerReady for the benchmark's readiness probe) and nothing else: no batching, no validation, no statistics, no
metrics. Each ModelInfer decodes raw FP32 bytes with ``np.frombuffer``, makes one onnxruntime call on the event loop
thread, and answers raw bytes. ModelStatistics stays UNIMPLEMENTED on purpose: perf_analyzer checks that statistics
name the requested version, and a half answer would be worse than none.

Usage: python benchmarks/serving/minimal_server.py --model-repository DIR [--host 127.0.0.1] [--port 8001]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.protocol import model_config_pb2 as mc

# onnxruntime type -> (protocol datatype, numpy dtype). The benchmark models only use these two.
ORT_TYPES: dict[str, tuple[str, type[np.generic]]] = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(int64)": ("INT64", np.int64),
}
NUMPY_TO_DATATYPE = {np.dtype(dtype): datatype for datatype, dtype in ORT_TYPES.values()}

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Tensor:
    """One graph input or output, as announced to clients."""

    name: str
    datatype: str
    dtype: type[np.generic]
    shape: list[int]
    """Full shape, batch dimension first (-1 where dynamic)."""


@dataclass(frozen=True)
class Model:
    """One loaded model version."""

    name: str
    version: str
    max_batch_size: int
    session: ort.InferenceSession
    inputs: list[Tensor]
    outputs: list[Tensor]
    input_dtypes: dict[str, type[np.generic]]
    """Numpy dtype of each input, by name (looked up per request, so built once)."""


def _tensor(arg: ort.NodeArg) -> Tensor:
    datatype, dtype = ORT_TYPES[arg.type]
    return Tensor(arg.name, datatype, dtype, [d if isinstance(d, int) else -1 for d in arg.shape])


def load_repository(repository: Path) -> dict[str, Model]:
    """Load ``DIR/<model>/<highest version>/model.onnx`` for every model, with ``config.json``'s max_batch_size."""
    options = ort.SessionOptions()
    # Same threading as Conduit's default model config, so the comparison is about the server, not onnxruntime.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    models: dict[str, Model] = {}
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir()):
        versions = sorted((int(p.name) for p in model_dir.iterdir() if p.name.isdigit()), reverse=True)
        if not versions:
            continue
        config_path = model_dir / "config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        session = ort.InferenceSession(
            str(model_dir / str(versions[0]) / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        inputs = [_tensor(a) for a in session.get_inputs()]
        models[model_dir.name] = Model(
            name=model_dir.name,
            version=str(versions[0]),
            max_batch_size=int(config.get("max_batch_size", 64)),
            session=session,
            inputs=inputs,
            outputs=[_tensor(a) for a in session.get_outputs()],
            input_dtypes={t.name: t.dtype for t in inputs},
        )
    return models


class MinimalServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Just enough of GRPCInferenceService for perf_analyzer."""

    def __init__(self, models: dict[str, Model]) -> None:
        self._models = models

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="minimal", version="0", extensions=[])

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        model = await self._model(request.name, context)
        meta = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=model.name,
            versions=[model.version],
            platform="onnxruntime_onnx",
            inputs=[meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in model.inputs],
            outputs=[meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in model.outputs],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> pb.ModelConfigResponse:
        model = await self._model(request.name, context)
        # Triton's config states shapes without the batch dimension when max_batch_size > 0.
        config = mc.ModelConfig(
            name=model.name,
            platform="onnxruntime_onnx",
            max_batch_size=model.max_batch_size,
            input=[mc.ModelInput(name=t.name, data_type=_config_type(t), dims=t.shape[1:]) for t in model.inputs],
            output=[mc.ModelOutput(name=t.name, data_type=_config_type(t), dims=t.shape[1:]) for t in model.outputs],
        )
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        model = await self._model(request.model_name, context)
        # Dtype from the graph, shape from the request, nothing checked: validation is a server's cost, not the floor's.
        feeds = {
            tensor.name: np.frombuffer(raw, dtype=model.input_dtypes[tensor.name]).reshape(tuple(tensor.shape))
            for tensor, raw in zip(request.inputs, request.raw_input_contents, strict=True)
        }
        # Deliberately on the event loop thread: no executor hop, no batching. This is the floor.
        results = model.session.run(None, feeds)
        response = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id)
        for tensor, value in zip(model.outputs, results, strict=True):
            response.outputs.add(name=tensor.name, datatype=NUMPY_TO_DATATYPE[value.dtype], shape=value.shape)
            response.raw_output_contents.append(value.tobytes())
        return response

    async def _model(self, name: str, context: Context) -> Model:
        model = self._models.get(name)
        if model is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {name!r}")
        assert model is not None  # abort raises; this tells the type checker
        return model


def _config_type(tensor: Tensor) -> str:
    # Protobuf takes enum labels by name; Triton's config names FP32 as TYPE_FP32.
    return f"TYPE_{tensor.datatype}"


async def serve(repository: Path, host: str, port: int) -> None:
    """Load the repository, then serve until cancelled."""
    models = load_repository(repository)
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(MinimalServicer(models), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"minimal server: {', '.join(models)} on {host}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repository", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    asyncio.run(serve(args.model_repository, args.host, args.port))


if __name__ == "__main__":
    main()
