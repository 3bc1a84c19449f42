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

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer

from control_plane.store import SqlStore, migrate

AWS_REGION = "us-east-1"
AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        pytest.fail(f"PostgreSQL's {name} is not installed (looked on PATH and in /usr/lib/postgresql/*/bin)")
    return candidates[-1]


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server; user ``postgres`` with trust authentication on 127.0.0.1."""

    port: int
    template: str
    """A database already migrated to the newest schema, copied by ``create_database(migrated=True)``."""

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database with a unique name; its URL."""
        name = f"t_{uuid.uuid4().hex}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"{template}'.encode())
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    # Not pytest's tmp_path: that lives under a root-only directory the postgres user could not enter.
    root = Path(tempfile.mkdtemp(prefix="conduit-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], cwd=root, check=True, capture_output=True)

    run(initdb, "--no-sync", "-A", "trust", "-U", "postgres", "-D", str(data))
    port = free_port()
    # Durability settings off: the data dir is thrown away after the session.
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start")
    try:
        server = PostgresServer(port=port, template="conduit_template")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(b'CREATE DATABASE "conduit_template"')
        migrate(server.url(server.template))
        yield server
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


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
