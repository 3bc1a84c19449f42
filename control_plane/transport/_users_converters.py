"""Users, their roles and audit entries to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contract.entities import AuditEntry, Role, User
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._converters import timestamp

__all__ = ["audit_entry", "role", "role_of", "user"]

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
    try:
        return _ROLE_OF[value]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "role must be viewer, maintainer, server or admin") from None


def user(value: User) -> cp.User:
    return cp.User(
        name=value.name, role=role(value.role), disabled=value.disabled, created_at=timestamp(value.created_at)
    )


def _json(state: Mapping[str, Any] | None) -> str:
    return "" if state is None else json.dumps(state, sort_keys=True, default=str)


def audit_entry(value: AuditEntry) -> cp.AuditEntry:
    return cp.AuditEntry(
        id=value.id,
        at=timestamp(value.at),
        actor=value.actor,
        action=value.action,
        target=value.target,
        before_json=_json(value.before),
        after_json=_json(value.after),
    )
