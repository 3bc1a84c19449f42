"""Bearer tokens: how one is made and the sha256 under which it is known.

Tokens are ``cdt_`` + 43 URL-safe characters (256 random bits). Only their sha256 is ever stored (the control plane's
registry, an inference server's tokens file): with that much entropy the hash cannot be turned back into the token,
so a leaked table leaks no working token.
"""

from __future__ import annotations

import hashlib
import secrets

from contract.errors import ConduitError, ErrorCode

__all__ = ["TOKEN_PREFIX", "bearer_token", "hash_token", "new_token"]

TOKEN_PREFIX = "cdt_"


def new_token() -> str:
    """A fresh random token, to be shown once and stored only as ``hash_token(token)``."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``authorization: Bearer <token>`` metadata value.

    Raises:
        ConduitError: UNAUTHENTICATED when there is none, or it is not a bearer token.
    """
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and (token := token.strip()):
            return token
    raise ConduitError(ErrorCode.UNAUTHENTICATED, "missing token: send the metadata `authorization: Bearer <token>`")
