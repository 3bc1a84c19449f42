"""Keyset pagination shared by every listing: a page token is the sort key of the last item served, opaque to callers.

Keyset rather than offsets so that rows inserted while a caller pages (new versions, new audit entries) neither repeat
nor skip items.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from contract.entities import Page
from contract.errors import ConduitError, ErrorCode

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_int", "decode_str", "make_page", "page_limit"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

R = TypeVar("R")
T = TypeVar("T")


def page_limit(page_size: int) -> int:
    """0 means the default; larger sizes are capped rather than refused, as the API documents."""
    if page_size < 0:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"page_size must not be negative, got {page_size}")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode(key: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": key}).encode()).decode().rstrip("=")


def _decode(token: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "malformed page_token") from None
    if not isinstance(data, dict) or "after" not in data:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "malformed page_token")
    return data["after"]


def decode_int(token: str) -> int | None:
    """The key after which the page starts; None for the first page."""
    if not token:
        return None
    key = _decode(token)
    if not isinstance(key, int) or isinstance(key, bool):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "malformed page_token")
    return key


def decode_str(token: str) -> str | None:
    if not token:
        return None
    key = _decode(token)
    if not isinstance(key, str):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "malformed page_token")
    return key


def make_page(rows: Sequence[R], limit: int, key: Callable[[R], int | str], convert: Callable[[R], T]) -> Page[T]:
    """``rows`` were fetched with ``limit + 1`` so that a further row tells whether there is a next page."""
    shown = rows[:limit]
    token = _encode(key(shown[-1])) if len(rows) > limit else ""
    return Page([convert(row) for row in shown], token)
