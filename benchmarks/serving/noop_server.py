"""An Open Inference Protocol server that does nothing: the load client's own ceiling is measured against it.

ModelMetadata describes one model, ``noop``, with a ``[-1, 32]`` FP32 input; ModelInfer answers every request with the
same pre-serialized response, without decoding the request. ServerReady answers ready. Nothing else is served.

Usage: python benchmarks/serving/noop_server.py [--host 127.0.0.1] [--port 8001]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from inference_server.protocol import grpc_service_pb2 as pb

_SERVICE = "inference.GRPCInferenceService"


def _handlers() -> grpc.GenericRpcHandler:
    metadata = pb.ModelMetadataResponse(
        name="noop",
        versions=["1"],
        platform="noop",
        inputs=[pb.ModelMetadataResponse.TensorMetadata(name="input", datatype="FP32", shape=[-1, 32])],
        outputs=[pb.ModelMetadataResponse.TensorMetadata(name="output", datatype="FP32", shape=[-1, 1])],
    )
    answer = pb.ModelInferResponse(model_name="noop", model_version="1")
    answer.outputs.add(name="output", datatype="FP32", shape=[1, 1])
    answer.raw_output_contents.append(b"\x00\x00\x80\x3f")
    infer_bytes = answer.SerializeToString()

    async def infer(request: bytes, context: Any) -> bytes:
        return infer_bytes

    async def model_metadata(request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        return metadata

    async def server_ready(request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    return grpc.method_handlers_generic_handler(
        _SERVICE,
        {
            # No (de)serializers: bytes in, bytes out.
            "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
            "ModelMetadata": grpc.unary_unary_rpc_method_handler(
                model_metadata,
                request_deserializer=pb.ModelMetadataRequest.FromString,
                response_serializer=pb.ModelMetadataResponse.SerializeToString,
            ),
            "ServerReady": grpc.unary_unary_rpc_method_handler(
                server_ready,
                request_deserializer=pb.ServerReadyRequest.FromString,
                response_serializer=pb.ServerReadyResponse.SerializeToString,
            ),
        },
    )


async def serve(host: str, port: int) -> None:
    """Serve until cancelled."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handlers(),))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"no-op server on {host}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
