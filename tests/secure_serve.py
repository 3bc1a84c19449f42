"""A `conduit serve` that requires TLS, a client certificate signed by the test CA, and a caller's token: the files
it needs, the flags that point it at them, and the running process.

    files = SecureFiles.create(tmp_path / "secure")
    with serving_securely(files, repository, tmp_path / "serve.log") as server:
        InferenceClient(server.target, credentials=files.credentials(), token=files.viewer_token)
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from contract.tokens import hash_token, new_token
from tests.conftest import CONDUIT, ServeProcess, free_port, wait_serving
from tests.pki import Authority, Issued

__all__ = ["SecureFiles", "SecureServer", "serving_securely"]


@dataclass(frozen=True)
class SecureFiles:
    """A CA, the server's and a client's certificates it issued, and a tokens file with a viewer and an admin."""

    ca: Authority
    server: Issued
    client: Issued
    tokens_file: Path
    viewer_token: str
    admin_token: str

    @classmethod
    def create(cls, directory: Path) -> SecureFiles:
        ca = Authority.create(directory / "ca")
        server = ca.issue(directory / "server", "localhost")
        client = ca.issue(directory / "client", "caller", client=True)
        viewer, admin = new_token(), new_token()
        tokens_file = directory / "tokens.toml"
        entries = [
            f'[[tokens]]\nname = "{role}"\nrole = "{role}"\nsha256 = "{hash_token(token)}"\n'
            for role, token in (("viewer", viewer), ("admin", admin))
        ]
        tokens_file.write_text("\n".join(entries))
        return cls(ca, server, client, tokens_file, viewer, admin)

    def serve_flags(self) -> list[str]:
        """The flags of `conduit serve` that make it require all of this."""
        return [
            *("--tls-cert", str(self.server.cert), "--tls-key", str(self.server.key)),
            *("--tls-client-ca", str(self.ca.cert), "--tokens-file", str(self.tokens_file)),
        ]

    def client_flags(self) -> list[str]:
        """The flags of a client (the CLI, the language examples) that trust the CA and present the client's cert."""
        return ["--tls-ca", str(self.ca.cert), "--tls-cert", str(self.client.cert), "--tls-key", str(self.client.key)]

    def credentials(self, *, client_certificate: bool = True) -> grpc.ChannelCredentials:
        """TLS trusting the CA, presenting the client's certificate unless told not to."""
        if not client_certificate:
            return grpc.ssl_channel_credentials(self.ca.cert_bytes())
        return grpc.ssl_channel_credentials(self.ca.cert_bytes(), self.client.key_bytes(), self.client.cert_bytes())


@dataclass(frozen=True)
class SecureServer:
    """A running `conduit serve` requiring mutual TLS and a token, and the files that get a caller in."""

    process: ServeProcess
    files: SecureFiles

    @property
    def target(self) -> str:
        return self.process.target


@contextlib.contextmanager
def serving_securely(files: SecureFiles, repository: Path, log: Path) -> Iterator[SecureServer]:
    """`conduit serve --model-repository repository` with ``files``' flags, until the block ends."""
    port, metrics_port = free_port(), free_port()
    args = [CONDUIT, "serve", "--model-repository", str(repository), "--grpc-port", str(port)]
    args += ["--metrics-port", str(metrics_port), *files.serve_flags()]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    served = ServeProcess(process, port, metrics_port, log)
    try:
        try:
            wait_serving(port, process=process, credentials=files.credentials())
        except Exception:
            raise RuntimeError(f"conduit serve did not start:\n{log.read_text()}") from None
        yield SecureServer(served, files)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.terminate(30)
        if process.poll() is None:
            process.kill()
            process.wait(10)
