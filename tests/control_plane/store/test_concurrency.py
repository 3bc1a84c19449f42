"""Concurrent writers through separate stores (separate connection pools), as several control planes would be."""

from __future__ import annotations

from collections.abc import Callable

from contract.entities import NewDatasetVersion, NewVersion
from control_plane.store import SqlStore

from .conftest import THREADS, run_together

PER_THREAD = 10


def _run_together(work: Callable[[int], list[int]]) -> list[int]:
    return [item for result in run_together(THREADS, work) for item in result]


def _audited(store: SqlStore, action: str) -> int:
    page = store.list_audit(since=None, actor=None, action=action, target_prefix=None, page_size=0, page_token="")
    return len(page.items)


def test_concurrent_registrations_get_consecutive_distinct_numbers(
    stores: list[SqlStore], new_version: Callable[..., NewVersion]
) -> None:
    stores[0].create_model("fraud", "", actor="a")

    def register(index: int) -> list[int]:
        return [
            stores[index].create_version(new_version("fraud"), actor=f"t{index}").version for _ in range(PER_THREAD)
        ]

    versions = _run_together(register)
    assert sorted(versions) == list(range(1, THREADS * PER_THREAD + 1))
    assert stores[0].get_model("fraud").latest_version == THREADS * PER_THREAD


def test_concurrent_first_registrations_create_the_model_once(
    stores: list[SqlStore], new_version: Callable[..., NewVersion]
) -> None:
    def register(index: int) -> list[int]:
        return [stores[index].create_version(new_version("fresh"), actor="a", create_model=True).version]

    assert sorted(_run_together(register)) == list(range(1, THREADS + 1))
    assert _audited(stores[0], "CreateModel") == 1


def test_concurrent_imports_of_one_data_set_version_all_succeed_with_one_row(
    stores: list[SqlStore], new_dataset: Callable[..., NewDatasetVersion]
) -> None:
    # A new name too: the data set row is raced for as well as the version row.
    new = new_dataset("fresh")

    def import_(index: int) -> list[int]:
        stored, created = stores[index].create_dataset_version(new, actor=f"t{index}")
        assert stored.version == new.version
        return [int(created)]

    assert sum(_run_together(import_)) == 1
    assert len(stores[0].list_dataset_versions("fresh", page_size=0, page_token="").items) == 1
    assert _audited(stores[0], "ImportDataset") == 1


def test_concurrent_bootstrap_creates_one_admin(stores: list[SqlStore]) -> None:
    def bootstrap(index: int) -> list[int]:
        # Different names: only a lock, not the unique name, can keep this to one admin.
        return [int(stores[index].bootstrap_admin(f"admin{index}", f"{index:064x}"))]

    assert sum(_run_together(bootstrap)) == 1
    assert len(stores[0].list_users()) == 1
