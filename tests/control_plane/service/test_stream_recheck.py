"""Open streams outlive no user: a watch or an upload already open ends with UNAUTHENTICATED within seconds of its
user being disabled, through the real server with its default re-check interval; other users' streams go on."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from control_plane.protocol import control_plane_pb2 as cp
from control_plane.settings import ControlPlaneSettings

from .conftest import Api, eventually, files

# The default re-check interval, and the most a disabled user's stream may outlive it: 1.5 intervals (streams
# sharing a token share a lookup for half of one), plus the scheduling of a busy test machine.
INTERVAL_S = ControlPlaneSettings.model_fields["stream_recheck_interval"].default
WITHIN_S = 1.5 * INTERVAL_S + 2.0


async def _disabled_ends(api: Api, name: str, stream: grpc.aio.Call) -> float:
    """Disable ``name``; seconds until ``stream`` ended, which it must do with UNAUTHENTICATED."""
    await api.stub.DisableUser(cp.DisableUserRequest(name=name), metadata=api.admin)
    started = time.monotonic()
    code = await asyncio.wait_for(stream.code(), WITHIN_S + 5)
    ended = time.monotonic() - started
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert (await stream.details()) == "invalid token"
    return ended


async def test_a_watch_ends_unauthenticated_within_seconds_of_disable_user(api: Api) -> None:
    server = await api.user("pod-bot", cp.ROLE_SERVER)
    other = await api.user("other-bot", cp.ROLE_SERVER)
    registered = await api.stub.RegisterServer(
        cp.RegisterServerRequest(pool="default", address="10.0.0.1:8001", name="pod-a"), metadata=server
    )
    request = cp.WatchAssignmentsRequest(pool="default", server_id=registered.id)
    watch = api.stub.WatchAssignments(request, metadata=server)
    kept = api.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default"), metadata=other)
    assert (await watch.read()).pool == (await kept.read()).pool == "default"
    # Idle past several re-checks: a valid user's watch stays open.
    await asyncio.sleep(2 * INTERVAL_S)
    assert not watch.done()

    assert await _disabled_ends(api, "pod-bot", watch) < WITHIN_S
    assert not kept.done()
    kept.cancel()


async def test_an_open_upload_ends_unauthenticated_and_leaves_nothing(api: Api, model_bytes: bytes) -> None:
    maintainer = await api.user("ana", cp.ROLE_MAINTAINER)
    header = cp.RegisterVersionHeader(
        model="fraud", sha256=hashlib.sha256(model_bytes).hexdigest(), size_bytes=len(model_bytes), create_model=True
    )
    never = asyncio.Event()

    async def slow() -> AsyncIterator[cp.RegisterVersionRequest]:
        yield cp.RegisterVersionRequest(header=header)
        yield cp.RegisterVersionRequest(chunk=model_bytes[:100])
        await never.wait()  # the rest never comes: the caller holds the upload open

    upload = api.stub.RegisterVersion(slow(), metadata=maintainer)
    await eventually(lambda: bool(files(api.spool)), "the upload is spooling")
    assert await _disabled_ends(api, "ana", upload) < WITHIN_S
    await eventually(lambda: not files(api.spool), "the spool file is removed")
    assert files(api.artifacts) == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await api.stub.GetModel(cp.GetModelRequest(name="fraud"), metadata=api.admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
