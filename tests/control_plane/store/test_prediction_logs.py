"""Prediction logs in the registry, on SQLite and PostgreSQL: recorded once per sha256 (also under concurrency),
listed by model, version and time span with keyset pages, pruned by age, and kept by artifact garbage collection."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from contract.entities import NewPredictionLog
from contract.errors import ConduitError, ErrorCode
from control_plane.store import SqlStore

from .conftest import run_together

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_counter = itertools.count()


def new_log(model: str = "fraud", version: int = 1, *, at: datetime = T0, **fields: Any) -> NewPredictionLog:
    digest = hashlib.sha256(f"log-{next(_counter)}".encode()).hexdigest()
    values: dict[str, Any] = {
        "model": model,
        "version": version,
        "first_at": at,
        "last_at": at + timedelta(seconds=30),
        "rows": 10,
        "sha256": digest,
        "size_bytes": 2048,
        "server": "pod-a",
    }
    return NewPredictionLog(**{**values, **fields})


def test_a_log_is_recorded_once_per_file(store: SqlStore) -> None:
    new = new_log()
    first, created = store.create_prediction_log(new, actor="server")
    again, created_again = store.create_prediction_log(new, actor="server")
    assert (created, created_again) == (True, False)
    assert again == first
    assert (first.model, first.version, first.rows, first.sha256, first.server) == ("fraud", 1, 10, new.sha256, "pod-a")
    assert (first.first_at, first.last_at, first.created_by) == (T0, T0 + timedelta(seconds=30), "server")
    assert store.get_prediction_log(new.sha256) == first
    assert new.sha256 in store.artifact_digests()


def test_concurrent_uploads_of_one_file_record_it_once(stores: list[SqlStore]) -> None:
    new = new_log()
    results = run_together(len(stores), lambda i: stores[i].create_prediction_log(new, actor="server"))
    assert sorted(created for _, created in results) == [False] * (len(results) - 1) + [True]
    assert len({log.id for log, _ in results}) == 1


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"model": "bad name"}, "model name"),
        ({"version": 0}, "version"),
        ({"sha256": "ABC"}, "sha256"),
        ({"rows": 0}, "row"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"server": ""}, "server"),
        ({"last_at": T0 - timedelta(seconds=1)}, "before first_at"),
    ],
)
def test_malformed_logs_are_refused(store: SqlStore, fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConduitError) as caught:
        store.create_prediction_log(new_log(**fields), actor="server")
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert fragment in caught.value.message


def test_listing_filters_by_model_version_and_span_newest_first_in_pages(store: SqlStore) -> None:
    made = [
        store.create_prediction_log(new_log(version=1 + i % 2, at=T0 + timedelta(minutes=i)), actor="s")[0]
        for i in range(7)
    ]
    store.create_prediction_log(new_log("other"), actor="s")

    def listed(**options: Any) -> list[int]:
        ids: list[int] = []
        token = ""
        while True:
            defaults: dict[str, Any] = {"version": None, "since": None, "until": None, "page_size": 2}
            page = store.list_prediction_logs("fraud", **{**defaults, **options}, page_token=token)
            assert len(page.items) <= 2
            ids += [log.id for log in page.items]
            token = page.next_token
            if not token:
                return ids

    assert listed() == [log.id for log in reversed(made)]
    assert listed(version=2) == [made[i].id for i in (5, 3, 1)]
    # Minute 3's log ends at 3:30, so it overlaps a span from 3:10; minute 5's starts at the span's end.
    span = {"since": T0 + timedelta(minutes=3, seconds=10), "until": T0 + timedelta(minutes=5)}
    assert listed(**span) == [made[4].id, made[3].id]
    assert (
        store.list_prediction_logs("ghost", version=None, since=None, until=None, page_size=0, page_token="").items
        == []
    )
    with pytest.raises(ConduitError) as caught:
        store.list_prediction_logs("fraud", version=None, since=None, until=None, page_size=2, page_token="%%%")
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_pruning_deletes_the_logs_older_than_the_cutoff_and_releases_their_files(store: SqlStore) -> None:
    old, _ = store.create_prediction_log(new_log(at=T0 - timedelta(days=40)), actor="s")
    recent, _ = store.create_prediction_log(new_log(at=T0), actor="s")
    assert store.prune_prediction_logs(T0 - timedelta(days=30)) == [old.sha256]
    with pytest.raises(ConduitError) as caught:
        store.get_prediction_log(old.sha256)
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert store.get_prediction_log(recent.sha256) == recent
    digests = store.artifact_digests()
    assert old.sha256 not in digests
    assert recent.sha256 in digests


@pytest.mark.parametrize("version", [None, 1])
def test_listings_by_model_alone_or_by_version_read_an_index_in_order_without_sorting(
    sqlite_url: str, version: int | None
) -> None:
    store = SqlStore(sqlite_url)
    try:
        for v in (1, 2, 1):
            store.create_prediction_log(new_log(version=v), actor="s")
        with statements(store.engine) as seen:
            first = store.list_prediction_logs("fraud", version=version, since=None, until=None, page_size=1,
                                               page_token="")  # fmt: skip
            store.list_prediction_logs("fraud", version=version, since=None, until=None, page_size=1,
                                       page_token=first.next_token)  # fmt: skip
        for statement, parameters in seen:
            with store.engine.connect() as connection:
                plan = " | ".join(row[-1] for row in connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters))  # fmt: skip
            assert "USING INDEX ix_prediction_logs_model" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        store.close()


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements ``engine`` runs meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
