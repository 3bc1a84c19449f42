"""Caller authentication on the inference port: a server interceptor in front of every service it serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from contract.errors import ConduitError
from contract.status import details_of, status_of
from inference_server.auth import Authorizer

__all__ = ["AuthInterceptor"]

if TYPE_CHECKING:  # generic in the type stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses a call its ``authorization`` metadata does not allow, before any handler code runs: health, reflection
    and the inference service alike. Installed only when the server authenticates callers."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Handler | None:
        authorization = None
        for key, value in details.invocation_metadata or ():
            if key == "authorization":  # gRPC hands header names in lower case
                authorization = value if isinstance(value, str) else value.decode(errors="replace")
                break
        try:
            self._authorizer.authorize(details.method, authorization)
        except ConduitError as exc:
            handler = await continuation(details)
            # An unknown method stays UNIMPLEMENTED, as it is for everyone.
            return None if handler is None else _refusal(handler, exc)
        return await continuation(details)


def _refusal(handler: Handler, error: ConduitError) -> Handler:
    """A handler of ``handler``'s kind that answers ``error`` without reading the request."""
    code, message = status_of(error.code), details_of(error.message)

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        factory: Any = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        factory = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        factory = grpc.unary_stream_rpc_method_handler
    else:
        factory = grpc.unary_unary_rpc_method_handler
    refused: Handler = factory(
        refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )
    return refused
