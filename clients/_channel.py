"""What the blocking and the asyncio client share about gRPC: channel options and the error rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contract.status import error_from_rpc

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "channel_options", "error_from_rpc"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel_options(max_message_bytes: int, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Channel arguments: message size limits from ``max_message_bytes``, then ``options``, which win on conflict."""
    merged: dict[str, Any] = {
        "grpc.max_send_message_length": max_message_bytes,
        "grpc.max_receive_message_length": max_message_bytes,
    }
    merged.update(options)
    return list(merged.items())
