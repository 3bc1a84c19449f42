"""How the ``conduit`` commands print: a table or a line of text, or with ``--json`` the answer messages as JSON.

The JSON is protobuf's JSON mapping of the API's messages (field names as in the ``.proto``, every field printed,
int64 as strings), so scripts read what the API sends; handlers turn the client's entities back into those messages
with ``contract.wire``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from contract.errors import ConduitError, ErrorCode

__all__ = ["as_dict", "emit", "mapping", "table", "when", "write_atomically"]


def as_dict(message: Message) -> dict[str, Any]:
    """``message`` in protobuf's JSON mapping, every field present."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def when(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time in UTC as ``pattern`` writes it; ``-`` for none."""
    return "-" if moment is None else moment.astimezone(UTC).strftime(pattern)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    cells = [list(headers)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def mapping(values: Mapping[str, object]) -> str:
    """``k=v, …`` by key; ``-`` when empty."""
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def emit(args: argparse.Namespace, data: Message | Sequence[Message], text: Callable[[], str]) -> None:
    """Print ``data`` as JSON when ``--json`` was given (a list for a sequence), else ``text()``."""
    if args.json:
        payload: Any = [as_dict(m) for m in data] if isinstance(data, Sequence) else as_dict(data)
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        print(text())


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it: a reader never sees half of it, and a failure
    leaves no partial file.

    Raises:
        ConduitError: INVALID_ARGUMENT when the folder cannot take the file (missing, read-only, full).
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot write {path}: {exc.strerror}") from None
