"""Bearer tokens and the one table of which role may make which call.

Tokens are made and hashed by ``contract.tokens``; the registry keeps only their sha256, so a leaked database does
not leak working tokens. No grpc here: the transport hands in the call's metadata as pairs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from contract.entities import Role, User
from contract.errors import ConduitError, ErrorCode
from contract.tokens import TOKEN_PREFIX, bearer_token, hash_token, new_token
from control_plane.store import AbstractStore

__all__ = ["PERMISSIONS", "TOKEN_PREFIX", "Authenticator", "authorize", "hash_token", "new_token"]

_READ = frozenset(
    {
        "ListModels",
        "GetModel",
        "ListVersions",
        "GetVersion",
        "GetAttachment",
        "ListDatasets",
        "ListDatasetVersions",
        "GetDataset",
        "ListDeployments",
        "ListServers",
        "ListAudit",
        "WhoAmI",
        "GetMonitoring",
        "ListAlertRules",
        "ListAlerts",
        "ListAlertHistory",
        "ListJobs",
        "ListJobRuns",
        "ListPredictionLogs",
    }
)
_MAINTAIN = frozenset(
    {
        "CreateModel",
        "ArchiveModel",
        "RegisterVersion",
        "SetAlias",
        "DeleteAlias",
        "Deploy",
        "Rollback",
        "DownloadArtifact",
        "ImportDataset",
        # Profiles are for every viewer (the dashboard); the rows themselves only for those who train on them.
        "DownloadDataset",
        "CreateAlertRule",
        "DeleteAlertRule",
        "SilenceAlert",
        "AcknowledgeAlert",
        "CreateJob",
        "DeleteJob",
        "RunJob",
        # The index of prediction logs is for every viewer; the files hold served inputs, which may be personal
        # data, so only those who could download the training data may download them.
        "DownloadPredictionLog",
    }
)
# ExportMetrics: OpenTelemetry's MetricsService/Export, served beside the control plane's own calls. GetVersion,
# GetAttachment and GetDataset: a server reads its versions' lineage and the training profile it sketches served values
# against, a version's profile.json attachment or its data set's (a profile holds no rows; attachments are documents
# every viewer reads; DownloadDataset stays with maintainers). ListCallers: the token hashes a server
# authenticates its callers with (hashes of 256-bit random tokens: they open nothing).
_SERVE = frozenset(
    {
        "WatchAssignments",
        "DownloadArtifact",
        "RegisterServer",
        "Heartbeat",
        "WhoAmI",
        "ExportMetrics",
        "GetVersion",
        "GetAttachment",
        "GetDataset",
        "UploadPredictionLog",
        "ListCallers",
    }
)
_ADMINISTER = frozenset({"CreateUser", "ListUsers", "CreateToken", "DisableUser"})

_CALLS_OF: dict[Role, frozenset[str]] = {
    Role.VIEWER: _READ,
    Role.MAINTAINER: _READ | _MAINTAIN,
    Role.SERVER: _SERVE,
    Role.ADMIN: _READ | _MAINTAIN | _SERVE | _ADMINISTER,
}

PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {call: frozenset(role for role, calls in _CALLS_OF.items() if call in calls) for call in _CALLS_OF[Role.ADMIN]}
)
"""RPC name -> the roles allowed to make it. A call missing from the table is refused to everyone."""


def _bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    for key, value in metadata:
        if key.lower() == "authorization":
            return bearer_token(value.decode(errors="replace") if isinstance(value, bytes) else value)
    return bearer_token(None)


def authorize(user: User, call: str) -> None:
    """Raises PERMISSION_DENIED unless ``user``'s role may make ``call``."""
    if user.role not in PERMISSIONS.get(call, frozenset()):
        raise ConduitError(
            ErrorCode.PERMISSION_DENIED, f"{call} is not allowed to user {user.name!r} with role {user.role.value}"
        )


class Authenticator:
    """Finds the user behind a call's bearer token, when the call starts and again while a stream stays open.

    Args:
        recheck_interval: Seconds between checks of an open stream's token (``recheck``).
        clock: Monotonic seconds, for the age of a re-check's answer.
    """

    def __init__(
        self, store: AbstractStore, *, recheck_interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self.recheck_interval = recheck_interval
        self._clock = clock
        # token hash -> (when it was looked up, the enabled user then): what the open streams re-check against.
        self._rechecked: dict[str, tuple[float, User | None]] = {}
        self._pruned = clock()

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> User:
        """The enabled user holding the call's token.

        Raises:
            ConduitError: UNAUTHENTICATED for a missing, unknown or disabled user's token.
        """
        token = _bearer(metadata)
        # Looked up on every call, not cached: disabling a user must stop its tokens at once, on every replica.
        return _enabled(await asyncio.to_thread(self._store.user_for_token, hash_token(token)))

    async def recheck(self, metadata: Iterable[tuple[str, str | bytes]]) -> User:
        """``authenticate`` again, for a stream opened with ``metadata`` that is still open.

        Streams holding the same token share one lookup per half ``recheck_interval`` (a pool of servers usually
        shares a token), so a disabled user's streams end within about 1.5 intervals, at a cost that does not grow
        with their number.

        Raises:
            ConduitError: UNAUTHENTICATED once the user is disabled or the token is gone.
        """
        token_hash = hash_token(_bearer(metadata))
        now = self._clock()
        found = self._rechecked.get(token_hash)
        if found is None or now - found[0] >= self.recheck_interval / 2:
            user = await asyncio.to_thread(self._store.user_for_token, token_hash)
            if now - self._pruned >= self.recheck_interval:
                # Entries nobody re-checked for a while belong to closed streams.
                self._rechecked = {k: v for k, v in self._rechecked.items() if now - v[0] < self.recheck_interval}
                self._pruned = now
            found = self._rechecked[token_hash] = (now, user)
        return _enabled(found[1])


def _enabled(user: User | None) -> User:
    if user is None or user.disabled:
        raise ConduitError(ErrorCode.UNAUTHENTICATED, "invalid token")
    return user
