"""The Python side of the native front: take the inference calls the compiled front queued, run them through the
data plane, answer. Like the servicer, it only converts, calls the data plane and converts back.

The front (``conduit_native``, Rust) terminates gRPC and TLS on its own threads and never takes the GIL: it queues
ModelInfer and ModelStreamInfer calls and makes a descriptor readable. The event loop wakes on it and takes every call
waiting at once, so the requests that arrived while Python was busy join the batchers together. Every other call goes
to the process's grpc.aio server, which the front reaches on a private Unix socket.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from types import ModuleType
from typing import TYPE_CHECKING

import grpc
from google.protobuf.message import DecodeError

from contract.errors import ConduitError, ErrorCode
from contract.status import details_of, status_of
from inference_server.auth import Authorizer
from inference_server.dataplane import DataPlane
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.transport import converters
from inference_server.transport.servicer import INTERNAL_MESSAGE, stream_error

__all__ = ["NativeTransport", "native_front"]

log = logging.getLogger(__name__)

_INFER = "/inference.GRPCInferenceService/ModelInfer"
_STREAM_INFER = "/inference.GRPCInferenceService/ModelStreamInfer"
_INTERNAL = grpc.StatusCode.INTERNAL.value[0]


if TYPE_CHECKING:
    from conduit_native import Call, Front


def native_front() -> ModuleType | None:
    """The ``conduit_native`` module, or ``None`` where it was not built."""
    try:
        import conduit_native
    except ImportError:
        return None
    return conduit_native


def _decode(data: bytes) -> pb.ModelInferRequest:
    try:
        return pb.ModelInferRequest.FromString(data)
    except DecodeError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the request is not a valid ModelInferRequest") from None


class NativeTransport:
    """Answers the calls of ``front`` (a ``conduit_native.Front``) through ``dataplane``, checking each caller with
    ``authorizer`` when callers are authenticated."""

    def __init__(self, front: Front, dataplane: DataPlane, authorizer: Authorizer | None) -> None:
        module = native_front()
        assert module is not None
        self._unary_kind, self._open_kind, self._cancel_kind = module.UNARY, module.OPEN, module.CANCEL
        self._front = front
        self._dataplane = dataplane
        self._authorizer = authorizer
        self._loop: asyncio.AbstractEventLoop | None = None
        # Tasks computing answers, by the id of their unary call or stream: cancelled when their caller goes away
        # (and held: the loop keeps only weak references to tasks).
        self._unary: dict[int, asyncio.Task[None]] = {}
        self._streams: dict[int, set[asyncio.Task[None]]] = {}

    def start(self) -> None:
        """Take calls on the running loop from now on."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._front.wake_fd(), self._take)

    def close(self) -> None:
        """Take no more calls (the front has stopped: none can arrive)."""
        if self._loop is not None:
            self._loop.remove_reader(self._front.wake_fd())
            self._loop = None

    def _take(self) -> None:
        loop = self._loop
        assert loop is not None
        unary, opened, cancelled = self._unary_kind, self._open_kind, self._cancel_kind
        calls = self._front.take()
        # Calls that arrived together batch together: none of them runs alone before the others are queued.
        burst = len(calls) > 1
        for call in calls:
            kind = call.kind
            if kind == opened:
                self._open(call)
                continue
            if kind == unary:
                self._unary[call.id] = loop.create_task(self._answer(call, burst))
            elif kind == cancelled:
                self._cancel(call.id)
            else:
                task = loop.create_task(self._message(call, burst))
                self._streams.setdefault(call.id, set()).add(task)
                task.add_done_callback(functools.partial(self._done, call.id))

    def _cancel(self, call_id: int) -> None:
        """Requests still queued leave their batchers, as with grpc.aio's cancelled handlers."""
        task = self._unary.pop(call_id, None)
        if task is not None:
            task.cancel()
        for task in self._streams.pop(call_id, ()):
            task.cancel()

    def _done(self, stream_id: int, task: asyncio.Task[None]) -> None:
        running = self._streams.get(stream_id)
        if running is not None:
            running.discard(task)
            if not running:
                del self._streams[stream_id]

    def _open(self, call: Call) -> None:
        """A stream opens: its caller is checked once, before any of its requests is read."""
        try:
            if self._authorizer is not None:
                self._authorizer.authorize(_STREAM_INFER, call.authorization)
        except ConduitError as exc:
            call.fail(status_of(exc.code).value[0], details_of(exc.message))
            return
        call.reply(b"")

    async def _answer(self, call: Call, burst: bool) -> None:
        """A unary ModelInfer."""
        try:
            if self._authorizer is not None:
                self._authorizer.authorize(_INFER, call.authorization)
            decoded = converters.decode_infer_request(_decode(call.data), call.timeout_s)
            response = await self._dataplane.infer(decoded, burst=burst)
            call.reply(converters.encode_infer_response(response).SerializeToString())
        except ConduitError as exc:
            call.fail(status_of(exc.code).value[0], details_of(exc.message))
        except Exception as exc:
            log.error("unexpected error in %s", type(exc).__name__, exc_info=exc)
            call.fail(_INTERNAL, INTERNAL_MESSAGE)
        finally:
            self._unary.pop(call.id, None)

    async def _message(self, call: Call, burst: bool) -> None:
        """One request of a stream: a failure is answered in the stream, which goes on."""
        try:
            request = _decode(call.data)
        except ConduitError as exc:
            call.reply(stream_error(pb.ModelInferRequest(), exc).SerializeToString())
            return
        try:
            decoded = converters.decode_infer_request(request, call.timeout_s)
            response = await self._dataplane.infer(decoded, burst=burst)
            answer = pb.ModelStreamInferResponse(infer_response=converters.encode_infer_response(response))
        except Exception as exc:
            answer = stream_error(request, exc)
        call.reply(answer.SerializeToString())
