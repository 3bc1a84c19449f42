"""The Alembic migrations build exactly the schema the ORM describes, on both backends, and running them is
idempotent; a store refuses a database that is not migrated."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from control_plane.store import SqlStore, migrate, schema_is_current

# The ORM metadata is internal; comparing it with the migrated schema is the point of this test.
from control_plane.store._schema import Base
from inference_server.errors import ConduitError, ErrorCode


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/missing/dir/registry.db"
    server: Any = request.getfixturevalue("postgres_server")
    url: str = server.create_database()
    return url


def _schema_diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_blank_database_is_refused_until_migrated(blank_url: str) -> None:
    assert not schema_is_current(blank_url)
    with pytest.raises(ConduitError) as refused:
        SqlStore(blank_url)
    assert refused.value.code is ErrorCode.FAILED_PRECONDITION
    # The refusal created nothing: tables come only from the migrations.
    assert _tables(blank_url) <= {"alembic_version"}

    migrate(blank_url)
    assert schema_is_current(blank_url)
    SqlStore(blank_url).close()


def test_migrated_schema_matches_the_orm_and_migrating_again_changes_nothing(blank_url: str) -> None:
    migrate(blank_url)
    assert _schema_diff(blank_url) == []
    tables = _tables(blank_url)
    assert {"models", "model_versions", "deployments", "audit_log", "alembic_version"} <= tables

    store = SqlStore(blank_url)
    store.create_model("fraud", "", actor="a")
    store.close()
    migrate(blank_url)
    assert _schema_diff(blank_url) == [] and _tables(blank_url) == tables
    store = SqlStore(blank_url)
    assert store.get_model("fraud").name == "fraud"
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
