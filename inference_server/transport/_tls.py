"""TLS on the inference port, with certificates re-read when their files change (rotation without a restart)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import NamedTuple

import grpc

from contract.errors import ConduitError, ErrorCode
from inference_server._files import FileStamp, file_stamp

__all__ = ["Pem", "ReloadingCertificates"]

log = logging.getLogger("conduit.serve")


class Pem(NamedTuple):
    """A certificate chain, its key and the CAs of callers' certificates (mutual TLS), as PEM."""

    cert: bytes
    key: bytes
    client_ca: bytes | None


class ReloadingCertificates:
    """Server credentials from PEM files that gRPC asks for again at every new connection's handshake (the native
    front polls ``changed`` instead).

    The files are read again only when one of them changed (size, modification time or inode: what a rename into
    place changes), and taken only when the key matches the certificate, so a rotation caught half-written keeps the
    previous pair serving until it is complete. Connections already open keep the certificate they started with.

    Args:
        cert: PEM certificate chain.
        key: PEM private key of ``cert``.
        client_ca: PEM CA certificates that must have signed the caller's certificate (mutual TLS); ``None``: no
            client certificate is asked for.
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self._files = (cert, key) if client_ca is None else (cert, key, client_ca)
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._stamp = self._stat()
        try:
            initial = self._read()
        except ValueError as exc:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        self._initial = initial
        self.reloads = 0
        """Times a changed certificate was taken."""

    def credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port``."""
        return grpc.dynamic_ssl_server_credentials(
            _configuration(self._initial),
            # gRPC documents None as "unchanged"; the type stubs leave it out.
            self._fetch,  # type: ignore[arg-type]
            require_client_authentication=self._client_ca is not None,
        )

    def _stat(self) -> tuple[FileStamp, ...]:
        return tuple(file_stamp(path) for path in self._files)

    def _read(self) -> Pem:
        """The files now.

        Raises:
            ValueError: a file cannot be read, or the key does not match the certificate.
        """
        try:
            # The standard library's TLS context is the one check that the key belongs to the certificate.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self._cert, self._key)
            client_ca = self._client_ca.read_bytes() if self._client_ca is not None else None
            if client_ca is not None:
                ssl.create_default_context(cadata=client_ca.decode("ascii"))
            pem = Pem(self._cert.read_bytes(), self._key.read_bytes(), client_ca)
        except (OSError, ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"TLS files {', '.join(map(str, self._files))}: {exc}") from None
        return pem

    def pem(self) -> Pem:
        """The files as read at start."""
        return self._initial

    def changed(self) -> Pem | None:
        """The files, when they changed since last asked and hold a valid pair; ``None`` otherwise (a broken state is
        reported once, and tried again when the files change again)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            pem = self._read()
        except ValueError as exc:
            log.warning("keeping the previous TLS certificate: %s", exc)
            return None
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self._cert)
        return pem

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC at every handshake, on its own thread: one stat per file when nothing changed.
        pem = self.changed()
        return None if pem is None else _configuration(pem)


def _configuration(pem: Pem) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(pem.key, pem.cert)], root_certificates=pem.client_ca)
