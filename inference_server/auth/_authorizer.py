"""The check every call on the inference port goes through."""

from __future__ import annotations

from contract.errors import ConduitError, ErrorCode
from contract.tokens import bearer_token
from inference_server.auth._policy import POLICY, Access, granted
from inference_server.auth._tokens import Caller, TokenTable

__all__ = ["Authorizer"]

# Authorization headers remembered at most (valid ones only); beyond, the memory starts again.
MAX_KNOWN = 4096


class Authorizer:
    """Decides each call from its method and its ``authorization`` metadata, against the current token table.

    ``table`` starts as given (``None``: no caller is known yet, every call needing a token is refused) and is
    replaced whole with ``replace`` when its source changes: a header seen before is one dictionary read, and no
    call waits for the control plane.
    """

    def __init__(self, table: TokenTable | None = None) -> None:
        self._table = table
        # authorization header -> its caller, for headers already found in the current table: the common call
        # costs one dictionary read instead of a hash. Only valid tokens enter, so its size is bounded by the
        # tokens in use, not by what callers make up; it empties whenever the table changes.
        self._known: dict[str, Caller] = {}

    @property
    def table(self) -> TokenTable | None:
        return self._table

    def replace(self, table: TokenTable) -> None:
        self._table = table
        self._known = {}

    def authorize(self, method: str, authorization: str | None) -> Caller | None:
        """The caller, when ``method`` may be called with ``authorization``; ``None`` for an open method.

        Raises:
            ConduitError: UNAUTHENTICATED for a missing, malformed or unknown token; PERMISSION_DENIED when the
                caller's role may not make the call, or the method has no rule.
        """
        access = POLICY.get(method)
        if access is Access.OPEN:
            return None
        caller = self._known.get(authorization) if authorization is not None else None
        if caller is None:
            caller = self._authenticate(authorization)
        if access is None or caller.role not in granted(access):
            call = method.rpartition("/")[2]
            raise ConduitError(
                ErrorCode.PERMISSION_DENIED, f"{call} is not allowed to {caller.name!r} with role {caller.role.value}"
            )
        return caller

    def _authenticate(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
        table = self._table
        if table is None:
            raise ConduitError(
                ErrorCode.UNAUTHENTICATED, "no caller tokens known yet: this server has not reached its control plane"
            )
        caller = table.caller(token)
        if caller is None:
            raise ConduitError(ErrorCode.UNAUTHENTICATED, "invalid token")
        if authorization is not None:
            if len(self._known) >= MAX_KNOWN:
                self._known = {}
            self._known[authorization] = caller
        return caller
