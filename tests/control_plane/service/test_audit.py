"""The audit log records every mutating call with its actor and the state before and after."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api


async def test_each_mutating_call_is_audited_with_actor_and_states(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    maintainer = await any_api.user("mia", cp.ROLE_MAINTAINER)
    server = await any_api.user("pod", cp.ROLE_SERVER)
    await stub.CreateModel(cp.CreateModelRequest(name="churn"), metadata=maintainer)
    await any_api.register("fraud", model_bytes, metadata=maintainer)
    await any_api.register("fraud", model_bytes, metadata=maintainer)
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=1), metadata=maintainer)
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=2), metadata=maintainer)
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="staging", version=2), metadata=maintainer)
    await stub.DeleteAlias(cp.DeleteAliasRequest(model="fraud", alias="staging"), metadata=maintainer)
    target = cp.VersionRef(model="fraud", alias="production")
    await stub.Deploy(cp.DeployRequest(pool="default", target=target), metadata=maintainer)
    await stub.Deploy(cp.DeployRequest(pool="default", target=cp.VersionRef(model="fraud", version=1)), metadata=admin)
    await stub.Rollback(cp.RollbackRequest(pool="default", model="fraud"), metadata=admin)
    await stub.ArchiveModel(cp.ArchiveModelRequest(name="churn"), metadata=admin)
    await stub.RegisterServer(cp.RegisterServerRequest(pool="default", address="h:1", name="pod-a"), metadata=server)
    await stub.CreateToken(cp.CreateTokenRequest(user="mia"), metadata=admin)
    await stub.DisableUser(cp.DisableUserRequest(name="pod"), metadata=admin)

    entries = (await stub.ListAudit(cp.ListAuditRequest(page_size=1000), metadata=admin)).entries
    log = [(e.actor, e.action) for e in reversed(entries)]
    assert log == [
        ("system", "BootstrapAdmin"),
        ("admin", "CreateUser"),
        ("admin", "CreateUser"),
        ("mia", "CreateModel"),
        ("mia", "CreateModel"),  # fraud, created by its first upload
        ("mia", "RegisterVersion"),
        ("mia", "RegisterVersion"),
        ("mia", "SetAlias"),
        ("mia", "SetAlias"),
        ("mia", "SetAlias"),
        ("mia", "DeleteAlias"),
        ("mia", "Deploy"),
        ("admin", "Deploy"),
        ("admin", "Rollback"),
        ("admin", "ArchiveModel"),
        ("pod", "RegisterServer"),
        ("admin", "CreateToken"),
        ("admin", "DisableUser"),
    ]
    moved = next(e for e in entries if e.action == "SetAlias" and e.before_json)
    assert (moved.target, json.loads(moved.before_json), json.loads(moved.after_json)) == (
        "model/fraud@production",
        {"version": 1},
        {"version": 2},
    )
    deleted = next(e for e in entries if e.action == "DeleteAlias")
    assert (json.loads(deleted.before_json), deleted.after_json) == ({"version": 2}, "")
    archived = next(e for e in entries if e.action == "ArchiveModel")
    assert json.loads(archived.before_json)["archived"] is False
    assert json.loads(archived.after_json)["archived"] is True
    # Tokens never reach the log, not even hashed.
    everything = " ".join(e.before_json + e.after_json for e in entries)
    assert all(token not in everything for token in any_api.tokens.values())


async def test_audit_filters_and_pages(api: Api, model_bytes: bytes) -> None:
    stub, admin = api.stub, api.admin
    maintainer = await api.user("mia", cp.ROLE_MAINTAINER)
    for _ in range(3):
        await api.register("fraud", model_bytes, metadata=maintainer)
    await api.register("churn", model_bytes)

    by_actor = await stub.ListAudit(cp.ListAuditRequest(actor="mia"), metadata=admin)
    assert {e.actor for e in by_actor.entries} == {"mia"}
    by_action = await stub.ListAudit(cp.ListAuditRequest(action="RegisterVersion"), metadata=admin)
    assert [e.target for e in by_action.entries] == ["model/churn:1", "model/fraud:3", "model/fraud:2", "model/fraud:1"]
    by_target = await stub.ListAudit(cp.ListAuditRequest(target_prefix="model/fraud:"), metadata=admin)
    assert len(by_target.entries) == 3

    first = await stub.ListAudit(cp.ListAuditRequest(page_size=2), metadata=admin)
    second = await stub.ListAudit(cp.ListAuditRequest(page_size=2, page_token=first.next_page_token), metadata=admin)
    ids = [e.id for e in [*first.entries, *second.entries]]
    assert ids == sorted(set(ids), reverse=True) and len(ids) == 4

    future = Timestamp()
    future.FromSeconds(first.entries[0].at.seconds + 3600)
    assert (await stub.ListAudit(cp.ListAuditRequest(since=future), metadata=admin)).entries == []
    since_first = await stub.ListAudit(cp.ListAuditRequest(since=first.entries[-1].at), metadata=admin)
    assert first.entries[0].id in {e.id for e in since_first.entries}
