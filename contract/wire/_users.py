"""Users, their roles and audit entries to and from their messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contract.entities import AuditEntry, Callers, CallerToken, Role, User
from contract.errors import ConduitError, ErrorCode
from contract.wire._time import required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "audit_entry",
    "audit_entry_of",
    "callers",
    "callers_of",
    "role",
    "role_of",
    "state_json",
    "user",
    "user_of",
]

_ROLES: dict[Role, cp.Role] = {
    Role.VIEWER: cp.ROLE_VIEWER,
    Role.MAINTAINER: cp.ROLE_MAINTAINER,
    Role.SERVER: cp.ROLE_SERVER,
    Role.ADMIN: cp.ROLE_ADMIN,
}
_ROLE_OF = {value: role for role, value in _ROLES.items()}


def role(value: Role) -> cp.Role:
    return _ROLES[value]


def role_of(value: cp.Role) -> Role:
    """Raises: ConduitError: INVALID_ARGUMENT for ROLE_UNSPECIFIED or a role this version does not know."""
    try:
        return _ROLE_OF[value]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "role must be viewer, maintainer, server or admin") from None


def user(value: User) -> cp.User:
    return cp.User(
        name=value.name, role=role(value.role), disabled=value.disabled, created_at=timestamp(value.created_at)
    )


def user_of(message: cp.User) -> User:
    return User(message.name, role_of(message.role), message.disabled, required_datetime_of(message, "created_at"))


def state_json(state: Mapping[str, Any] | None) -> str:
    """An audit entry's state as its message carries it (sorted keys); empty for none."""
    return "" if state is None else json.dumps(state, sort_keys=True, default=str)


def _state(text: str) -> Mapping[str, Any] | None:
    if not text:
        return None
    state: Mapping[str, Any] = json.loads(text)
    return state


def audit_entry(value: AuditEntry) -> cp.AuditEntry:
    return cp.AuditEntry(
        id=value.id,
        at=timestamp(value.at),
        actor=value.actor,
        action=value.action,
        target=value.target,
        before_json=state_json(value.before),
        after_json=state_json(value.after),
    )


def audit_entry_of(message: cp.AuditEntry) -> AuditEntry:
    return AuditEntry(
        id=message.id,
        at=required_datetime_of(message, "at"),
        actor=message.actor,
        action=message.action,
        target=message.target,
        before=_state(message.before_json),
        after=_state(message.after_json),
    )


def callers(value: Callers) -> cp.ListCallersResponse:
    return cp.ListCallersResponse(
        digest=value.digest,
        unchanged=value.unchanged,
        callers=[cp.Caller(token_sha256=t.token_sha256, user=t.user, role=role(t.role)) for t in value.tokens],
    )


def callers_of(message: cp.ListCallersResponse) -> Callers:
    tokens = tuple(CallerToken(c.token_sha256, c.user, role_of(c.role)) for c in message.callers)
    return Callers(message.digest, tokens, message.unchanged)
