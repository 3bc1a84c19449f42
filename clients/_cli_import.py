"""The options of an import from a URL, shared by ``conduit datasets import URL`` and ``conduit jobs add --import``.

On this machine a ``env:VAR`` header value is read from this process's environment; a job stores the reference and
the control plane reads the variable from its own environment when the job runs.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from contract.entities import IMPORT_FORMATS, ImportSpec
from contract.errors import ConduitError, ErrorCode
from contract.outbound import OutboundPolicy
from trainers import datasets as ds

__all__ = ["S3_ENDPOINT_ENV", "add_import_options", "import_spec", "is_url", "read_import"]

S3_ENDPOINT_ENV = "CONDUIT_CP_S3_ENDPOINT_URL"
"""The artifact store's S3 endpoint setting, also the default endpoint of ``s3://`` imports."""
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ANYWHERE = ("0.0.0.0/0", "::/0")
_URL_OPTIONS = ("records", "next", "header", "format", "outbound_allow")


def is_url(source: str | None) -> bool:
    """Whether ``source`` is a URL (``scheme://…``; ``ImportSpec`` says which schemes it reads) rather than a file or
    ``bundled:NAME``."""
    return bool(source and _URL.match(source))


def add_import_options(parser: argparse.ArgumentParser, *, outbound: bool = True) -> None:
    """The flags of an import from a URL."""
    group = parser.add_argument_group("import from a URL (http://, https://, s3://bucket/key)")
    group.add_argument(
        "--records", metavar="PATH", help="dot path to the list of records in each JSON page (data.items)"
    )
    group.add_argument(
        "--next",
        metavar="PATH",
        help='dot path to the next page\'s URL; without it a Link: rel="next" header is followed',
    )
    group.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="sent with every request; repeatable. A value env:VAR (or 'Bearer env:VAR') is read from the "
        "environment and never stored",
    )  # fmt: skip
    group.add_argument("--format", choices=IMPORT_FORMATS, help="default: from the URL's suffix, then Content-Type")
    group.add_argument("--max-pages", type=int, default=100, help="fail past this many pages (default 100)")
    group.add_argument("--max-bytes", type=int, default=256 * 1024 * 1024, help="fail past this many bytes (256 MiB)")
    group.add_argument("--max-rows", type=int, default=10_000_000, help="fail past this many rows (default 10M)")
    group.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per request (default 30)")
    group.add_argument(
        "--attempts", type=int, default=4, help="tries per request on 429, 5xx or a failed connection (default 4)"
    )
    if outbound:
        group.add_argument(
            "--outbound-allow", metavar="LIST",
            help="reach only public addresses and these hosts/CIDRs (as import jobs do); default: anywhere this "
            "machine reaches",
        )  # fmt: skip
        group.add_argument(
            "--s3-endpoint-url",
            metavar="URL",
            help=f"S3-compatible endpoint of s3:// URLs (default ${S3_ENDPOINT_ENV})",
        )
        group.add_argument("--spec", type=Path, metavar="FILE.json", help="an import spec as an import job stores it")


def import_spec(
    url: str, args: argparse.Namespace, *, name: str = "", target: str = "", description: str = ""
) -> ImportSpec:
    """The import the flags describe. Raises INVALID_ARGUMENT for a bad URL, header or limit."""
    return ImportSpec(
        url,
        records=args.records or "",
        next=args.next or "",
        headers=tuple(ImportSpec.parse_header(text) for text in args.header),
        format=args.format or "",
        max_pages=args.max_pages,
        max_bytes=args.max_bytes,
        max_rows=args.max_rows,
        timeout_s=args.timeout,
        attempts=args.attempts,
        name=name,
        target=target,
        description=description,
    )


def check_file_options(args: argparse.Namespace) -> None:
    """Refuse URL-only flags given with a file or SQL source."""
    given = [f"--{option.replace('_', '-')}" for option in _URL_OPTIONS if getattr(args, option, None)]
    if given:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{', '.join(given)}: only for an http(s):// or s3:// source")


def read_import(spec: ImportSpec, args: argparse.Namespace, null_values: Sequence[str] = ()) -> pl.DataFrame:
    """Fetch and read ``spec`` from this machine, ``env:VAR`` header values from this process's environment;
    ``null_values`` are the text values that mean missing."""
    # Here the user reaches what their own machine reaches; --outbound-allow applies the control plane's rule.
    policy = OutboundPolicy(_ANYWHERE if args.outbound_allow is None else args.outbound_allow)
    endpoint = args.s3_endpoint_url or os.environ.get(S3_ENDPOINT_ENV) or None
    return ds.read_remote(
        spec,
        policy=policy,
        environ=os.environ,
        s3_endpoint_url=endpoint,
        explain_refusals=args.outbound_allow is None,
        null_values=null_values,
    )
