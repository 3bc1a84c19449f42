"""Server registrations, their owners and expiry, and heartbeats, on SQLite and PostgreSQL."""

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
    state = {"id": first.id, "name": "pod-a", "owner": "server-bot"}
    assert [(e.before, e.after) for e in reversed(audit)] == [
        (None, {**state, "pool": "default", "address": "10.0.0.1:8001"}),
        (
            {**state, "pool": "default", "address": "10.0.0.1:8001"},
            {**state, "pool": "canary", "address": "10.0.0.9:8001"},
        ),
    ]
    assert first.owner == again.owner == "server-bot"


def test_heartbeat_records_the_report_and_answers_the_generation(
    store: SqlStore, register: Callable[..., ModelVersion], error_code: ErrorOf
) -> None:
    server = store.register_server("default", "h:1", "pod-a", actor="bot")
    register("fraud")
    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    loaded = [LoadedModel("fraud", 1, "READY"), LoadedModel("churn", 3, "UNAVAILABLE", "bad graph")]
    assert store.heartbeat(server.id, loaded, 1, at=at, owner="bot") == 1
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
    assert error_code(lambda: store.heartbeat("unknown", [], 0, at=at, owner="bot")) is ErrorCode.NOT_FOUND


def test_register_errors(store: SqlStore, error_code: ErrorOf) -> None:
    assert error_code(lambda: store.register_server("bad pool", "h:1", "n", actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.register_server("p", "", "n", actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.register_server("p", "h:1", "", actor="a")) is ErrorCode.INVALID_ARGUMENT


def test_another_user_can_neither_take_the_name_nor_heartbeat_the_id(store: SqlStore, error_code: ErrorOf) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    mine = store.register_server("default", "10.0.0.1:8001", "pod-a", actor="alice", at=at, expiry=timedelta(hours=1))
    store.heartbeat(mine.id, [LoadedModel("fraud", 1, "READY")], 0, at=at, owner="alice")
    taking = lambda: store.register_server(  # noqa: E731
        "evil", "10.6.6.6:1", "pod-a", actor="mallory", at=at + timedelta(minutes=59), expiry=timedelta(hours=1)
    )
    assert error_code(taking) is ErrorCode.PERMISSION_DENIED
    forging = lambda: store.heartbeat(mine.id, [], 0, at=at, owner="mallory")  # noqa: E731
    assert error_code(forging) is ErrorCode.PERMISSION_DENIED
    # Nothing moved: same id, pool, address and report.
    [kept] = store.list_servers(None)
    assert (kept.id, kept.pool, kept.address, kept.owner) == (mine.id, "default", "10.0.0.1:8001", "alice")
    assert kept.models == (LoadedModel("fraud", 1, "READY"),)
    # Without an expiry, a registration is never another user's to take.
    never = lambda: store.register_server("p", "h:1", "pod-a", actor="mallory", at=at + timedelta(days=999))  # noqa: E731
    assert error_code(never) is ErrorCode.PERMISSION_DENIED


def test_an_expired_registration_is_taken_under_a_new_id(store: SqlStore, error_code: ErrorOf) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    expiry = timedelta(minutes=10)
    old = store.register_server("default", "10.0.0.1:8001", "pod-a", actor="alice", at=at, expiry=expiry)
    store.heartbeat(old.id, [LoadedModel("fraud", 1, "READY")], 3, at=at + timedelta(minutes=5), owner="alice")
    # Silent for just the expiry since its last heartbeat: still alice's.
    late = at + timedelta(minutes=15)
    refused = lambda: store.register_server("b", "h:2", "pod-a", actor="bob", at=late, expiry=expiry)  # noqa: E731
    assert error_code(refused) is ErrorCode.PERMISSION_DENIED

    taken = store.register_server("b", "h:2", "pod-a", actor="bob", at=late + timedelta(seconds=1), expiry=expiry)
    assert taken.id != old.id and (taken.owner, taken.pool, taken.address) == ("bob", "b", "h:2")
    assert (taken.last_heartbeat, taken.models, taken.generation) == (None, (), 0)
    # The previous holder's id names nothing now: its server registers again (and is refused while bob's is live).
    assert error_code(lambda: store.heartbeat(old.id, [], 0, at=late, owner="alice")) is ErrorCode.NOT_FOUND
    assert store.heartbeat(taken.id, [], 0, at=late, owner="bob") == 0
    [entry] = store.list_audit(
        since=None, actor="bob", action="RegisterServer", target_prefix="server/pod-a", page_size=0, page_token=""
    ).items
    assert (entry.before or {})["owner"] == "alice" and (entry.after or {})["owner"] == "bob"


def test_lookups_by_id_and_name(store: SqlStore, error_code: ErrorOf) -> None:
    server = store.register_server("default", "h:1", "pod-a", actor="alice")
    assert store.get_server(server.id) == server
    assert store.find_server("pod-a") == server
    assert store.find_server("pod-b") is None
    assert error_code(lambda: store.get_server("x" * 10_000)) is ErrorCode.NOT_FOUND
