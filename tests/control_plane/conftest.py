"""Fixtures of the control-plane tests: real databases and a real S3-compatible server, each on a free port.

Databases (every URL is a fresh, empty registry migrated to the newest schema):

- ``postgres_server`` (session): a PostgreSQL server started once with ``initdb``/``pg_ctl`` from PATH or
  ``/usr/lib/postgresql/*/bin`` (as the ``postgres`` system user when the tests run as root); missing binaries fail
  the session, they never skip it. ``postgres_server.create_database()`` gives an unmigrated database's URL.
- ``sqlite_url``, ``postgres_url``: a migrated registry on one backend.
- ``store_url``: parametrised over ``sqlite`` and ``postgresql``, so a test using it runs on both.
- ``store``: a ``SqlStore`` on ``store_url``, closed at teardown.

Object storage:

- ``s3_endpoint`` (session): a moto ``ThreadedMotoServer`` on 127.0.0.1; its URL.
- ``s3_bucket``: a new bucket on it, with dummy AWS credentials and region set in the environment for the test, so
  plain ``boto3`` clients (and ``open_artifact_store(..., s3_endpoint_url=s3_endpoint)``) reach it.
- ``s3_client``: a boto3 S3 client for that server.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from control_plane.store import SqlStore, migrate
from tests import postgres as pg

AWS_REGION = "us-east-1"
AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server; user ``postgres`` with trust authentication on 127.0.0.1."""

    port: int
    template: str
    """A database already migrated to the newest schema, copied by ``create_database(migrated=True)``."""

    def url(self, database: str) -> str:
        return pg.postgres_url(self.port, database)

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database with a unique name; its URL."""
        return pg.create_database(self.port, f"t_{uuid.uuid4().hex}", self.template if migrated else None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        with pg.throwaway_postgres() as port:
            server = PostgresServer(port=port, template="conduit_template")
            pg.create_database(port, server.template)
            migrate(server.url(server.template))
            yield server
    except pg.PostgresMissing as exc:  # a failure, never a skip
        pytest.fail(str(exc))


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(migrated=True)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "registry.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    # A copy of a migrated file: running the migrations for every test would cost more than the test.
    path = tmp_path / "registry.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    sql_store = SqlStore(store_url)
    yield sql_store
    sql_store.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=AWS_REGION, **AWS_CREDENTIALS)


@pytest.fixture
def s3_bucket(s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    bucket = f"conduit-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    return bucket
