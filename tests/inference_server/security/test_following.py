"""A server following a control plane: its callers are the control plane's users, checked without a call per
request, and nobody but the control plane changes what it serves."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from contract.entities import Role
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.inference_server.follower.test_follower import FOLLOW, MODEL, eventually

from .conftest import Secured, bearer

# Heartbeats a refused unload is watched for: the model must still answer after all of them.
WATCHED_HEARTBEATS = 10


def _request(rows: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="input", datatype="FP32", shape=rows.shape)
    request.raw_input_contents.append(rows.astype(np.float32).tobytes())
    return request


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_no_token_is_unauthenticated_a_viewer_infers_a_server_token_is_denied(
    secured: Secured, classifier
) -> None:  # type: ignore[no-untyped-def]
    async with secured.channel() as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        request = _request(classifier.rows[:2])
        try:
            await stub.ModelInfer(request)
            raise AssertionError("answered without a token")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "authorization: Bearer" in (exc.details() or "")
        answer = await stub.ModelInfer(request, metadata=bearer(secured.tokens[Role.VIEWER]))
        assert answer.model_version == str(secured.version)
        denied = stub.ModelInfer(request, metadata=bearer(secured.tokens[Role.SERVER]))
        assert await _code(denied) is grpc.StatusCode.PERMISSION_DENIED


async def test_an_admin_cannot_unload_and_the_model_keeps_answering(secured: Secured, classifier) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(secured.tokens[Role.ADMIN])
    async with secured.channel() as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        for call in (
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL), metadata=admin),
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=MODEL), metadata=admin),
        ):
            try:
                await call
                raise AssertionError("the repository protocol changed a following server")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION
                assert "follows pool 'default' of the control plane" in (exc.details() or "")
        await asyncio.sleep(WATCHED_HEARTBEATS * FOLLOW["heartbeat_interval"])
        answer = await stub.ModelInfer(_request(classifier.rows[:1]), metadata=admin)
        assert answer.model_version == str(secured.version)


async def test_a_version_unloaded_behind_the_followers_back_is_applied_again_and_reported(
    secured: Secured, classifier
) -> None:  # type: ignore[no-untyped-def]
    # What the repository protocol can no longer do, an eviction or a failure still can: unload it in-process.
    await secured.server.models.unload(MODEL)
    assert secured.server.models.versions(MODEL) == []

    async def served_again() -> bool:
        return secured.server.models.versions(MODEL) == [str(secured.version)]

    await eventually(served_again, "the assigned version applied again")

    async def reported_ready() -> bool:
        (status,) = await secured.plane.admin.list_servers("default")
        return [(m.model, m.version, m.state) for m in status.record.models] == [(MODEL, secured.version, "READY")]

    await eventually(reported_ready, "the re-applied version reported READY")


async def test_a_disabled_user_stops_working_and_a_new_one_starts_within_seconds(secured: Secured, classifier) -> None:  # type: ignore[no-untyped-def]
    request = _request(classifier.rows[:1])
    async with secured.channel() as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        viewer = bearer(secured.tokens[Role.VIEWER])
        assert await _code(stub.ModelInfer(request, metadata=viewer)) is grpc.StatusCode.OK
        await secured.plane.admin.disable_user("user-viewer")

        async def refused() -> bool:
            return await _code(stub.ModelInfer(request, metadata=viewer)) is grpc.StatusCode.UNAUTHENTICATED

        await eventually(refused, "the disabled user's token refused")
        _, token = await secured.plane.admin.create_user("newcomer", Role.VIEWER)

        async def accepted() -> bool:
            return await _code(stub.ModelInfer(request, metadata=bearer(token))) is grpc.StatusCode.OK

        await eventually(accepted, "the new user's token accepted")
