"""The users' calls and the audit log: accounts, tokens, and who did what."""

from __future__ import annotations

from contract import wire
from contract.wire import datetime_of
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context

__all__ = ["UsersServicer"]


class UsersServicer(DomainServicer):
    """Users and audit of ``conduit.control.v1.ControlPlane``."""

    # -- users --------------------------------------------------------------------------------------------------

    async def CreateUser(self, request: cp.CreateUserRequest, context: Context) -> cp.CreateUserResponse:
        async with self._call("CreateUser", context) as user:
            role = wire.role_of(request.role)
            created, token = await self._s.users.create_user(request.name, role, actor=user.name)
            return cp.CreateUserResponse(user=wire.user(created), token=token)

    async def ListUsers(self, request: cp.ListUsersRequest, context: Context) -> cp.ListUsersResponse:
        async with self._call("ListUsers", context):
            return cp.ListUsersResponse(users=[wire.user(u) for u in await self._s.users.list_users()])

    async def CreateToken(self, request: cp.CreateTokenRequest, context: Context) -> cp.CreateTokenResponse:
        async with self._call("CreateToken", context) as user:
            return cp.CreateTokenResponse(token=await self._s.users.create_token(request.user, actor=user.name))

    async def DisableUser(self, request: cp.DisableUserRequest, context: Context) -> cp.User:
        async with self._call("DisableUser", context) as user:
            return wire.user(await self._s.users.disable_user(request.name, actor=user.name))

    async def WhoAmI(self, request: cp.WhoAmIRequest, context: Context) -> cp.User:
        async with self._call("WhoAmI", context) as user:
            return wire.user(user)

    async def ListCallers(self, request: cp.ListCallersRequest, context: Context) -> cp.ListCallersResponse:
        async with self._call("ListCallers", context):
            return wire.callers(await self._s.users.callers(request.digest))

    # -- audit --------------------------------------------------------------------------------------------------

    async def ListAudit(self, request: cp.ListAuditRequest, context: Context) -> cp.ListAuditResponse:
        async with self._call("ListAudit", context):
            page = await self._s.users.list_audit(
                since=datetime_of(request, "since"),
                actor=request.actor or None,
                action=request.action or None,
                target_prefix=request.target_prefix or None,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListAuditResponse(
                entries=[wire.audit_entry(e) for e in page.items], next_page_token=page.next_token
            )
