"""The GRPCInferenceService servicer: convert, call the data plane, convert back. Nothing else."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from contract.errors import ConduitError
from contract.status import details_of, status_of
from inference_server.dataplane import DataPlane
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.transport import converters
from inference_server.transport._sizes import request_bytes, response_bytes

__all__ = ["INTERNAL_MESSAGE", "STREAM_READ_AHEAD", "InferenceServicer", "stream_error"]

log = logging.getLogger(__name__)

# Requests of one stream read ahead of their answers, at most; past it, reading pauses and gRPC flow control pushes
# back. The bytes they and their unsent answers hold are bounded by the stream's window.
STREAM_READ_AHEAD = 1024
STREAM_WINDOW_BYTES = 16 * 1024 * 1024
INTERNAL_MESSAGE = "internal error; the server log has the details"

Context = grpc.aio.ServicerContext[Any, Any]


_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


async def _abort(context: Context, exc: Exception) -> None:
    """Answer a failed call: a ConduitError with its own status, anything else as INTERNAL with no traceback."""
    if isinstance(exc, ConduitError):
        await context.abort(status_of(exc.code), details_of(exc.message))
    log.error("unexpected error in %s", type(exc).__name__, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def guarded(
    call: Callable[[_Servicer, _Request, Context], Awaitable[_Response]],
) -> Callable[[_Servicer, _Request, Context], Awaitable[_Response]]:
    """Answer any failure of the unary RPC ``call`` as ``_abort`` does: its own status, or INTERNAL, logged.

    A decorator rather than a context manager: ModelInfer is the hot path, and one coroutine frame is all it adds.
    """

    @functools.wraps(call)
    async def guarded_call(servicer: _Servicer, request: _Request, context: Context) -> _Response:
        try:
            return await call(servicer, request, context)
        except grpc.aio.AbortError:
            raise  # already answered
        except Exception as exc:
            await _abort(context, exc)
            raise  # unreachable: abort raises

    return guarded_call


async def _write(context: Context, response: pb.ModelStreamInferResponse) -> None:
    """Write one answer of a stream; a stream whose client went away ends as cancelled, logged by nobody."""
    try:
        await context.write(response)
    except grpc.aio.InternalError:
        # The transport refuses a write only once the call is over: the client cancelled or went away while the answer
        # waited for room. gRPC learns of the cancellation separately, and when the refused write reaches it first it
        # logs the client's departure as a server error, traceback and all. It is the cancellation, and ends as one.
        raise asyncio.CancelledError from None


class _Window:
    """What one stream holds: requests read and not answered, answers not yet written, in number and in bytes."""

    def __init__(self, max_bytes: int, max_requests: int) -> None:
        self._max_bytes = max_bytes
        self._max_requests = max_requests
        self._bytes = 0
        self._requests = 0
        self._room = asyncio.Event()

    def _full(self) -> bool:
        return self._bytes > self._max_bytes or self._requests >= self._max_requests

    def add(self, size: int) -> None:
        """A request of ``size`` bytes was read."""
        self._bytes += size
        self._requests += 1

    def add_bytes(self, size: int) -> None:
        """An answer of ``size`` bytes was computed."""
        self._bytes += size

    def remove(self, size: int) -> None:
        """A request and its answer, ``size`` bytes together, are done with."""
        self._bytes -= size
        self._requests -= 1
        if not self._full():
            self._room.set()

    async def room(self) -> None:
        """Wait until the window has room for one more request (one request always fits in an empty window)."""
        while self._full():
            self._room.clear()
            await self._room.wait()


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Open Inference Protocol over gRPC, with Triton's extensions.

    Every unary RPC is ``guarded``; a stream answers a failed request in the stream and aborts only when reading fails.
    """

    def __init__(self, dataplane: DataPlane, *, stream_window_bytes: int = STREAM_WINDOW_BYTES) -> None:
        self._dataplane = dataplane
        self._stream_window_bytes = stream_window_bytes

    @guarded
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._dataplane.live())

    @guarded
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    @guarded
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._dataplane.model_ready(request.name, request.version))

    @guarded
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        meta = self._dataplane.server_metadata()
        return pb.ServerMetadataResponse(name=meta.name, version=meta.version, extensions=meta.extensions)

    @guarded
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        meta = self._dataplane.model_metadata(request.name, request.version)
        return converters.model_metadata(meta.spec, meta.versions)

    @guarded
    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> pb.ModelConfigResponse:
        meta = self._dataplane.model_metadata(request.name, request.version)
        return converters.model_config(meta.spec)

    @guarded
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest, context: Context) -> pb.ModelStatisticsResponse:
        entries = self._dataplane.model_statistics(request.name, request.version)
        return converters.model_statistics(entries)

    @guarded
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Context) -> pb.RepositoryIndexResponse:
        entries = self._dataplane.repository_index(request.ready)
        return converters.repository_index(entries)

    @guarded
    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        await self._dataplane.load_model(request.model_name)
        return pb.RepositoryModelLoadResponse()

    @guarded
    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        await self._dataplane.unload_model(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    @guarded
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        decoded = converters.decode_infer_request(request, context.time_remaining())
        response = await self._dataplane.infer(decoded)
        return converters.encode_infer_response(response)

    # gRPC's writer form rather than an async generator: a write the transport refuses is then the servicer's to
    # handle (see _write), not gRPC's, which logs it with a traceback.
    async def ModelStreamInfer(  # type: ignore[override]
        self, request_iterator: AsyncIterable[pb.ModelInferRequest], context: Context
    ) -> None:
        """Requests of a stream run concurrently (so they batch together) and are answered in order.

        A failed request is answered with ``error_message`` and the stream goes on. What the stream holds (requests
        read ahead, answers the client has not read yet) stays within its window: past it, reading pauses and gRPC
        flow control pushes back on the client.
        """
        pending: collections.deque[tuple[asyncio.Task[pb.ModelStreamInferResponse], int]] = collections.deque()
        window = _Window(self._stream_window_bytes, STREAM_READ_AHEAD)
        progress = asyncio.Event()  # a request was read, or reading ended
        reading = True

        async def read() -> None:
            nonlocal reading
            try:
                async for request in request_iterator:
                    size = request_bytes(request)
                    window.add(size)
                    pending.append((asyncio.ensure_future(self._stream_one(request, context, window)), size))
                    progress.set()
                    await window.room()
            finally:
                reading = False
                progress.set()

        reader = asyncio.ensure_future(read())
        try:
            while pending or reading:
                if not pending:
                    progress.clear()
                    await progress.wait()
                    continue
                task, size = pending[0]
                response = await task
                pending.popleft()
                await _write(context, response)
                # Written (to the transport's flow-controlled buffer): its bytes and its request's leave the window.
                window.remove(size + response_bytes(response.infer_response))
            if reader.done() and not reader.cancelled() and (failure := reader.exception()) is not None:
                await _abort(context, failure if isinstance(failure, Exception) else RuntimeError(str(failure)))
        finally:
            # The client went away or the stream failed: requests read but not answered must not go on computing.
            reader.cancel()
            for task, _ in pending:
                task.cancel()

    async def _stream_one(
        self, request: pb.ModelInferRequest, context: Context, window: _Window
    ) -> pb.ModelStreamInferResponse:
        try:
            decoded = converters.decode_infer_request(request, context.time_remaining())
            response = await self._dataplane.infer(decoded)
            encoded = converters.encode_infer_response(response)
            # Computed but maybe not read yet: the answer holds memory until it is written.
            window.add_bytes(response_bytes(encoded))
            return pb.ModelStreamInferResponse(infer_response=encoded)
        except Exception as exc:
            return stream_error(request, exc)


def stream_error(request: pb.ModelInferRequest, exc: Exception) -> pb.ModelStreamInferResponse:
    """The in-stream answer to a request of a stream that failed with ``exc``: the stream goes on."""
    if isinstance(exc, ConduitError):
        message = details_of(f"[{exc.code.name}] {exc.message}")
    else:
        log.error("unexpected error in a stream request", exc_info=exc)
        message = INTERNAL_MESSAGE
    # The id lets clients that pipeline requests match the error to the request it answers.
    failed = pb.ModelInferResponse(model_name=request.model_name, model_version=request.model_version, id=request.id)
    return pb.ModelStreamInferResponse(error_message=message, infer_response=failed)
