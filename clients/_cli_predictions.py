"""``conduit predictions list|export``: the prediction logs inference servers sampled, as the control plane keeps
them (one Parquet file per flush and model version).

Uses the control plane's connection flags (see ``_cli_control``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import polars as pl

from clients._cli_control import SubParsers, _since, command_parser
from clients._cli_output import emit, table, when
from contract import wire
from contract.client import SyncControlPlaneClient, collect
from contract.entities import PredictionLog, VersionRef
from contract.errors import ConduitError, ErrorCode

__all__ = ["add_prediction_commands"]

_HEADERS = ("VERSION", "FIRST (UTC)", "LAST (UTC)", "ROWS", "BYTES", "SERVER", "SHA256")


def _span(ref: VersionRef, args: argparse.Namespace) -> str:
    target = ref.model + (f"@{ref.alias}" if ref.alias else f":{ref.version}" if ref.version else "")
    return f"{target} since {args.since:%Y-%m-%d %H:%M:%S} UTC" if args.since else target


def _logs(client: SyncControlPlaneClient, args: argparse.Namespace) -> tuple[VersionRef, list[PredictionLog]]:
    ref = VersionRef.parse(args.ref)
    return ref, client.run(
        collect(lambda token: client.api.list_prediction_logs(ref, since=args.since, page_token=token))
    )


def _list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    ref, logs = _logs(client, args)

    def text() -> str:
        if not logs:
            return f"no prediction logs of {_span(ref, args)}"
        rows = [
            [log.version, when(log.first_at), when(log.last_at), log.rows, log.size_bytes, log.server,
             log.sha256[:12]]
            for log in logs
        ]  # fmt: skip
        total = sum(log.rows for log in logs)
        return f"{table(_HEADERS, rows)}\n{len(logs)} file(s), {total} row(s)"

    emit(args, [wire.prediction_log(log) for log in logs], text)


def _partial(output: Path) -> Path:
    """An empty file beside ``output`` to write the export into: made before any download, so that an output that
    cannot be written fails at once rather than after every file came."""
    if output.is_dir():
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot write {output}: it is a directory")
    folder = output.parent if str(output.parent) else Path(".")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot write {output}: {exc.strerror}") from None
    os.close(descriptor)
    return Path(temporary)


def _conflicts(tables: list[tuple[int, pl.DataFrame]]) -> str:
    """The columns whose types differ between versions beyond what a cast unites, each with its types."""
    found = []
    for name in dict.fromkeys(c for _, t in tables for c in t.columns):
        having = [(version, t.schema[name]) for version, t in tables if name in t.columns]
        try:
            pl.concat([pl.DataFrame(schema={name: dtype}) for _, dtype in having], how="diagonal_relaxed")
        except pl.exceptions.PolarsError:
            types = {str(dtype): version for version, dtype in having}
            found.append(f"column {name!r} is " + ", ".join(f"{t} in version {v}" for t, v in types.items()))
    return "; ".join(found) or "their columns cannot be united"


def _export(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    output: Path = args.output
    partial = _partial(output)
    try:
        ref, logs = _logs(client, args)
        if not logs:
            raise ConduitError(ErrorCode.NOT_FOUND, f"no prediction logs of {_span(ref, args)}")
        with tempfile.TemporaryDirectory(prefix="conduit-predictions-") as scratch:
            tables = []
            for i, log in enumerate(logs):
                path = Path(scratch) / f"{i}.parquet"
                client.run(client.api.download_prediction_log(log.sha256, path))
                tables.append((log.version, pl.read_parquet(path)))
        # Versions may differ in their tensors: their columns are united, missing ones null, types cast to a common
        # one where there is one (Int64 and Float32 to Float64); a scalar and a list column have none.
        try:
            frame = pl.concat([t for _, t in tables], how="diagonal_relaxed").sort("time", maintain_order=True)
        except pl.exceptions.PolarsError:
            raise ConduitError(
                ErrorCode.FAILED_PRECONDITION,
                f"cannot export {_span(ref, args)} into one file: {_conflicts(tables)}; "
                "export one version at a time (NAME:VERSION)",
            ) from None
        if args.since is not None:
            frame = frame.filter(pl.col("time") >= args.since)
        frame.write_parquet(partial, compression="zstd")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {frame.height} row(s) from {len(logs)} file(s) to {output}")


def add_prediction_commands(sub: SubParsers) -> None:
    """Add ``predictions`` to the ``conduit`` parser."""
    predictions = sub.add_parser("predictions", help="sampled prediction logs: list them, export them to Parquet")
    actions = predictions.add_subparsers(dest="action", required=True)
    since_help = "only rows from then on: 15m, 2h, 7d ago, or an ISO 8601 time (default: all kept)"
    p = command_parser(
        actions, "list", _list, "the prediction log files of a model version (NAME alone: every version)", listing=True
    )
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]")
    p.add_argument("--since", type=_since, default=None, metavar="WHEN", help=since_help)
    p = command_parser(
        actions,
        "export",
        _export,
        "download a model version's prediction logs (NAME alone: every version) into one Parquet file, by time",
    )
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]")
    p.add_argument("--since", type=_since, default=None, metavar="WHEN", help=since_help)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.parquet")
