"""The one status table's message bound: whatever a message echoes, it fits in gRPC's trailers."""

from __future__ import annotations

import urllib.parse

import pytest

from contract.status import MAX_DETAILS_BYTES, details_of


def test_short_messages_are_unchanged() -> None:
    assert details_of("model 'fraud' not found") == "model 'fraud' not found"
    exact = "x" * MAX_DETAILS_BYTES
    assert details_of(exact) == exact


@pytest.mark.parametrize("echoed", ["m" * 10_000, "é" * 10_000, "🙂" * 10_000, "a" + "🙂" * 400])
def test_long_messages_are_cut_on_a_character_with_an_ellipsis(echoed: str) -> None:
    message = f"model name {echoed!r} must be 1-128 characters"
    shown = details_of(message)
    encoded = shown.encode()
    assert len(encoded) <= MAX_DETAILS_BYTES and shown.endswith("…")
    assert message.startswith(shown[:-1])
    # Percent-encoded as the grpc-message trailer carries it: well within the 8 KiB default metadata limit.
    assert len(urllib.parse.quote(encoded, safe="")) <= 3 * MAX_DETAILS_BYTES < 8192
