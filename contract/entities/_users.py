"""Users, their roles, and the audit log of what they did."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AuditEntry", "CallerToken", "Callers", "Role", "User"]


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
class CallerToken:
    """One enabled user's token as inference servers know it: by its sha256 only."""

    token_sha256: str
    user: str
    role: Role


@dataclass(frozen=True, slots=True)
class Callers:
    """The tokens inference servers accept, identified by ``digest``; ``unchanged`` (and no tokens) when the asker
    already holds the table with that digest."""

    digest: str
    tokens: tuple[CallerToken, ...] = ()
    unchanged: bool = False

    @classmethod
    def of(cls, tokens: Iterable[CallerToken]) -> Callers:
        """The table of ``tokens``, with the digest of its content (the same whatever their order)."""
        ordered = tuple(sorted(tokens, key=lambda t: t.token_sha256))
        content = "\n".join(f"{t.token_sha256} {t.role.value} {t.user}" for t in ordered)
        return cls(hashlib.sha256(content.encode()).hexdigest(), ordered)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tokens": [{"sha256": t.token_sha256, "user": t.user, "role": t.role.value} for t in self.tokens],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Callers:
        """Raises: KeyError, ValueError or TypeError for a malformed document."""
        tokens = tuple(CallerToken(str(t["sha256"]), str(t["user"]), Role(t["role"])) for t in data["tokens"])
        return cls(str(data["digest"]), tokens)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
