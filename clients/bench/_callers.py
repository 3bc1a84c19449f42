"""The two ways a request travels: a unary ModelInfer call, or a message on a ModelStreamInfer stream.

A caller sends pre-serialized request bytes and returns None on success or the name of the gRPC status that failed
it. Responses are not decoded beyond what matching and error detection need: the client's cost per request stays
gRPC's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Protocol

import grpc

from clients.bench._inputs import with_id
from inference_server.protocol import grpc_service_pb2 as pb

__all__ = ["STREAM_ERROR", "Caller", "StreamCaller", "UnaryCaller"]

_INFER = "/inference.GRPCInferenceService/ModelInfer"
_STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
STREAM_ERROR = "STREAM_ERROR"
"""A stream response carrying an error message: Triton's stream sends no status code per request."""


class Caller(Protocol):
    """Sends one request; returns None on success, else the failing status name."""

    async def __call__(self, request: bytes) -> str | None: ...

    async def aclose(self) -> None: ...


class UnaryCaller:
    """One ModelInfer call per request, each with its own deadline."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float, metadata: tuple[tuple[str, str], ...]) -> None:
        # No serializers: the request goes out as the bytes given, the response comes back as bytes, undecoded.
        self._infer: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_INFER)
        self._timeout_s = timeout_s
        self._metadata = metadata or None

    async def __call__(self, request: bytes) -> str | None:
        try:
            await self._infer(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return None

    async def aclose(self) -> None:
        return None


class StreamCaller:
    """Requests written to one ModelStreamInfer stream, answers matched to them by request id.

    A request unanswered after ``timeout_s`` counts as DEADLINE_EXCEEDED. When the stream ends, every request still
    waiting fails with the stream's status and the next request opens a new stream.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float, metadata: tuple[tuple[str, str], ...]) -> None:
        self._open: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(_STREAM)
        self._timeout_s = timeout_s
        self._metadata = metadata or None
        self._call: grpc.aio.StreamStreamCall[bytes, bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[str | None]] = {}
        self._ids = itertools.count()
        self._write_lock = asyncio.Lock()

    async def __call__(self, request: bytes) -> str | None:
        request_id = str(next(self._ids))
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            async with self._write_lock:
                call = self._stream()
                await call.write(with_id(request, int(request_id)))
            return await asyncio.wait_for(answer, self._timeout_s)
        except TimeoutError:
            return "DEADLINE_EXCEEDED"
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except asyncio.InvalidStateError:
            # Writing to a stream the server has just ended; the reader is failing its requests.
            return await answer
        finally:
            self._waiting.pop(request_id, None)

    def _stream(self) -> grpc.aio.StreamStreamCall[bytes, bytes]:
        if self._call is None:
            self._call = self._open(metadata=self._metadata)
            self._reader = asyncio.get_running_loop().create_task(self._read(self._call))
        return self._call

    async def _read(self, call: grpc.aio.StreamStreamCall[bytes, bytes]) -> None:
        try:
            while (raw := await call.read()) is not grpc.aio.EOF:
                answer = pb.ModelStreamInferResponse.FromString(raw)  # type: ignore[arg-type]
                waiting = self._waiting.get(answer.infer_response.id)
                if waiting is not None and not waiting.done():
                    waiting.set_result(STREAM_ERROR if answer.error_message else None)
            code = await call.code()
            # Ending the stream with OK while requests wait for answers is still a failure for those requests.
            status = code.name if code != grpc.StatusCode.OK else "STREAM_ENDED"
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        if self._call is call:
            self._call = None
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_result(status)

    async def aclose(self) -> None:
        if self._call is not None:
            call, self._call = self._call, None
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await call.done_writing()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, self._timeout_s)
