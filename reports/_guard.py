"""The one guard between a report and what the registry hands it: a part of a stored document that lacks the shape
the trainers write (text where rows are counted, a tree without a root, a class list shorter than its matrix) is
named as malformed, and everything else on the page still renders."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

__all__ = ["MALFORMED", "guard"]

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

MALFORMED: tuple[type[Exception], ...] = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)
"""What reading a part of the wrong shape raises: a missing key or index, ``None`` or text where a number or a
mapping was written, arrays that do not line up (numpy and matplotlib raise ValueError), a zero bin count, a tree
nested deeper than Python recurses."""


def guard(build: Callable[[], T], part: str) -> tuple[T | None, str]:
    """``(build(), "")``, or ``(None, "PART is malformed")`` when ``build`` trips over the data it reads.

    Args:
        build: draws or tabulates one part of the report from stored documents.
        part: the part it reads, as a reader would look for it (``evaluation.json's curves.roc``).
    """
    try:
        return build(), ""
    except MALFORMED:
        # Logged with its traceback for whoever debugs the document; the page says only which part it skipped.
        _LOG.debug("skipped %s", part, exc_info=True)
        return None, f"{part} is malformed"
