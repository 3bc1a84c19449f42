"""TLS channel credentials from PEM files, and the bearer-token header, for the inference clients."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import grpc

__all__ = ["bearer_metadata", "read_pem", "tls_credentials"]

_PEM_BEGIN = b"-----BEGIN "


def read_pem(path: str | PathLike[str], what: str) -> bytes:
    """The bytes of a PEM file; ``what`` names it in the error.

    Raises:
        ValueError: the file holds no PEM block.
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    # grpc reads PEM lazily and reports a bad file as UNAVAILABLE on the first call, far from its cause.
    if _PEM_BEGIN not in data:
        raise ValueError(f"{what} {path}: not a PEM file")
    return data


def tls_credentials(
    ca: str | PathLike[str] | None = None,
    *,
    cert: str | PathLike[str] | None = None,
    key: str | PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials for an inference client's ``credentials=``, read from PEM files.

    Example:
        >>> credentials = tls_credentials("ca.pem", cert="client.pem", key="client-key.pem")
        >>> client = InferenceClient("server.example:8001", credentials=credentials, token=token)

    Args:
        ca: CA certificate(s) the server's certificate must chain to; ``None`` trusts the system's roots.
        cert: Client certificate chain, for servers that require mutual TLS; needs ``key``.
        key: Private key of ``cert``.

    Raises:
        ValueError: ``cert`` without ``key`` or ``key`` without ``cert``, or a file that holds no PEM block.
        OSError: a file cannot be read.
    """
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=None if ca is None else read_pem(ca, "CA certificate"),
        private_key=None if key is None else read_pem(key, "client key"),
        certificate_chain=None if cert is None else read_pem(cert, "client certificate"),
    )


def bearer_metadata(token: str | None, metadata: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``metadata`` with ``authorization: Bearer <token>`` added when ``token`` is given.

    Raises:
        ValueError: the token is empty, or ``metadata`` already carries an ``authorization`` header.
    """
    headers = tuple(metadata)
    if token is None:
        return headers
    if not token:
        raise ValueError("the token is empty")
    if any(name.lower() == "authorization" for name, _ in headers):
        raise ValueError("give the token either as token= or as an authorization header in metadata, not both")
    return (*headers, ("authorization", f"Bearer {token}"))
