"""A repository-mode server: open only on loopback unless told, callers authenticated by a tokens file of hashes,
and load and unload only with model control explicit, by an admin."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from contract.entities import Role
from contract.tokens import hash_token, new_token
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.conftest import CONDUIT
from tests.inference_server.conftest import StartServer
from tests.inference_server.follower.test_follower import eventually

from .conftest import TokensFile, bearer


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _unload(stub: pb_grpc.GRPCInferenceServiceStub, token: str | None) -> object:
    return stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="forest"), metadata=bearer(token))


async def test_tokens_file_authenticates_and_admins_alone_control_models(
    start_server: StartServer, repository: Path, tokens_file: TokensFile
) -> None:
    _, port, _ = await start_server(repository, tokens_file=tokens_file.path, model_control="explicit")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        index = stub.RepositoryIndex(pb.RepositoryIndexRequest())
        assert (await _code(index))[0] is grpc.StatusCode.UNAUTHENTICATED
        for role in (Role.VIEWER, Role.MAINTAINER):
            request = pb.RepositoryIndexRequest()
            assert (await _code(stub.RepositoryIndex(request, metadata=bearer(tokens_file.tokens[role]))))[0] is (
                grpc.StatusCode.OK
            )
            code, details = await _code(_unload(stub, tokens_file.tokens[role]))
            assert code is grpc.StatusCode.PERMISSION_DENIED
            assert f"{role.value}-user" in details
        assert (await _code(_unload(stub, tokens_file.tokens[Role.ADMIN])))[0] is grpc.StatusCode.OK
        ready = await stub.ModelReady(
            pb.ModelReadyRequest(name="forest"), metadata=bearer(tokens_file.tokens[Role.ADMIN])
        )
        assert not ready.ready


async def test_model_control_is_off_by_default(start_server: StartServer, repository: Path) -> None:
    _, port, _ = await start_server(repository, model_control="none")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        code, details = await _code(_unload(stub, None))
        assert code is grpc.StatusCode.FAILED_PRECONDITION
        assert "--model-control explicit" in details
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="forest"))).ready


async def test_an_edited_tokens_file_takes_effect_and_a_broken_edit_keeps_the_previous_tokens(
    start_server: StartServer, repository: Path, tokens_file: TokensFile, caplog: pytest.LogCaptureFixture
) -> None:
    _, port, _ = await start_server(repository, tokens_file=tokens_file.path)
    viewer = tokens_file.tokens[Role.VIEWER]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

        async def code(token: str) -> grpc.StatusCode:
            return (await _code(stub.ServerMetadata(pb.ServerMetadataRequest(), metadata=bearer(token))))[0]

        async def becomes(token: str, expected: grpc.StatusCode) -> None:
            async def reached() -> bool:
                return await code(token) is expected

            await eventually(reached, f"{expected.name} for the edited token")  # the file is checked every 2 s

        assert await code(viewer) is grpc.StatusCode.OK
        newcomer = new_token()
        text = tokens_file.path.read_text()
        kept = text.replace(hash_token(viewer), hash_token(newcomer))
        tokens_file.path.write_text(kept)
        await becomes(newcomer, grpc.StatusCode.OK)
        assert await code(viewer) is grpc.StatusCode.UNAUTHENTICATED
        # A clear token pasted where its hash belongs: refused, and the tokens before it keep working.
        tokens_file.path.write_text(kept + f'\n[[tokens]]\nname = "oops"\nrole = "viewer"\nsha256 = "{viewer}"\n')

        async def warned() -> bool:
            return "keeping the previous tokens" in caplog.text

        await eventually(warned, "the broken edit reported")
        assert viewer not in caplog.text
        assert await code(newcomer) is grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "without authentication: give --tokens-file, or --no-auth"),
        (["--tls-cert", "{cert}"], "set both --tls-cert and --tls-key"),
        (["--tokens-file", "{tokens}", "--no-auth"], "--no-auth contradicts --tokens-file"),
        (["--tokens-file", "{bad_tokens}"], "sha256 must be 64 lower-case hex digits"),
        (["--tls-cert", "{cert}", "--tls-key", "{other_key}"], "TLS files"),
    ],
)
def test_unsafe_or_broken_security_settings_exit_with_one_line(
    tmp_path: Path, repository: Path, tokens_file: TokensFile, args: list[str], message: str
) -> None:
    from tests.pki import Authority

    ca = Authority.create(tmp_path / "ca")
    server, other = ca.issue(tmp_path / "server"), ca.issue(tmp_path / "other", "other")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tokens]]\nname = "x"\nrole = "viewer"\nsha256 = "cdt_a-clear-token"\n')
    values = {"cert": server.cert, "other_key": other.key, "tokens": tokens_file.path, "bad_tokens": bad}
    argv = [CONDUIT, "serve", "--model-repository", str(repository), "--grpc-port", "0", "--metrics-port", "0"]
    argv += [a.format(**values) for a in args]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode in (1, 2), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "cdt_a-clear-token" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_no_auth_on_a_public_address_starts_and_says_so(start_serve, repository: Path) -> None:  # type: ignore[no-untyped-def]
    served = start_serve(repository, "--host", "0.0.0.0", "--no-auth")
    served.terminate()
    assert "authentication is off (--no-auth): anyone who reaches 0.0.0.0" in served.log.read_text()
