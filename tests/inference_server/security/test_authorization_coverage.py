"""Every RPC the inference port serves has an explicit access decision, and the server answers each one as the
decision says, for a caller without a token and for a caller of every role (after MLflow's
``test_authorization_coverage``): a new RPC without a decision fails here."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message_factory
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from contract.entities import Role
from inference_server.auth import POLICY, Access, granted
from inference_server.protocol import grpc_service_pb2 as pb

from .conftest import ROLES, Secured, bearer

SERVICES = (
    pb.DESCRIPTOR.services_by_name["GRPCInferenceService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)
METHODS = {f"/{service.full_name}/{method.name}": method for service in SERVICES for method in service.methods}
REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_every_method_of_every_served_service_has_a_decision() -> None:
    missing = sorted(set(METHODS) - set(POLICY))
    assert not missing, f"methods without an access decision in inference_server.auth.POLICY: {missing}"
    stale = sorted(set(POLICY) - set(METHODS))
    assert not stale, f"decisions for methods nobody serves: {stale}"


async def test_the_server_serves_no_service_beyond_those_decided(secured: Secured) -> None:
    async with secured.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        call = stub.ServerReflectionInfo(iter([request]), metadata=bearer(secured.tokens[Role.VIEWER]))
        answer = await call.read()
        call.cancel()
    served = {service.name for service in answer.list_services_response.service}  # type: ignore[union-attr]
    assert served == {service.full_name for service in SERVICES}


def _message(method: descriptor.MethodDescriptor, kind: str) -> Any:
    type_ = method.input_type if kind == "input" else method.output_type
    return message_factory.GetMessageClass(type_)


def _request(method: descriptor.MethodDescriptor) -> Any:
    """An empty request, except where an empty one would not reach the server's code."""
    request = _message(method, "input")()
    if method.full_name.endswith("ServerReflectionInfo"):
        request.list_services = ""
    return request


async def _status(channel: grpc.aio.Channel, path: str, token: str | None) -> grpc.StatusCode:
    """The status a call of ``path`` answers with ``token``: a streamed call counts as OK once its first message
    came back."""
    method = METHODS[path]
    request = _request(method)
    serialize, deserialize = _message(method, "input").SerializeToString, _message(method, "output").FromString
    metadata = bearer(token)
    try:
        if method.client_streaming:
            stream = channel.stream_stream(path, request_serializer=serialize, response_deserializer=deserialize)
            call: Any = stream(iter([request]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            call = channel.unary_stream(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=10
            )
        else:
            await channel.unary_unary(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=10
            )
            return grpc.StatusCode.OK
        await call.read()
        call.cancel()
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()


@pytest.mark.parametrize("path", sorted(POLICY))
async def test_each_method_answers_as_its_decision_says(secured: Secured, path: str) -> None:
    access = POLICY[path]
    callers: list[tuple[str, str | None, Role | None]] = [("no token", None, None)]
    callers += [(role.value, secured.tokens[role], role) for role in ROLES]
    callers.append(("an unknown token", "cdt_" + "x" * 43, None))
    async with secured.channel() as channel:
        for who, token, role in callers:
            code = await _status(channel, path, token)
            if access is Access.OPEN:
                allowed = True
            elif role is None:
                assert code is grpc.StatusCode.UNAUTHENTICATED, f"{path} with {who}: {code}"
                continue
            else:
                allowed = role in granted(access)
            if allowed:
                assert code not in REFUSALS, f"{path} refused {who}: {code}"
            else:
                assert code is grpc.StatusCode.PERMISSION_DENIED, f"{path} with {who}: {code}"
