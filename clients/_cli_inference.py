"""The flags of every command that calls an inference server: TLS files and the bearer token."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from clients._tls import bearer_metadata, read_pem

__all__ = ["InferenceConnection", "add_inference_flags", "inference_connection", "pem_flag"]


@dataclass(frozen=True)
class InferenceConnection:
    """How to reach an inference server: channel credentials (``None``: plaintext) and the headers of every call."""

    credentials: grpc.ChannelCredentials | None
    metadata: tuple[tuple[str, str], ...]


def add_inference_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--token``, ``--tls-ca``, ``--tls-cert`` and ``--tls-key`` to ``parser``."""
    group = parser.add_argument_group("inference server connection")
    group.add_argument("--token", help="bearer token, sent as 'authorization: Bearer TOKEN' (CONDUIT_TOKEN)")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", help="PEM CA of the server: use TLS")
    group.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM client certificate, for mutual TLS (with --tls-key)"
    )
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")


def pem_flag(path: Path, flag: str) -> bytes:
    """The PEM file given to ``flag``.

    Raises:
        ValueError: the file cannot be read or holds no PEM block; the message names the flag and the file.
    """
    try:
        return read_pem(path, flag)
    except OSError as exc:
        raise ValueError(f"{flag} {path}: {exc.strerror or exc}") from None


def inference_connection(args: argparse.Namespace) -> InferenceConnection:
    """The connection the flags of ``add_inference_flags`` ask for; the token falls back to ``CONDUIT_TOKEN`` (an empty
    ``--token`` counts as not given, see ``clients._cli_flags``).

    TLS is on when any of the three files is given; without ``--tls-ca`` the system's roots are trusted.

    Raises:
        ValueError: one of a certificate and its key without the other, a file that cannot be read or holds no PEM
            block, or an empty token; the message names the flag.
    """
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert needs --tls-key" if args.tls_key is None else "--tls-key needs --tls-cert")
    token = args.token if args.token is not None else os.environ.get("CONDUIT_TOKEN") or None
    if token is not None and not token.strip():
        raise ValueError("the token is empty (--token, or CONDUIT_TOKEN when --token is empty or not given)")
    metadata = bearer_metadata(token, ())
    if args.tls_ca is None and args.tls_cert is None:
        return InferenceConnection(None, metadata)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=None if args.tls_ca is None else pem_flag(args.tls_ca, "--tls-ca"),
        private_key=None if args.tls_key is None else pem_flag(args.tls_key, "--tls-key"),
        certificate_chain=None if args.tls_cert is None else pem_flag(args.tls_cert, "--tls-cert"),
    )
    return InferenceConnection(credentials, metadata)
