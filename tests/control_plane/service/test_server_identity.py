"""Server identity through the real API: a registration belongs to the user whose token made it. Another server
token can neither take its name, heartbeat its id, watch as it nor upload in its name; once it has been silent for
the expiry, another user may take the name under a new id."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi

WAIT_S = 10


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def register(pool: str, address: str, name: str) -> cp.RegisterServerRequest:
    return cp.RegisterServerRequest(pool=pool, address=address, name=name)


def beat(server_id: str, state: str = "READY") -> cp.HeartbeatRequest:
    return cp.HeartbeatRequest(server_id=server_id, models=[cp.LoadedModel(model="fraud", version=1, state=state)])


async def listed(api: Api) -> list[tuple[str, str, str, str, list[str]]]:
    servers = (await api.stub.ListServers(cp.ListServersRequest(), metadata=api.admin)).servers
    return [(s.id, s.name, s.pool, s.address, [m.state for m in s.models]) for s in servers]


async def test_another_server_token_cannot_take_over_a_registration(api: Api) -> None:
    alice = await api.user("alice", cp.ROLE_SERVER)
    mallory = await api.user("mallory", cp.ROLE_SERVER)
    mine = await api.stub.RegisterServer(register("default", "10.0.0.1:8001", "pod-a"), metadata=alice)
    await api.stub.Heartbeat(beat(mine.id), metadata=alice)
    before = await listed(api)

    taking = await refused(api.stub.RegisterServer(register("evil", "10.6.6.6:1", "pod-a"), metadata=mallory))
    assert taking.code() == grpc.StatusCode.PERMISSION_DENIED
    details = taking.details() or ""
    assert "'pod-a'" in details and "\n" not in details
    # The name, not who holds it nor anything of theirs.
    assert "alice" not in details and mine.id not in details and api.tokens["alice"] not in details

    # A fake state must neither fire nor hide a not-ready alert: the report is refused.
    forged = await refused(api.stub.Heartbeat(beat(mine.id, "UNAVAILABLE"), metadata=mallory))
    assert forged.code() == grpc.StatusCode.PERMISSION_DENIED
    watch = api.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default", server_id=mine.id), metadata=mallory)
    assert (await refused(watch.read())).code() == grpc.StatusCode.PERMISSION_DENIED
    upload = await refused(
        api.stub.UploadPredictionLog(iter(_prediction_log_upload(server="pod-a")), metadata=mallory, timeout=WAIT_S)
    )
    assert upload.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await listed(api) == before

    # The owner goes on as before, under the same id; an admin's token is another user's too.
    again = await api.stub.RegisterServer(register("default", "10.0.0.2:8001", "pod-a"), metadata=alice)
    assert again.id == mine.id
    await api.stub.Heartbeat(beat(mine.id), metadata=alice)
    watch = api.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default", server_id=mine.id), metadata=alice)
    assert (await watch.read()).pool == "default"
    watch.cancel()
    admin = await refused(api.stub.Heartbeat(beat(mine.id), metadata=api.admin))
    assert admin.code() == grpc.StatusCode.PERMISSION_DENIED
    # A name nobody registered is free to take, and to upload in.
    other = await api.stub.RegisterServer(register("default", "10.0.0.3:8001", "pod-b"), metadata=mallory)
    await api.stub.Heartbeat(beat(other.id), metadata=mallory)


async def test_unknown_ids_are_not_found(api: Api) -> None:
    server = await api.user("alice", cp.ROLE_SERVER)
    beat_unknown = await refused(api.stub.Heartbeat(beat("f" * 10_000), metadata=server))
    assert beat_unknown.code() == grpc.StatusCode.NOT_FOUND
    assert len(beat_unknown.details() or "") < 200
    watch = api.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default", server_id="nope"), metadata=server)
    assert (await refused(watch.read())).code() == grpc.StatusCode.NOT_FOUND


async def test_an_expired_registration_can_be_taken(start_api: StartApi, sqlite_url: str) -> None:
    now = [datetime.now(UTC)]
    api = await start_api(sqlite_url, clock=lambda: now[0], server_timeout=15, server_expiry=600)
    alice = await api.user("alice", cp.ROLE_SERVER)
    bob = await api.user("bob", cp.ROLE_SERVER)
    old = await api.stub.RegisterServer(register("default", "10.0.0.1:8001", "pod-a"), metadata=alice)
    now[0] += timedelta(seconds=300)
    await api.stub.Heartbeat(beat(old.id), metadata=alice)

    # Dead for the liveness timeout, not yet for the expiry: still alice's.
    now[0] += timedelta(seconds=600)
    assert [s.alive for s in (await api.stub.ListServers(cp.ListServersRequest(), metadata=api.admin)).servers] == [
        False
    ]
    early = await refused(api.stub.RegisterServer(register("blue", "10.0.0.9:8001", "pod-a"), metadata=bob))
    assert early.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "600s" in (early.details() or "")

    now[0] += timedelta(seconds=1)
    taken = await api.stub.RegisterServer(register("blue", "10.0.0.9:8001", "pod-a"), metadata=bob)
    assert taken.id != old.id and (taken.pool, taken.address, taken.alive) == ("blue", "10.0.0.9:8001", True)
    assert await listed(api) == [(taken.id, "pod-a", "blue", "10.0.0.9:8001", [])]
    await api.stub.Heartbeat(beat(taken.id), metadata=bob)
    # alice's server comes back: its id is gone (so its follower registers again), and the name is bob's now.
    gone = await refused(api.stub.Heartbeat(beat(old.id), metadata=alice))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    back = await refused(api.stub.RegisterServer(register("default", "10.0.0.1:8001", "pod-a"), metadata=alice))
    assert back.code() == grpc.StatusCode.PERMISSION_DENIED

    audit = await api.stub.ListAudit(
        cp.ListAuditRequest(action="RegisterServer", target_prefix="server/pod-a"), metadata=api.admin
    )
    assert [e.actor for e in audit.entries] == ["bob", "alice"]


def _prediction_log_upload(*, server: str) -> list[cp.UploadPredictionLogRequest]:
    payload = b"PAR1 refused before these bytes are read PAR1"
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    header = cp.PredictionLogHeader(
        model="fraud",
        version=1,
        first_at=at,
        last_at=at,
        rows=1,
        sha256=hashlib.sha256(payload).hexdigest(),
        size_bytes=len(payload),
        server=server,
    )
    return [cp.UploadPredictionLogRequest(header=header), cp.UploadPredictionLogRequest(chunk=payload)]
