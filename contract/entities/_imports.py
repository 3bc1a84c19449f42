"""Imports from HTTP APIs and object storage: what ``conduit datasets import URL`` and an import job read, and how.

The same value is built from the command line (``conduit datasets import URL …``, ``conduit jobs add … --import
URL …``), stored as an import job's spec (``to_json``/``from_json``) and read by the fetcher. A header value written
``env:VAR`` (or ``Bearer env:VAR``) is a reference: only the reference is ever stored; the value is read from the
environment of the process that sends the request, at that moment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from contract.errors import ConduitError, ErrorCode

__all__ = ["IMPORT_FORMATS", "IMPORT_SCHEMES", "ImportSpec", "redact_source_url"]

IMPORT_SCHEMES = ("http", "https", "s3")
IMPORT_FORMATS = ("csv", "parquet", "ndjson", "json")
MIB = 1024 * 1024
_ENV_VALUE = re.compile(r"^(?P<prefix>(?:.*\s)?)env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Query parameters and header names that usually carry credentials: never recorded, never stored as written.
_SECRET = re.compile(r"pass|secret|token|key|sig|auth|credential|session|cookie", re.IGNORECASE)


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def redact_source_url(url: str) -> str:
    """``url`` as it may be recorded and shown: no ``user:password@``, no query parameter whose name looks like a
    secret (``token``, ``api_key``, ``sig``…), no fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET.search(k)]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query), ""))


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise _invalid(f"{name} must be above 0, not {value}")


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """One import from ``url`` (``http://``, ``https://`` or ``s3://bucket/key``).

    Args:
        records: dot path to the list of records in each JSON page (``data.items``); empty: the body itself is the
            data (a CSV, Parquet or NDJSON file, or a JSON array of records).
        next: dot path to the next page's URL in each JSON page; empty: a ``Link: <…>; rel="next"`` header, if any,
            is followed.
        headers: ``(name, value)`` pairs sent with every request; a value ``env:VAR`` or ``PREFIX env:VAR`` is read
            from the environment when sent.
        format: ``csv``, ``parquet``, ``ndjson`` or ``json``; empty: from the URL's suffix, then the Content-Type.
        max_pages, max_bytes, max_rows: past these the import fails (never a silently partial data set).
        timeout_s: seconds one request may take.
        attempts: tries of one request when the answer is 429, a 5xx or a failed connection.
    """

    url: str
    records: str = ""
    next: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    format: str = ""
    max_pages: int = 100
    max_bytes: int = 256 * MIB
    max_rows: int = 10_000_000
    timeout_s: float = 30.0
    attempts: int = 4
    name: str = ""
    """The data set a job imports into (unused by ``conduit datasets import``, which takes ``--name``)."""
    target: str = ""
    description: str = ""
    env: tuple[str, ...] = field(default=(), init=False)
    """The environment variables the headers refer to."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in IMPORT_SCHEMES or not parts.netloc:
            raise _invalid(f"{redact_source_url(self.url)!r} is not an http://, https:// or s3://bucket/key URL")
        if parts.scheme == "s3" and not parts.path.strip("/"):
            raise _invalid(f"{self.url!r}: give the object's key, s3://bucket/key")
        if self.format and self.format not in IMPORT_FORMATS:
            raise _invalid(f"format must be one of {', '.join(IMPORT_FORMATS)}, not {self.format!r}")
        if self.records and self.format not in ("", "json"):
            raise _invalid("--records reads JSON pages; it cannot be used with --format " + self.format)
        if self.next and not self.records:
            raise _invalid("--next needs --records (the list of records in each page)")
        for path in (self.records, self.next):
            if path and any(not part for part in path.split(".")):
                raise _invalid(f"{path!r} is not a dot path such as data.items")
        env = []
        for header, value in self.headers:
            if not _HEADER_NAME.match(header):
                raise _invalid(f"{header!r} is not an HTTP header name")
            if "\r" in value or "\n" in value:
                raise _invalid(f"header {header}: the value must be one line")
            found = _ENV_VALUE.match(value)
            if found:
                env.append(found["name"])
        _positive("--max-pages", self.max_pages)
        _positive("--max-bytes", self.max_bytes)
        _positive("--max-rows", self.max_rows)
        _positive("--timeout", self.timeout_s)
        _positive("--attempts", self.attempts)
        object.__setattr__(self, "env", tuple(dict.fromkeys(env)))

    @staticmethod
    def parse_header(text: str) -> tuple[str, str]:
        """``'Name: value'`` as a pair. Raises INVALID_ARGUMENT without a colon."""
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise _invalid(f"header {name.strip() or text!r}: write it as 'Name: value'")
        return name.strip(), value.strip()

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def source(self) -> str:
        """How a data set version records where it came from: the URL without credentials or secret parameters."""
        return redact_source_url(self.url)

    def literal_secrets(self) -> list[str]:
        """Headers whose names look like credentials (``Authorization``, ``X-Api-Key``…) but whose values are
        written out rather than ``env:VAR``: a stored job would show them to every viewer."""
        names = {"authorization", "proxy-authorization", "cookie"}
        return [
            name
            for name, value in self.headers
            if (name.lower() in names or _SECRET.search(name)) and not _ENV_VALUE.match(value)
        ]

    def resolve_headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The headers to send, ``env:VAR`` references replaced by ``environ``'s values.

        Raises:
            ConduitError: INVALID_ARGUMENT naming a variable that is not set (never its value).
        """
        sent = {}
        for name, value in self.headers:
            found = _ENV_VALUE.match(value)
            if found:
                variable = found["name"]
                if variable not in environ:
                    raise _invalid(f"header {name}: the environment variable {variable} is not set")
                sent[name] = found["prefix"] + environ[variable]
            else:
                sent[name] = value
        return sent

    def to_json(self) -> str:
        """The spec as an import job stores it (header values as written: ``env:VAR`` stays a reference)."""
        data = asdict(self)
        data.pop("env")
        data["headers"] = [list(pair) for pair in self.headers]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImportSpec:
        """Raises INVALID_ARGUMENT for text that is not a stored spec."""
        try:
            data: Any = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            data["headers"] = tuple((str(k), str(v)) for k, v in data.get("headers", ()))
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise _invalid(f"not an import spec: {exc}") from None
