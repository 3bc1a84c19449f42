"""Deployments, assignments watches and inference servers through the gRPC API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi

WAIT_S = 10.0


def _alias(model: str, alias: str) -> cp.VersionRef:
    return cp.VersionRef(model=model, alias=alias)


async def test_deploy_canary_rollback_history(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    for _ in range(3):
        await any_api.register("fraud", model_bytes)
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=1), metadata=admin)

    first = await stub.Deploy(cp.DeployRequest(pool="default", target=_alias("fraud", "production")), metadata=admin)
    assert (first.alias, first.resolved_version, first.active, first.created_by) == ("production", 1, True, "admin")
    canary = await stub.Deploy(
        cp.DeployRequest(pool="default", target=_alias("fraud", "production"), canary_version=3, canary_percent=10),
        metadata=admin,
    )
    assert (canary.canary_version, canary.canary_percent) == (3, 10.0)
    pinned = await stub.Deploy(
        cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud", version=2)), metadata=admin
    )
    assert (pinned.version, pinned.alias, pinned.resolved_version) == (2, "", 2)

    restored = await stub.Rollback(cp.RollbackRequest(pool="default", model="fraud"), metadata=admin)
    assert (restored.alias, restored.canary_version, restored.active) == ("production", 3, True)

    active = await stub.ListDeployments(cp.ListDeploymentsRequest(pool="default"), metadata=admin)
    assert [d.id for d in active.deployments] == [restored.id]
    history = await stub.ListDeployments(cp.ListDeploymentsRequest(pool="default", history=True), metadata=admin)
    assert [d.id for d in history.deployments] == [restored.id, pinned.id, canary.id, first.id]
    assert [d.active for d in history.deployments] == [True, False, False, False]


async def test_deploy_refusals(api: Api, model_bytes: bytes) -> None:
    stub, admin = api.stub, api.admin
    await api.register("fraud", model_bytes)
    cases = [
        (cp.DeployRequest(pool="default", target=_alias("fraud", "nope")), grpc.StatusCode.NOT_FOUND),
        (cp.DeployRequest(pool="default", target=_alias("ghost", "production")), grpc.StatusCode.NOT_FOUND),
        (cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud")), grpc.StatusCode.INVALID_ARGUMENT),
        (
            cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud", version=1), canary_percent=150),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud", version=1), unseen_categories="drop"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for request, status in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Deploy(request, metadata=admin)
        assert refused.value.code() == status, request
    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await stub.Rollback(cp.RollbackRequest(pool="default", model="fraud"), metadata=admin)
    assert nothing.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.ListDeployments(cp.ListDeploymentsRequest(history=True), metadata=admin)).deployments == []


async def test_watch_sends_current_assignments_then_each_change(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    v1 = await any_api.register("fraud", model_bytes, aliases=["production"])
    await stub.Deploy(cp.DeployRequest(pool="default", target=_alias("fraud", "production")), metadata=admin)
    server = await any_api.user("server-1", cp.ROLE_SERVER)

    watch = stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default"), metadata=server)
    current = await asyncio.wait_for(watch.read(), WAIT_S)
    assert current.pool == "default"
    assert [(a.model, a.primary.version, a.primary.sha256) for a in current.models] == [("fraud", 1, v1.sha256)]
    assert not current.models[0].HasField("canary")

    # Registering with the alias moves it: the pool's assignments change, and the watch says so.
    await any_api.register("fraud", model_bytes, aliases=["production"])
    moved = await asyncio.wait_for(watch.read(), WAIT_S)
    assert moved.generation > current.generation
    assert [(a.model, a.primary.version) for a in moved.models] == [("fraud", 2)]

    await stub.Deploy(
        cp.DeployRequest(pool="default", target=_alias("fraud", "production"), canary_version=1, canary_percent=25),
        metadata=admin,
    )
    with_canary = await asyncio.wait_for(watch.read(), WAIT_S)
    assert (with_canary.models[0].canary.version, with_canary.models[0].canary_percent) == (1, 25.0)

    await stub.Deploy(
        cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud"), undeploy=True), metadata=admin
    )
    emptied = await asyncio.wait_for(watch.read(), WAIT_S)
    assert list(emptied.models) == []
    watch.cancel()


async def test_watch_sees_changes_made_through_another_replica(
    start_api: StartApi, sqlite_url: str, model_bytes: bytes
) -> None:
    watched = await start_api(sqlite_url)
    other = await start_api(sqlite_url)
    await other.register("fraud", model_bytes, aliases=["production"])
    watch = watched.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default"), metadata=watched.admin)
    assert list((await asyncio.wait_for(watch.read(), WAIT_S)).models) == []

    await other.stub.Deploy(
        cp.DeployRequest(pool="default", target=_alias("fraud", "production")), metadata=other.admin
    )
    # No notification crosses processes: the watch finds the new generation by polling the database.
    changed = await asyncio.wait_for(watch.read(), WAIT_S)
    assert [(a.model, a.primary.version) for a in changed.models] == [("fraud", 1)]
    watch.cancel()


async def test_watch_ends_cleanly_when_the_server_stops(api: Api) -> None:
    watch = api.stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default"), metadata=api.admin)
    await asyncio.wait_for(watch.read(), WAIT_S)
    await api.server.stop(grace=5.0)
    assert await asyncio.wait_for(watch.read(), WAIT_S) == grpc.aio.EOF
    assert await watch.code() == grpc.StatusCode.OK


async def test_servers_register_heartbeat_and_liveness(start_api: StartApi, sqlite_url: str) -> None:
    now = [datetime.now(UTC)]
    api = await start_api(sqlite_url, clock=lambda: now[0], server_timeout=15)
    server = await api.user("server-1", cp.ROLE_SERVER)

    registered = await api.stub.RegisterServer(
        cp.RegisterServerRequest(pool="default", address="10.0.0.1:8001", name="pod-a"), metadata=server
    )
    again = await api.stub.RegisterServer(
        cp.RegisterServerRequest(pool="default", address="10.0.0.2:8001", name="pod-a"), metadata=server
    )
    assert again.id == registered.id
    beat = await api.stub.Heartbeat(
        cp.HeartbeatRequest(
            server_id=registered.id,
            generation=0,
            models=[cp.LoadedModel(model="fraud", version=1, state="READY")],
        ),
        metadata=server,
    )
    assert beat.generation == 0

    listed = (await api.stub.ListServers(cp.ListServersRequest(pool="default"), metadata=api.admin)).servers
    assert [(s.name, s.address, s.alive) for s in listed] == [("pod-a", "10.0.0.2:8001", True)]
    assert [(m.model, m.version, m.state) for m in listed[0].models] == [("fraud", 1, "READY")]

    now[0] += timedelta(seconds=16)
    listed = (await api.stub.ListServers(cp.ListServersRequest(), metadata=api.admin)).servers
    assert [s.alive for s in listed] == [False]

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await api.stub.Heartbeat(cp.HeartbeatRequest(server_id="nope"), metadata=server)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
