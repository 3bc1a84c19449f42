"""Engines and managed sessions for the two supported databases: a SQLite file and PostgreSQL.

SQLite allows one writer at a time. A transaction that starts as a reader and later writes must upgrade its lock,
and two such transactions can each wait for the other until one fails with "database is locked". So write
transactions take the write lock up front with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe of emitting BEGIN
itself), and readers use a plain deferred ``BEGIN``, which WAL lets run beside the writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from contract.errors import ConduitError, ErrorCode

__all__ = ["Database", "parse_url"]

# How long a SQLite writer waits for another one before failing: writes are short, so this only bounds a stuck peer.
SQLITE_BUSY_TIMEOUT_S = 30.0
_BEGIN_OPTION = "conduit_sqlite_begin"


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for a SQLite file or a PostgreSQL database (``postgresql://`` means the psycopg 3 driver)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg2 is not installed; a bare postgresql:// would otherwise fail on import deep inside SQLAlchemy.
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the registry needs a SQLite file, not an in-memory one")
        return parsed.set(drivername="sqlite+pysqlite")
    raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: URL) -> Engine:
    assert url.database is not None
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy so that it can choose the BEGIN form below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def unreachable(error: OperationalError) -> ConduitError:
    """The registry database is down, unreachable or locked: a condition to retry, never a caller's mistake."""
    # The driver's own message only: SQLAlchemy's rendering would add the statement and its parameters.
    reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else "connection failed"
    return ConduitError(ErrorCode.UNAVAILABLE, f"cannot use the registry database: {reason}")


@contextmanager
def _outage_is_unavailable() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        raise unreachable(error) from error


class Database:
    """One engine, with sessions that commit on success and roll back on any exception."""

    def __init__(self, url: str) -> None:
        parsed = parse_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(parsed)
        else:
            self.engine = create_engine(parsed, pool_pre_ping=True)
        self._writer = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction for reads; convert rows to entities before leaving the block."""
        with _outage_is_unavailable(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write: it holds SQLite's write lock from its first statement."""
        with _outage_is_unavailable(), Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def write_connection(self) -> Connection:
        """A connection whose transactions, once begun, hold SQLite's write lock (for migrations)."""
        return self._writer.connect()

    def dispose(self) -> None:
        self.engine.dispose()
