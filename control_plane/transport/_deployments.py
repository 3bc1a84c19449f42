"""The deployments' calls and the servers' side of them: deploy and roll back, register, heartbeat, and watch a
pool's assignments."""

from __future__ import annotations

from collections.abc import AsyncIterator

from contract import wire
from contract.entities import ServerStatus
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport import _deployments_converters as converters
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context

__all__ = ["DeploymentsServicer"]


class DeploymentsServicer(DomainServicer):
    """Deployments and servers of ``conduit.control.v1.ControlPlane``."""

    # -- deployments --------------------------------------------------------------------------------------------

    async def Deploy(self, request: cp.DeployRequest, context: Context) -> cp.Deployment:
        async with self._call("Deploy", context) as user:
            deployed = await self._s.deployments.deploy(converters.deployment_spec(request), actor=user.name)
            return wire.deployment(deployed)

    async def Rollback(self, request: cp.RollbackRequest, context: Context) -> cp.Deployment:
        async with self._call("Rollback", context) as user:
            restored = await self._s.deployments.rollback(request.pool, request.model, actor=user.name)
            return wire.deployment(restored)

    async def ListDeployments(self, request: cp.ListDeploymentsRequest, context: Context) -> cp.ListDeploymentsResponse:
        async with self._call("ListDeployments", context):
            page = await self._s.deployments.list_deployments(
                pool=request.pool or None,
                model=request.model or None,
                history=request.history,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListDeploymentsResponse(
                deployments=[wire.deployment(d) for d in page.items], next_page_token=page.next_token
            )

    # -- servers ------------------------------------------------------------------------------------------------

    async def RegisterServer(self, request: cp.RegisterServerRequest, context: Context) -> cp.Server:
        async with self._call("RegisterServer", context) as user:
            # The registration is the caller's user's: only that user's tokens re-register or heartbeat it.
            record = await self._s.servers.register(request.pool, request.address, request.name, actor=user.name)
            # It has just spoken to us.
            return wire.server(ServerStatus(record, alive=True))

    async def Heartbeat(self, request: cp.HeartbeatRequest, context: Context) -> cp.HeartbeatResponse:
        async with self._call("Heartbeat", context) as user:
            models = [wire.loaded_model_of(m) for m in request.models]
            generation = await self._s.servers.heartbeat(request.server_id, models, request.generation, actor=user.name)
            return cp.HeartbeatResponse(generation=generation)

    async def ListServers(self, request: cp.ListServersRequest, context: Context) -> cp.ListServersResponse:
        async with self._call("ListServers", context):
            servers = await self._s.servers.list_servers(request.pool or None)
            return cp.ListServersResponse(servers=[wire.server(s) for s in servers])

    async def WatchAssignments(
        self, request: cp.WatchAssignmentsRequest, context: Context
    ) -> AsyncIterator[cp.Assignments]:
        async with self._call("WatchAssignments", context) as user:
            if request.server_id:
                await self._s.servers.check_owner(request.server_id, actor=user.name)
            async for current in self._live(context, self._s.watch.watch(request.pool)):
                yield wire.assignments(current)
