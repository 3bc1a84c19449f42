"""Users, their roles, and the audit log of what they did."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AuditEntry", "Role", "User"]


class Role(enum.Enum):
    """What a user may do. Admin includes every other role; maintainer includes viewer."""

    VIEWER = "viewer"
    MAINTAINER = "maintainer"
    SERVER = "server"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
