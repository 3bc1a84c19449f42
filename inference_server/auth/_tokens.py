"""Callers' tokens, known by their sha256 only, and the tokens file of a repository-mode server."""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from contract.entities import Callers, Role
from contract.errors import ConduitError, ErrorCode
from contract.tokens import hash_token
from inference_server._files import file_stamp

if TYPE_CHECKING:
    from inference_server.auth._authorizer import Authorizer

__all__ = ["Caller", "TokenTable", "read_tokens_file", "watch_tokens_file"]

log = logging.getLogger("conduit.serve")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who holds a token: a user's name and role."""

    name: str
    role: Role


class TokenTable:
    """Token hashes -> callers; immutable, replaced whole when the source changes.

    Args:
        callers: ``(sha256 hex digest, caller)`` pairs.
        digest: What identifies this content at its source (the control plane's digest, the file's stamp).
    """

    def __init__(self, callers: Iterable[tuple[str, Caller]], digest: str = "") -> None:
        self._callers: Mapping[str, Caller] = MappingProxyType(dict(callers))
        self.digest = digest

    def __len__(self) -> int:
        return len(self._callers)

    @classmethod
    def of_callers(cls, callers: Callers) -> TokenTable:
        """The table of the control plane's callers (``ListCallers``)."""
        return cls(((t.token_sha256, Caller(t.user, t.role)) for t in callers.tokens), callers.digest)

    def caller(self, token: str) -> Caller | None:
        """The caller holding ``token``; ``None`` for an unknown one."""
        return self._callers.get(hash_token(token))

    def callers(self) -> Mapping[str, Caller]:
        """Every token hash with its caller."""
        return self._callers


def read_tokens_file(path: Path) -> TokenTable:
    """Read a TOML tokens file: ``[[tokens]]`` tables of ``name``, ``role`` and ``sha256``.

    Raises:
        ConduitError: INVALID_ARGUMENT naming the file and the entry for anything malformed; NOT_FOUND when it is
            missing.
    """
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConduitError(ErrorCode.NOT_FOUND, f"{path}: no such tokens file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{path}: not a readable TOML file ({exc})") from None
    entries = document.get("tokens", [])
    if not isinstance(entries, list) or set(document) - {"tokens"}:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{path}: expected only [[tokens]] tables")
    callers: dict[str, Caller] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{path}: token {number}"
        if not isinstance(entry, dict) or set(entry) != {"name", "role", "sha256"}:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{where}: needs exactly name, role and sha256")
        name, role, digest = entry["name"], entry["role"], entry["sha256"]
        if not isinstance(name, str) or not name:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{where}: name must be a non-empty string")
        if role not in ("viewer", "maintainer", "admin"):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{where}: role must be viewer, maintainer or admin")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            # A clear token pasted by mistake must not be accepted, nor echoed back.
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{where}: sha256 must be 64 lower-case hex digits")
        if digest in callers:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{where}: the same token hash appears twice")
        callers[digest] = Caller(name, Role(role))
    return TokenTable(callers.items())


async def watch_tokens_file(path: Path, authorizer: Authorizer, interval: float) -> None:
    """Re-read the tokens file every ``interval`` seconds when it changed and hand it to ``authorizer``; a broken
    edit keeps the previous tokens and is reported once. Runs until cancelled."""
    stamp = file_stamp(path)
    while True:
        await asyncio.sleep(interval)
        current = file_stamp(path)
        if current == stamp:
            continue
        stamp = current
        try:
            table = await asyncio.to_thread(read_tokens_file, path)
        except ConduitError as exc:
            log.warning("keeping the previous tokens: %s", exc.message)
            continue
        authorizer.replace(table)
        log.info("tokens file %s re-read: %d tokens", path, len(table))
