"""Every mutating call leaves one audit entry with its state before and after, written with the change."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from contract.entities import AuditEntry, DeploymentSpec, ModelVersion, Role
from contract.errors import ErrorCode
from control_plane.store import SqlStore

ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def _all(store: SqlStore, **filters: object) -> list[AuditEntry]:
    query: dict[str, object] = {"since": None, "actor": None, "action": None, "target_prefix": None, **filters}
    entries: list[AuditEntry] = []
    token = ""
    while True:
        page = store.list_audit(page_size=3, page_token=token, **query)  # type: ignore[arg-type]
        entries += page.items
        if not (token := page.next_token):
            return entries


def test_each_mutation_is_audited_with_before_and_after(store: SqlStore, register: Callable[..., ModelVersion]) -> None:
    token_hash = hashlib.sha256(b"secret").hexdigest()
    store.create_model("fraud", "d", actor="alice")
    register("fraud", actor="alice", tags={"k": "v"})
    store.set_alias("fraud", "production", 1, actor="alice")
    store.deploy(DeploymentSpec("default", "fraud", alias="production"), actor="bob")
    register("fraud", actor="alice")
    store.deploy(DeploymentSpec("default", "fraud", version=2), actor="bob")
    store.rollback("default", "fraud", actor="bob")
    store.deploy(DeploymentSpec("default", "fraud", undeploy=True), actor="bob")
    store.delete_alias("fraud", "production", actor="alice")
    store.archive_model("fraud", actor="alice")
    store.create_user("carol", Role.VIEWER, token_hash, actor="root")
    store.add_token("carol", hashlib.sha256(b"other").hexdigest(), actor="root")
    store.disable_user("carol", actor="root")
    store.register_server("default", "h:1", "pod-a", actor="bot")

    entries = list(reversed(_all(store)))
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("alice", "CreateModel", "model/fraud"),
        ("alice", "RegisterVersion", "model/fraud:1"),
        ("alice", "SetAlias", "model/fraud@production"),
        ("bob", "Deploy", "pool/default/model/fraud"),
        ("alice", "RegisterVersion", "model/fraud:2"),
        ("bob", "Deploy", "pool/default/model/fraud"),
        ("bob", "Rollback", "pool/default/model/fraud"),
        ("bob", "Deploy", "pool/default/model/fraud"),
        ("alice", "DeleteAlias", "model/fraud@production"),
        ("alice", "ArchiveModel", "model/fraud"),
        ("root", "CreateUser", "user/carol"),
        ("root", "CreateToken", "user/carol"),
        ("root", "DisableUser", "user/carol"),
        ("bot", "RegisterServer", "server/pod-a"),
    ]
    by_index = dict(enumerate(entries))
    assert by_index[0].before is None and by_index[0].after == {"name": "fraud", "description": "d", "archived": False}
    registered = by_index[1].after
    assert registered is not None and registered["version"] == 1 and registered["tags"] == {"k": "v"}
    assert (by_index[2].before, by_index[2].after) == (None, {"version": 1})
    assert by_index[3].before is None and by_index[3].after is not None
    assert by_index[3].after["alias"] == "production"
    assert by_index[5].before == by_index[3].after and by_index[5].after is not None
    assert by_index[6].after is not None and by_index[6].after["alias"] == "production"
    assert by_index[7].after is not None and by_index[7].after["undeploy"] is True
    assert (by_index[8].before, by_index[8].after) == ({"version": 1}, None)
    assert by_index[9].before is not None and not by_index[9].before["archived"]
    assert by_index[9].after is not None and by_index[9].after["archived"]
    assert by_index[12].before == {"name": "carol", "role": "viewer", "disabled": False}
    assert by_index[12].after == {"name": "carol", "role": "viewer", "disabled": True}
    # Token hashes never reach the log.
    assert all(token_hash not in repr((e.before, e.after)) for e in entries)
    assert [e.id for e in entries] == sorted(e.id for e in entries)


def test_refused_changes_leave_no_audit_entry(store: SqlStore, error_code: ErrorOf) -> None:
    store.create_model("fraud", "", actor="alice")
    assert error_code(lambda: store.create_model("fraud", "", actor="alice")) is ErrorCode.ALREADY_EXISTS
    assert error_code(lambda: store.set_alias("fraud", "production", 1, actor="alice")) is ErrorCode.NOT_FOUND
    assert [e.action for e in _all(store)] == ["CreateModel"]


def test_audit_filters(store: SqlStore) -> None:
    store.create_model("fraud", "", actor="alice")
    store.create_model("fraud_b", "", actor="bob")
    store.create_model("fraudXb", "", actor="bob")
    store.create_user("carol", Role.VIEWER, hashlib.sha256(b"c").hexdigest(), actor="bob")
    assert [e.target for e in _all(store, actor="bob")] == ["user/carol", "model/fraudXb", "model/fraud_b"]
    assert [e.target for e in _all(store, action="CreateUser")] == ["user/carol"]
    # LIKE wildcards in a prefix are taken literally.
    assert [e.target for e in _all(store, target_prefix="model/fraud_")] == ["model/fraud_b"]
    assert len(_all(store, target_prefix="model/")) == 3
    newest = _all(store)[0]
    assert _all(store, since=newest.at + timedelta(seconds=1)) == []
    assert len(_all(store, since=newest.at - timedelta(minutes=1))) == 4
