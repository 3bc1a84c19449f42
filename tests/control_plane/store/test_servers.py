"""Server registrations and heartbeats, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from contract.entities import DeploymentSpec, LoadedModel, ModelVersion
from contract.errors import ErrorCode
from control_plane.store import SqlStore

ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def test_register_again_keeps_the_id_and_takes_the_new_pool(store: SqlStore) -> None:
    first = store.register_server("default", "10.0.0.1:8001", "pod-a", actor="server-bot")
    assert (first.pool, first.address, first.name, first.last_heartbeat, first.models, first.generation) == (
        "default",
        "10.0.0.1:8001",
        "pod-a",
        None,
        (),
        0,
    )
    again = store.register_server("canary", "10.0.0.9:8001", "pod-a", actor="server-bot")
    assert again.id == first.id and (again.pool, again.address) == ("canary", "10.0.0.9:8001")
    other = store.register_server("default", "10.0.0.2:8001", "pod-b", actor="server-bot")
    assert other.id != first.id
    assert [(s.pool, s.name) for s in store.list_servers(None)] == [("canary", "pod-a"), ("default", "pod-b")]
    assert [s.name for s in store.list_servers("default")] == ["pod-b"]
    assert store.list_servers("nowhere") == []

    audit = store.list_audit(
        since=None, actor=None, action="RegisterServer", target_prefix="server/pod-a", page_size=0, page_token=""
    ).items
    assert [(e.before, e.after) for e in reversed(audit)] == [
        (None, {"id": first.id, "name": "pod-a", "pool": "default", "address": "10.0.0.1:8001"}),
        (
            {"id": first.id, "name": "pod-a", "pool": "default", "address": "10.0.0.1:8001"},
            {"id": first.id, "name": "pod-a", "pool": "canary", "address": "10.0.0.9:8001"},
        ),
    ]


def test_heartbeat_records_the_report_and_answers_the_generation(
    store: SqlStore, register: Callable[..., ModelVersion], error_code: ErrorOf
) -> None:
    server = store.register_server("default", "h:1", "pod-a", actor="bot")
    register("fraud")
    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    loaded = [LoadedModel("fraud", 1, "READY"), LoadedModel("churn", 3, "UNAVAILABLE", "bad graph")]
    assert store.heartbeat(server.id, loaded, 1, at=at) == 1
    [seen] = store.list_servers("default")
    assert seen.last_heartbeat == at and seen.last_heartbeat.tzinfo == UTC
    assert seen.models == tuple(loaded) and seen.generation == 1
    # Heartbeats are reports, not changes: they leave no audit entry.
    assert (
        store.list_audit(since=None, actor=None, action=None, target_prefix="server/", page_size=0, page_token="")
        .items[0]
        .action
        == "RegisterServer"
    )
    assert error_code(lambda: store.heartbeat("unknown", [], 0, at=at)) is ErrorCode.NOT_FOUND


def test_register_errors(store: SqlStore, error_code: ErrorOf) -> None:
    assert error_code(lambda: store.register_server("bad pool", "h:1", "n", actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.register_server("p", "", "n", actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.register_server("p", "h:1", "", actor="a")) is ErrorCode.INVALID_ARGUMENT
