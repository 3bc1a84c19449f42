"""Digest checks: an artifact's digest becomes a file path or an object key, so it is checked before either is built."""

from __future__ import annotations

import re

from contract.errors import ConduitError, ErrorCode

__all__ = ["check_digest", "is_digest"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    return _SHA256.fullmatch(text) is not None


def check_digest(sha256: str) -> str:
    """Raises INVALID_ARGUMENT unless ``sha256`` is 64 lowercase hex digits."""
    if not is_digest(sha256):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "an artifact digest must be 64 lowercase hex digits")
    return sha256
