"""Concurrent writers through separate stores (separate connection pools), as several control planes would be."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from control_plane.entities import NewVersion
from control_plane.store import SqlStore

THREADS = 4
PER_THREAD = 10


def _run_together(count: int, work: Callable[[int], list[int]]) -> list[int]:
    # The barrier lines the threads up so that their transactions really overlap.
    barrier = threading.Barrier(count)

    def start(index: int) -> list[int]:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return [item for result in pool.map(start, range(count)) for item in result]


def test_concurrent_registrations_get_consecutive_distinct_numbers(
    store_url: str, new_version: Callable[..., NewVersion]
) -> None:
    stores = [SqlStore(store_url) for _ in range(THREADS)]
    stores[0].create_model("fraud", "", actor="a")

    def register(index: int) -> list[int]:
        return [
            stores[index].create_version(new_version("fraud"), actor=f"t{index}").version for _ in range(PER_THREAD)
        ]

    try:
        versions = _run_together(THREADS, register)
        assert sorted(versions) == list(range(1, THREADS * PER_THREAD + 1))
        assert stores[0].get_model("fraud").latest_version == THREADS * PER_THREAD
    finally:
        for store in stores:
            store.close()


def test_concurrent_first_registrations_create_the_model_once(
    store_url: str, new_version: Callable[..., NewVersion]
) -> None:
    stores = [SqlStore(store_url) for _ in range(THREADS)]

    def register(index: int) -> list[int]:
        return [stores[index].create_version(new_version("fresh"), actor="a", create_model=True).version]

    try:
        assert sorted(_run_together(THREADS, register)) == list(range(1, THREADS + 1))
        audit = stores[0].list_audit(
            since=None, actor=None, action="CreateModel", target_prefix=None, page_size=0, page_token=""
        )
        assert len(audit.items) == 1
    finally:
        for store in stores:
            store.close()


def test_concurrent_bootstrap_creates_one_admin(store_url: str) -> None:
    stores = [SqlStore(store_url) for _ in range(THREADS)]

    def bootstrap(index: int) -> list[int]:
        # Different names: only a lock, not the unique name, can keep this to one admin.
        return [int(stores[index].bootstrap_admin(f"admin{index}", f"{index:064x}"))]

    try:
        assert sum(_run_together(THREADS, bootstrap)) == 1
        assert len(stores[0].list_users()) == 1
    finally:
        for store in stores:
            store.close()
