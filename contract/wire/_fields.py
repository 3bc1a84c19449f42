"""Fields of messages that no entity type owns."""

from __future__ import annotations

from typing import Any

__all__ = ["optional_double"]


def optional_double(message: Any, field: str) -> float | None:
    """An ``optional double`` field: ``None`` when the message leaves it unset."""
    value: float | None = getattr(message, field) if message.HasField(field) else None
    return value
