"""Caller authentication on the inference port: every method handler of every service registered through
``GuardedServer`` checks its call first, health and reflection included.

The check wraps each handler once, at registration, rather than running as a server interceptor: with an interceptor,
grpc.aio finds every call's handler through a chain of coroutines, which measured about 19 µs of server CPU a request
(11 % of the throughput of a logistic regression at concurrency 16); a wrapped handler costs one frame, one metadata
scan and one lookup.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from contract.errors import ConduitError
from contract.status import details_of, status_of
from inference_server.auth import Authorizer

__all__ = ["GuardedServer"]

if TYPE_CHECKING:  # generic in the type stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Context = grpc.aio.ServicerContext[Any, Any]


def _authorization(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":  # gRPC hands header names in lower case
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


def _guard(method: str, handler: Handler, authorizer: Authorizer) -> Handler:
    """``handler`` with the authorization check of ``method`` before its behaviour, of the same kind."""
    if handler.request_streaming and handler.response_streaming:
        behaviour, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behaviour, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behaviour, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behaviour, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    assert behaviour is not None
    inner: Callable[..., Any] = behaviour

    authorize = authorizer.authorize

    async def refuse(context: Context, error: ConduitError) -> None:
        await context.abort(status_of(error.code), details_of(error.message))

    if inspect.isasyncgenfunction(inner):

        async def guarded_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                authorize(method, _authorization(context))
            except ConduitError as error:
                await refuse(context, error)
            async for response in inner(request, context):
                yield response

        guarded: Callable[..., Any] = guarded_stream
    else:

        async def guarded_call(request: Any, context: Context) -> Any:
            # Inline, not a helper coroutine: this runs before every call.
            try:
                authorize(method, _authorization(context))
            except ConduitError as error:
                await refuse(context, error)
            return await inner(request, context)

        guarded = guarded_call
    wrapped: Handler = factory(
        guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )
    return wrapped


class _GuardedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, authorizer: Authorizer) -> None:
        self._inner = inner
        self._authorizer = authorizer
        self._guarded: dict[str, Handler | None] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method = handler_call_details.method
        if method not in self._guarded:
            found = self._inner.service(handler_call_details)
            # An unknown method stays UNIMPLEMENTED, as it is for everyone.
            self._guarded[method] = None if found is None else _guard(method, found, self._authorizer)
        return self._guarded[method]


class GuardedServer:
    """Stands for a ``grpc.aio.Server`` where services are added (``add_XServicer_to_server(servicer, this)``):
    each method handler is registered on the real server behind the check of ``authorizer``."""

    def __init__(self, server: grpc.aio.Server, authorizer: Authorizer) -> None:
        self._server = server
        self._authorizer = authorizer

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGenericHandler(h, self._authorizer) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Handler]) -> None:
        guarded = {name: _guard(f"/{service}/{name}", h, self._authorizer) for name, h in handlers.items()}
        self._server.add_registered_method_handlers(service, guarded)
