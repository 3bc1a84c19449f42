"""The Alembic migrations build exactly the schema the ORM describes, on both backends, and running them is
idempotent; a store refuses a database that is not migrated; a registry from before the version table moved is
carried over; Optuna's tables and Alembic table live beside ours."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, create_engine, inspect, make_url, text

from contract.errors import ConduitError, ErrorCode
from control_plane import alerting
from control_plane.store import SqlStore, migrate, schema_is_current

# The packaged migrations and the ORM metadata are internal; comparing them with a database is the point here.
from control_plane.store._engine import Database
from control_plane.store._migrate import VERSION_TABLE, alembic_config
from control_plane.store._schema import Base

HEAD = "0009"
# Optuna's tables (optuna/storages/_rdb/models.py) and its Alembic table: none may be one of ours.
OPTUNA_TABLES = {
    "studies",
    "study_directions",
    "study_user_attributes",
    "study_system_attributes",
    "trials",
    "trial_user_attributes",
    "trial_system_attributes",
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_heartbeats",
    "version_info",
    "alembic_version",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/missing/dir/registry.db"
    server: Any = request.getfixturevalue("postgres_server")
    url: str = server.create_database()
    return url


@pytest.fixture
def empty_url(blank_url: str) -> str:
    """``blank_url`` with its SQLite file's directory made: for databases set up here by hand, not by migrate."""
    url = make_url(blank_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True)
    return blank_url


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "table" or name in Base.metadata.tables or name in alerting.metadata.tables


def _schema_diff(url: str) -> list[Any]:
    """What differs between the ORM and Conduit's tables in the database (other tables are not compared)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            opts = {"compare_type": True, "version_table": VERSION_TABLE, "include_name": _ours}
            context = MigrationContext.configure(connection, opts=opts)
            # The alerting library's tables are declared apart (Core, no ORM) but migrated with the registry's.
            return list(compare_metadata(context, [Base.metadata, alerting.metadata]))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def _at_0001_in_alembic_version(url: str) -> None:
    """The registry as earlier Conduit left it: the tables of 0001 with a model, and the revision in Alembic's default
    table, ``alembic_version``."""
    script = ScriptDirectory.from_config(alembic_config())
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            with Operations.context(context):
                script.get_revision("0001").module.upgrade()
            context.stamp(script, "0001")
            connection.execute(
                text(
                    "INSERT INTO models (name, description, archived, created_at, created_by, latest_version) "
                    "VALUES ('fraud', 'kept', false, :at, 'alice', 0)"
                ),
                {"at": datetime(2026, 1, 2, tzinfo=UTC)},
            )
    finally:
        engine.dispose()


def test_a_blank_database_is_refused_until_migrated(blank_url: str) -> None:
    assert not schema_is_current(blank_url)
    with pytest.raises(ConduitError) as refused:
        SqlStore(blank_url)
    assert refused.value.code is ErrorCode.FAILED_PRECONDITION
    # The refusal created nothing: tables come only from the migrations.
    assert _tables(blank_url) == set()

    migrate(blank_url)
    assert schema_is_current(blank_url)
    SqlStore(blank_url).close()


def test_migrated_schema_matches_the_orm_and_migrating_again_changes_nothing(blank_url: str) -> None:
    migrate(blank_url)
    assert _schema_diff(blank_url) == []
    tables = _tables(blank_url)
    assert {"models", "model_versions", "datasets", "version_attachments", "audit_log", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables
    assert _rows(blank_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]

    store = SqlStore(blank_url)
    store.create_model("fraud", "", actor="a")
    store.close()
    migrate(blank_url)
    assert _schema_diff(blank_url) == [] and _tables(blank_url) == tables
    store = SqlStore(blank_url)
    assert store.get_model("fraud").name == "fraud"
    store.close()


def test_no_table_of_ours_is_one_of_optunas() -> None:
    assert not ({*Base.metadata.tables, VERSION_TABLE} & OPTUNA_TABLES)


def test_a_registry_at_0001_with_the_old_version_table_is_carried_over(empty_url: str) -> None:
    _at_0001_in_alembic_version(empty_url)
    assert not schema_is_current(empty_url)
    with pytest.raises(ConduitError) as refused:
        SqlStore(empty_url)
    assert refused.value.code is ErrorCode.FAILED_PRECONDITION

    migrate(empty_url)
    assert schema_is_current(empty_url)
    assert "alembic_version" not in _tables(empty_url)
    assert _rows(empty_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert _schema_diff(empty_url) == []
    store = SqlStore(empty_url)
    try:
        assert store.get_model("fraud").description == "kept"
        assert store.list_datasets(page_size=0, page_token="").items == []
    finally:
        store.close()


def test_servers_registered_before_owners_take_the_owner_their_audit_names(empty_url: str) -> None:
    database = Database(empty_url)
    try:
        with database.write_connection() as connection:
            command.upgrade(alembic_config(connection), "0005")
    finally:
        database.dispose()
    at = datetime(2026, 1, 2, tzinfo=UTC)
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            tables = MetaData()
            pools, servers, audit = (
                Table(n, tables, autoload_with=connection) for n in ("pools", "servers", "audit_log")
            )
            connection.execute(pools.insert(), [{"id": 1, "name": "default", "generation": 0}])
            connection.execute(
                servers.insert(),
                [
                    {"id": f"id-{name}", "name": name, "pool_id": 1, "address": "h:1", "registered_at": at,
                     "last_heartbeat": None, "models": [], "generation": 0}
                    for name in ("pod-a", "pod-b", "pod-c")
                ],
            )  # fmt: skip
            connection.execute(
                audit.insert(),
                [
                    {"at": at, "actor": actor, "action": "RegisterServer", "target": f"server/{name}", "before": None,
                     "after": None}
                    for actor, name in (("alice", "pod-a"), ("bob", "pod-a"), ("carol", "pod-b"), ("dave", "pod-bb"))
                ],
            )  # fmt: skip
    finally:
        engine.dispose()

    migrate(empty_url)
    # The latest registration's actor; none for a server the audit never saw register.
    assert sorted(_rows(empty_url, "SELECT name, owner FROM servers")) == [
        ("pod-a", "bob"),
        ("pod-b", "carol"),
        ("pod-c", None),
    ]
    assert _schema_diff(empty_url) == []
    store = SqlStore(empty_url)
    try:
        # An unowned registration is no one's to heartbeat; its server registers again and so claims it.
        with pytest.raises(ConduitError) as unowned:
            store.heartbeat("id-pod-c", [], 0, at=at, owner="erin")
        assert unowned.value.code is ErrorCode.NOT_FOUND
        claimed = store.register_server("default", "h:2", "pod-c", actor="erin")
        assert claimed.owner == "erin" and claimed.id != "id-pod-c"
        with pytest.raises(ConduitError) as owned:
            store.register_server("default", "h:3", "pod-a", actor="erin")
        assert owned.value.code is ErrorCode.PERMISSION_DENIED
    finally:
        store.close()


def test_another_applications_alembic_version_is_left_alone(empty_url: str) -> None:
    # Optuna's revision names look like this; its table is there before ours, or after.
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('v3.2.0.a')"))
    finally:
        engine.dispose()
    migrate(empty_url)
    assert schema_is_current(empty_url)
    assert _rows(empty_url, "SELECT version_num FROM alembic_version") == [("v3.2.0.a",)]
    assert _rows(empty_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert _schema_diff(empty_url) == []


@pytest.mark.parametrize("optuna_first", [True, False], ids=["optuna-first", "conduit-first"])
def test_optuna_storage_shares_the_registry_database(empty_url: str, optuna_first: bool) -> None:
    # The trainers keep their hyper-parameter studies in the registry's database.

    def study_with_trials() -> int:
        storage = optuna.storages.RDBStorage(empty_url)
        try:
            study = optuna.create_study(storage=storage, study_name="search", load_if_exists=True)
            study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
            return len(optuna.load_study(study_name="search", storage=storage).trials)
        finally:
            storage.engine.dispose()

    if optuna_first:
        assert study_with_trials() == 2
    migrate(empty_url)
    assert study_with_trials() == (4 if optuna_first else 2)
    assert schema_is_current(empty_url)
    assert _tables(empty_url) >= OPTUNA_TABLES
    migrate(empty_url)
    assert _schema_diff(empty_url) == []
    store = SqlStore(empty_url)
    try:
        store.create_model("fraud", "", actor="a")
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://h/db", "not a url", "sqlite://", "sqlite:///:memory:"])
def test_unsupported_urls_are_invalid_arguments(url: str) -> None:
    with pytest.raises(ConduitError) as refused:
        migrate(url)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"postgresql://postgres@127.0.0.1:{sock.getsockname()[1]}/registry"  # bound, never listening
        for call in (lambda: migrate(closed), lambda: SqlStore(closed), lambda: schema_is_current(closed)):
            with pytest.raises(ConduitError) as refused:
                call()
            assert refused.value.code is ErrorCode.UNAVAILABLE
    (tmp_path / "registry.db").mkdir()  # a directory where the SQLite file should be
    with pytest.raises(ConduitError) as refused:
        migrate(f"sqlite:///{tmp_path}/registry.db")
    assert refused.value.code is ErrorCode.UNAVAILABLE


def test_database_lost_while_running_is_unavailable(postgres_server: Any) -> None:
    url = postgres_server.create_database(migrated=True)
    store = SqlStore(url)
    try:
        store.create_model("fraud", "", actor="a")
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())
        for call in (lambda: store.get_model("fraud"), lambda: store.create_model("churn", "", actor="a")):
            with pytest.raises(ConduitError) as lost:
                call()
            assert lost.value.code is ErrorCode.UNAVAILABLE
            assert "SELECT" not in lost.value.message and "INSERT" not in lost.value.message
    finally:
        store.close()


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_alert_channels_at_0005_move_apart_and_their_audit_entries_lose_their_secrets(empty_url: str) -> None:
    secret = "webhook:https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret"
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
    other = "webhook:http://10.0.0.1/other-s3cret"
    at = datetime(2026, 1, 2, tzinfo=UTC)
    _upgrade(empty_url, "0005")
    engine = create_engine(empty_url)
    rules, audit = Base.metadata.tables["alert_rules"], Base.metadata.tables["audit_log"]
    state = {"model": "fraud", "alias": "prod", "condition": "drift > 0.2", "channel": secret, "silenced_until": None}
    try:
        with engine.begin() as connection:
            for name, channel in (("drifting", secret), ("mailed", "email:oncall@example.com")):
                connection.execute(
                    rules.insert().values(
                        name=name, model="fraud", alias="prod", condition="drift > 0.2", channel=channel,
                        created_at=at, created_by="alice", silenced_until=None, enabled=True,
                    )
                )  # fmt: skip
            for action, target, before, after in (
                ("CreateAlertRule", "alert/drifting", None, state),
                ("SilenceAlert", "alert/drifting", state, {**state, "silenced_until": at.isoformat()}),
                ("DeleteAlertRule", "alert/gone", {**state, "channel": other}, None),
                ("CreateModel", "model/fraud", None, {"description": "kept"}),
            ):
                connection.execute(
                    audit.insert().values(
                        at=at, actor="alice", action=action, target=target, before=before, after=after
                    )
                )
    finally:
        engine.dispose()

    migrate(empty_url)
    assert _schema_diff(empty_url) == []
    store = SqlStore(empty_url)
    try:
        assert [r.channel for r in store.list_alert_rules()] == [
            "webhook:https://hooks.example.com/…", "email:oncall@example.com",
        ]  # fmt: skip
        assert store.alert_rule_channels() == {"drifting": secret, "mailed": "email:oncall@example.com"}
        entries = store.list_audit(
            since=None, actor=None, action=None, target_prefix=None, page_size=0, page_token=""
        ).items
        assert "s3cret" not in repr(entries)
        created, silenced, deleted, model = reversed(entries)
        assert created.before is None and model.after == {"description": "kept"}
        assert created.after == {
            **state,
            "channel": "webhook:https://hooks.example.com/…",
            "channel_fingerprint": fingerprint,
        }
        assert silenced.before == created.after and silenced.after is not None
        assert silenced.after["channel_fingerprint"] == fingerprint
        assert deleted.before is not None and deleted.after is None
        assert deleted.before["channel"] == "webhook:http://10.0.0.1/…"
        assert deleted.before["channel_fingerprint"] == hashlib.sha256(other.encode()).hexdigest()[:12]
    finally:
        store.close()

    # Down again, the rules hold their channels in full; the audit log stays redacted.
    engine = create_engine(empty_url)
    try:
        with engine.connect() as connection:
            command.downgrade(alembic_config(connection), "0005")
        assert _rows(empty_url, "SELECT name, channel FROM alert_rules ORDER BY name") == [
            ("drifting", secret), ("mailed", "email:oncall@example.com"),
        ]  # fmt: skip
        assert "alert_secrets" not in _tables(empty_url)
    finally:
        engine.dispose()
    migrate(empty_url)
    store = SqlStore(empty_url)
    try:
        store.delete_alert_rule("drifting", actor="bob")
        assert store.alert_rule_channels() == {"mailed": "email:oncall@example.com"}
    finally:
        store.close()
