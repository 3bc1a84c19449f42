"""Users, tokens (a job run's among them) and the first admin, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contract.entities import Role
from contract.errors import ErrorCode
from control_plane.store import SqlStore

ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_users_and_their_tokens(store: SqlStore, error_code: ErrorOf) -> None:
    alice = store.create_user("alice", Role.MAINTAINER, _hash("t-alice"), actor="root")
    assert (alice.name, alice.role, alice.disabled) == ("alice", Role.MAINTAINER, False)
    store.create_user("bob", Role.VIEWER, _hash("t-bob"), actor="root")
    store.add_token("alice", _hash("t-alice-2"), actor="root")
    assert store.user_for_token(_hash("t-alice")) == alice
    assert store.user_for_token(_hash("t-alice-2")) == alice
    assert store.user_for_token(_hash("t-nobody")) is None
    assert store.user_for_token("not a hash") is None
    assert [u.name for u in store.list_users()] == ["alice", "bob"]

    disabled = store.disable_user("alice", actor="root")
    assert disabled.disabled and disabled.role is Role.MAINTAINER
    assert store.user_for_token(_hash("t-alice")) is None and store.user_for_token(_hash("t-alice-2")) is None
    assert store.user_for_token(_hash("t-bob")) is not None


def test_user_errors(store: SqlStore, error_code: ErrorOf) -> None:
    store.create_user("alice", Role.ADMIN, _hash("a"), actor="root")
    assert error_code(lambda: store.create_user("alice", Role.VIEWER, _hash("b"), actor="root")) is (
        ErrorCode.ALREADY_EXISTS
    )
    assert error_code(lambda: store.create_user("carol", Role.VIEWER, _hash("a"), actor="root")) is (
        ErrorCode.ALREADY_EXISTS
    )
    assert error_code(lambda: store.add_token("alice", _hash("a"), actor="root")) is ErrorCode.ALREADY_EXISTS
    assert error_code(lambda: store.create_user("bad name", Role.VIEWER, _hash("c"), actor="root")) is (
        ErrorCode.INVALID_ARGUMENT
    )
    # A raw token where its hash belongs is refused, so it can never be stored.
    assert error_code(lambda: store.create_user("dave", Role.VIEWER, "raw-token", actor="root")) is (
        ErrorCode.INVALID_ARGUMENT
    )
    assert error_code(lambda: store.add_token("ghost", _hash("d"), actor="root")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.disable_user("ghost", actor="root")) is ErrorCode.NOT_FOUND
    assert [u.name for u in store.list_users()] == ["alice"]


def test_bootstrap_admin_only_on_an_empty_registry(store: SqlStore) -> None:
    assert store.bootstrap_admin("root", _hash("first"))
    assert not store.bootstrap_admin("root", _hash("second"))
    assert not store.bootstrap_admin("other", _hash("third"))
    [root] = store.list_users()
    assert (root.name, root.role) == ("root", Role.ADMIN)
    assert store.user_for_token(_hash("first")) == root
    assert store.user_for_token(_hash("second")) is None


def test_bootstrap_admin_is_refused_once_any_user_exists(store: SqlStore) -> None:
    store.create_user("alice", Role.VIEWER, _hash("a"), actor="setup")
    assert not store.bootstrap_admin("root", _hash("r"))
    assert [u.name for u in store.list_users()] == ["alice"]


def test_a_job_token_acts_as_its_user_until_revoked_or_expired(store: SqlStore, error_code: ErrorOf) -> None:
    alice = store.create_user("alice", Role.MAINTAINER, _hash("t-alice"), actor="root")
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.add_job_token("alice", _hash("run-1"), job="nightly", expires_at=later) == alice
    assert store.user_for_token(_hash("run-1")) == alice
    # Inference servers never see it: a job calls the control plane only.
    assert {c.user for c in store.callers()} == {"alice"} and len(store.callers()) == 1
    [entry] = store.list_audit(
        since=None, actor=None, action="CreateJobToken", target_prefix=None, page_size=10, page_token=""
    ).items
    assert (entry.actor, entry.target) == ("alice", "job/nightly")
    assert entry.after is not None and entry.after["role"] == "maintainer" and _hash("run-1") not in str(entry.after)

    assert store.revoke_job_token(_hash("run-1"))
    assert store.user_for_token(_hash("run-1")) is None
    assert not store.revoke_job_token(_hash("run-1"))
    # A user's own token is no run's to revoke.
    assert not store.revoke_job_token(_hash("t-alice")) and store.user_for_token(_hash("t-alice")) == alice

    # A run whose end was never recorded: its token stops at its expiry, and the next run's token prunes it.
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.add_job_token("alice", _hash("run-2"), job="nightly", expires_at=past)
    assert store.user_for_token(_hash("run-2")) is None
    store.add_job_token("alice", _hash("run-3"), job="nightly", expires_at=later)
    assert not store.revoke_job_token(_hash("run-2"))

    store.disable_user("alice", actor="root")
    assert store.user_for_token(_hash("run-3")) is None
    assert error_code(lambda: store.add_job_token("alice", _hash("run-4"), job="nightly", expires_at=later)) is (
        ErrorCode.FAILED_PRECONDITION
    )
    assert error_code(lambda: store.add_job_token("ghost", _hash("run-5"), job="nightly", expires_at=later)) is (
        ErrorCode.NOT_FOUND
    )
