"""A throw-away PostgreSQL server on a free loopback port, started with ``initdb``/``pg_ctl`` from PATH or
``/usr/lib/postgresql/*/bin`` (as the ``postgres`` system user when run as root: ``initdb`` refuses root). Used by the
control-plane fixtures and by the loopback topology; ``make toolchains`` installs the server where it is missing."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

__all__ = ["PostgresMissing", "create_database", "free_port", "postgres_url", "throwaway_postgres"]


class PostgresMissing(RuntimeError):
    """PostgreSQL's server programs are not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_url(port: int, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the throw-away server (user ``postgres``, trust authentication)."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise PostgresMissing(f"PostgreSQL's {name} is not installed (looked on PATH and in /usr/lib/postgresql/*/bin)")
    return candidates[-1]


@contextmanager
def throwaway_postgres(max_connections: int = 100) -> Iterator[int]:
    """Start a server, yield its port, stop it and delete its data (durability off: nothing outlives it)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    # Not pytest's tmp_path: that lives under a root-only directory the postgres user could not enter.
    root = Path(tempfile.mkdtemp(prefix="conduit-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], cwd=root, check=True, capture_output=True)

    try:
        run(initdb, "--no-sync", "-A", "trust", "-U", "postgres", "-D", str(data))
        port = free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
            f"-c max_connections={max_connections}"
        )
        run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start")
        try:
            yield port
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(port: int, name: str, template: str | None = None) -> str:
    """Create ``name`` (a copy of ``template`` when given); its URL."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{copy}'.encode())
    return postgres_url(port, name)
