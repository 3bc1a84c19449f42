"""The composition root: TLS, a busy port, the first admin, settings, and the process entry points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contract.errors import ConduitError, ErrorCode
from control_plane.app import ControlPlaneServer, main, migrate_main
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.settings import ControlPlaneSettings
from tests.conftest import self_signed_certificate

from .conftest import ADMIN_TOKEN, StartApi, bearer


async def test_tls(start_api: StartApi, sqlite_url: str, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    api = await start_api(
        sqlite_url, tls_cert=cert, tls_key=key, channel_credentials=credentials, channel_host="localhost"
    )
    me = await api.stub.WhoAmI(cp.WhoAmIRequest(), metadata=api.admin)
    assert (me.name, me.role) == ("admin", cp.ROLE_ADMIN)
    # The same port does not speak plaintext.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.server.port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cp_grpc.ControlPlaneStub(plain).WhoAmI(  # type: ignore[no-untyped-call]
                cp.WhoAmIRequest(), metadata=api.admin, timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_and_busy_port(start_api: StartApi, sqlite_url: str, tmp_path: Path) -> None:
    api = await start_api(sqlite_url)
    health = health_pb2_grpc.HealthStub(api.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="conduit.control.v1.ControlPlane"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    second = ControlPlaneServer(
        ControlPlaneSettings(home=tmp_path / "second", grpc_port=api.server.port, admin_token=ADMIN_TOKEN)
    )
    with pytest.raises(ConduitError) as busy:
        await second.start()
    await second.stop()
    assert busy.value.code is ErrorCode.UNAVAILABLE
    assert str(api.server.port) in busy.value.message


async def test_first_admin_gets_a_generated_token_once(tmp_path: Path) -> None:
    settings = ControlPlaneSettings(home=tmp_path / "home", grpc_port=0)
    first = ControlPlaneServer(settings)
    await first.start()
    token = first.admin_token
    assert token is not None and token.startswith("cdt_")
    async with grpc.aio.insecure_channel(first.target) as channel:
        stub = cp_grpc.ControlPlaneStub(channel)  # type: ignore[no-untyped-call]
        me = await stub.WhoAmI(cp.WhoAmIRequest(), metadata=bearer(token))
    assert (me.name, me.role) == ("admin", cp.ROLE_ADMIN)
    await first.stop()

    # Users exist now: a restart creates nobody and shows nothing, whatever CONDUIT_ADMIN_TOKEN says.
    again = ControlPlaneServer(settings.model_copy(update={"admin_token": ADMIN_TOKEN}))
    await again.start()
    assert again.admin_token is None
    async with grpc.aio.insecure_channel(again.target) as channel:
        stub = cp_grpc.ControlPlaneStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.WhoAmI(cp.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await again.stop()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    monkeypatch.setenv("CONDUIT_ADMIN_TOKEN", "cdt_from-env")
    monkeypatch.setenv("CONDUIT_CP_SERVER_TIMEOUT", "5")
    monkeypatch.setenv("CONDUIT_GRPC_PORT", "9999")  # conduit serve's flag: not ours
    settings = ControlPlaneSettings()
    assert (settings.home, settings.admin_token, settings.server_timeout) == (tmp_path, "cdt_from-env", 5.0)
    assert settings.grpc_port == 8100
    assert settings.db_url() == f"sqlite:///{tmp_path / 'registry.db'}"
    assert settings.artifacts_url() == str(tmp_path / "artifacts")
    assert "cdt_from-env" not in repr(settings)
    flags = ControlPlaneSettings(home=tmp_path / "flag", db="postgresql+psycopg://db/conduit", artifacts="s3://b/p")
    assert (flags.home, flags.db_url(), flags.artifacts_url()) == (
        tmp_path / "flag",
        "postgresql+psycopg://db/conduit",
        "s3://b/p",
    )


def test_invalid_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"home": tmp_path, "tls_cert": tmp_path / "missing.pem"}) == 2
    assert "--tls-cert" in capsys.readouterr().err
    assert main({"home": tmp_path, "grpc_port": 70000}) == 2
    assert "--grpc-port" in capsys.readouterr().err
    assert migrate_main({"home": tmp_path, "bogus": 1}) == 2
    assert "--bogus" in capsys.readouterr().err
    # Rules over two settings: each refusal is one line naming both.
    assert main({"home": tmp_path, "server_timeout": 30, "server_expiry": 10}) == 2
    error = capsys.readouterr().err.strip()
    assert "CONDUIT_CP_SERVER_EXPIRY must be at least CONDUIT_CP_SERVER_TIMEOUT" in error and "\n" not in error
    assert main({"home": tmp_path, "max_upload_bytes": 100, "max_spool_bytes": 99}) == 2
    assert "CONDUIT_CP_MAX_SPOOL_BYTES must be at least" in capsys.readouterr().err


def test_migrate_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_main({"home": tmp_path / "home"}) == 0
    assert "migrated" in capsys.readouterr().out
    assert (tmp_path / "home" / "registry.db").is_file()
    assert migrate_main({"home": tmp_path / "home"}) == 0
    assert "already at the newest schema" in capsys.readouterr().out
    assert migrate_main({"home": tmp_path, "db": "mysql://nope/nope"}) == 1


def test_main_runs_until_sigterm(tmp_path: Path) -> None:
    script = "import sys; from control_plane.app import main; sys.exit(main({'grpc_port': 0}))"
    env = {**os.environ, "CONDUIT_HOME": str(tmp_path / "home")}
    env.pop("CONDUIT_ADMIN_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        listening = process.stdout.readline()
        assert listening.startswith("conduit control-plane: listening on 127.0.0.1:"), listening
        port = int(listening.rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        shown = [line for line in process.stderr.read().splitlines() if "admin token (shown once)" in line]
        assert len(shown) == 1 and shown[0].startswith("conduit control-plane: admin token (shown once): cdt_")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
