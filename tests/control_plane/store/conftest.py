"""Helpers of the store tests: ``new_version`` and ``register`` make versions with distinct digests, ``new_dataset``
data set versions with a full profile, ``error_code`` runs a call that must fail and returns its ``ErrorCode``;
``stores`` opens one store per thread on one database (separate connection pools, as several control planes would
have), and ``run_together`` runs work in threads that start at the same moment."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from contract.entities import (
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    ModelVersion,
    NewDatasetVersion,
    NewVersion,
    TensorSignature,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.store import SqlStore

T = TypeVar("T")
Register = Callable[..., ModelVersion]
THREADS = 4
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


PROFILE = DatasetProfile(
    rows=1000,
    columns=(
        ColumnProfile(
            name="amount",
            dtype="Float64",
            kind="numeric",
            missing=12,
            missing_rate=0.012,
            # Open outer bins and equal inner edges (a value heavily tied) are both valid.
            bin_edges=(float("-inf"), 0.0, 10.5, 10.5, float("inf")),
            bin_counts=(100, 400, 0, 488),
            min=-3.5,
            max=1e9,
            mean=42.25,
            std=7.5,
        ),
        ColumnProfile(
            name="country",
            dtype="String",
            kind="categorical",
            missing=0,
            missing_rate=0.0,
            distinct=40,
            top_categories=(CategoryCount("FR", 500), CategoryCount("DE", 300)),
            other_count=200,
        ),
        ColumnProfile(name="fraud", dtype="Boolean", kind="boolean", missing=0, missing_rate=0.0, distinct=2),
    ),
)


def _new_dataset(name: str, **fields: Any) -> NewDatasetVersion:
    n = next(_counter)
    values: dict[str, Any] = {
        "name": name,
        "version": hashlib.sha256(f"data-{n}".encode()).hexdigest()[:16],
        "sha256": hashlib.sha256(f"parquet-{n}".encode()).hexdigest(),
        "size_bytes": 4321,
        "profile": PROFILE,
        "source": "file:credit.csv",
        "target": "fraud",
        "description": "card transactions",
    }
    return NewDatasetVersion(**{**values, **fields})


@pytest.fixture
def new_dataset() -> Callable[..., NewDatasetVersion]:
    """``new_dataset("credit", **fields)``: a data set version with a version and digest no other test has."""
    return _new_dataset


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


@pytest.fixture
def stores(store_url: str) -> Iterator[list[SqlStore]]:
    """``THREADS`` stores on the same database."""
    opened = [SqlStore(store_url) for _ in range(THREADS)]
    yield opened
    for opened_store in opened:
        opened_store.close()


def run_together(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(0)`` … ``work(count - 1)`` in threads; a barrier lines them up so that their transactions overlap."""
    barrier = threading.Barrier(count)

    def start(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))
