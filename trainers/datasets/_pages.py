"""JSON API pages: the records and the next page's URL in each, and records flattened to columns."""

from __future__ import annotations

import json
import re
from typing import Any

from trainers._errors import DatasetError

__all__ = ["flatten", "link_next", "lookup", "page_records"]

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL_NEXT = re.compile(r"""rel\s*=\s*"?([^";]*)"?""", re.IGNORECASE)
_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """The value at dot path ``path`` (``data.items``; a number indexes a list); a sentinel when absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _keys(document: Any) -> str:
    if isinstance(document, dict):
        return f"its keys: {', '.join(list(document)[:10]) or 'none'}"
    return f"it is a JSON {type(document).__name__}"


def page_records(body: bytes, where: str, *, records: str, next_path: str) -> tuple[list[dict[str, Any]], str | None]:
    """The records of one page and the URL of the next (None: this is the last page).

    Raises:
        DatasetError: the page is not JSON, ``records`` is missing or not a list of objects.
    """
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise DatasetError(f"{where}: not JSON: {exc}") from None
    found = lookup(document, records)
    if found is _MISSING:
        raise DatasetError(f"{where}: no {records!r} in the page ({_keys(document)})")
    if not isinstance(found, list):
        raise DatasetError(f"{where}: {records!r} is a JSON {type(found).__name__}, not a list of records")
    for index, record in enumerate(found):
        if not isinstance(record, dict):
            raise DatasetError(
                f"{where}: record {index} of {records!r} is a JSON {type(record).__name__}, not an object"
            )
    following = None
    if next_path:
        value = lookup(document, next_path)
        if value is not _MISSING and value not in (None, ""):
            if not isinstance(value, str):
                raise DatasetError(f"{where}: {next_path!r} is a JSON {type(value).__name__}, not a URL")
            following = value
    return found, following


def link_next(header: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), if any."""
    for match in _LINK.finditer(header or ""):
        for rel in _REL_NEXT.findall(match.group(2)):
            if "next" in rel.lower().split():
                return match.group(1).strip()
    return None


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns (``{"address": {"city": …}}`` → ``address.city``); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = None if isinstance(value, dict) else value
    return flat
