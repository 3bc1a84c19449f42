"""Helpers of the store tests: ``new_version`` and ``register`` make versions with distinct digests, ``error_code``
runs a call that must fail and returns its ``ErrorCode``."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from control_plane.entities import ModelVersion, NewVersion, TensorSignature
from control_plane.store import SqlStore
from inference_server.errors import ConduitError, ErrorCode

Register = Callable[..., ModelVersion]
ErrorOf = Callable[[Callable[[], object]], ErrorCode]

_counter = itertools.count()


def _new_version(model: str, **fields: Any) -> NewVersion:
    digest = hashlib.sha256(f"artifact-{next(_counter)}".encode()).hexdigest()
    values: dict[str, Any] = {
        "model": model,
        "sha256": digest,
        "size_bytes": 1234,
        "inputs": (TensorSignature("x", "FP32", (-1, 4)),),
        "outputs": (TensorSignature("y", "INT64", (-1,)),),
    }
    return NewVersion(**{**values, **fields})


@pytest.fixture
def new_version() -> Callable[..., NewVersion]:
    """``new_version("fraud", **fields)``: a ``NewVersion`` with a digest no other test version has."""
    return _new_version


@pytest.fixture
def register(store: SqlStore) -> Register:
    """``register("fraud", tags=..., aliases=[...])``: a new version of the model, created if missing."""

    def add(model: str, *, aliases: tuple[str, ...] = (), actor: str = "alice", **fields: Any) -> ModelVersion:
        return store.create_version(_new_version(model, **fields), actor=actor, create_model=True, aliases=aliases)

    return add


@pytest.fixture
def error_code() -> ErrorOf:
    def run(call: Callable[[], object]) -> ErrorCode:
        with pytest.raises(ConduitError) as failure:
            call()
        return failure.value.code

    return run
