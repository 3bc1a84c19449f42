"""Checks on names and hashes that arrive from callers, before any of them reaches a query or a path."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from contract.errors import ConduitError, ErrorCode

__all__ = [
    "check_alias",
    "check_attachments",
    "check_dataset_metadata",
    "check_dataset_version",
    "check_name",
    "check_token_hash",
    "check_version_metadata",
    "check_version_number",
    "is_sha256",
    "shown",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATASET_VERSION = re.compile(r"[0-9a-f]{16,64}")
_MEDIA_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")
# user:password@ in a URL: a data set's source is shown to every viewer and kept in the audit log.
_PASSWORD_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]*@")
MAX_KEY = 255
MAX_VALUE = 4096
MAX_DESCRIPTION = 65536
MAX_ENTRIES = 1024
SHOWN = 64
"""Most characters of a caller's value echoed in an error message: a refused value may be any length."""


def shown(value: str) -> str:
    """``value`` quoted for an error message, cut to ``SHOWN`` characters with an ellipsis."""
    return repr(value) if len(value) <= SHOWN else f"{value[:SHOWN]!r}…"


def is_sha256(value: str) -> bool:
    """Whether ``value`` is a sha256 as stored: 64 lowercase hex digits."""
    return _HEX64.fullmatch(value) is not None


def check_name(kind: str, name: str) -> str:
    """A model, alias, pool or user name: it appears in URLs, paths and audit targets, so its alphabet is closed."""
    if not _NAME.fullmatch(name):
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"{kind} name {shown(name)} must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def check_alias(alias: str) -> str:
    """An alias name; all digits is refused because a reference like ``fraud:3`` must never be ambiguous."""
    check_name("alias", alias)
    if alias.isdigit():
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"alias name {alias!r} must not be all digits")
    return alias


def check_version_number(version: int) -> int:
    if version < 1:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"version must be 1 or more, not {version}")
    return version


def check_token_hash(token_hash: str) -> str:
    """The store keeps only sha256 hex digests of tokens; anything else is a caller passing the token itself."""
    if not _HEX64.fullmatch(token_hash):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "a token hash must be 64 lowercase hex digits")
    return token_hash


def check_version_metadata(
    metrics: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str], description: str
) -> None:
    """What a version carries besides its artifact: bounded, and metrics finite (JSON and PostgreSQL have no NaN).

    Checked before an upload's bytes are received as well as at commit, so a refusal never leaves an artifact
    behind.
    """
    for kind, values in (("metric", metrics), ("param", params), ("tag", tags)):
        if len(values) > MAX_ENTRIES:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_ENTRIES} {kind}s per version")
        for key in values:
            if not key or len(key) > MAX_KEY:
                raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{kind} names must be 1-{MAX_KEY} characters")
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"metric {key!r} must be a finite number, not {value}")
    for kind, texts in (("param", params), ("tag", tags)):
        for key, text in texts.items():
            if len(text) > MAX_VALUE:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"{kind} {key!r} is {len(text)} characters; at most {MAX_VALUE}"
                )
    if len(description) > MAX_DESCRIPTION:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"the description is longer than {MAX_DESCRIPTION} characters")


def check_dataset_version(version: str) -> str:
    """A data set version: the content hash the client computed, as 16-64 lowercase hex digits."""
    if not _DATASET_VERSION.fullmatch(version):
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"data set version {shown(version)} must be 16-64 lowercase hex digits"
        )
    return version


def check_dataset_metadata(source: str, target: str, description: str) -> None:
    """What a data set version says about itself besides its profile: bounded, and no credentials in its source."""
    for kind, text in (("source", source), ("target", target)):
        if len(text) > MAX_VALUE:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"the {kind} is longer than {MAX_VALUE} characters")
    if _PASSWORD_IN_URL.search(source):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the source must not contain a password; remove it from the URL")
    if len(description) > MAX_DESCRIPTION:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"the description is longer than {MAX_DESCRIPTION} characters")


def check_attachments(attachments: Iterable[tuple[str, str]]) -> None:
    """The (name, media type) of each document attached to a version: names as safe as a model's, and unique."""
    names: set[str] = set()
    for name, media_type in attachments:
        check_name("attachment", name)
        if name in names:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"attachment {name!r} is given twice")
        names.add(name)
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"attachment {name!r}: the media type must be 1-255 printable ASCII characters, e.g. application/json",
            )
    if len(names) > MAX_ENTRIES:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_ENTRIES} attachments per version")
