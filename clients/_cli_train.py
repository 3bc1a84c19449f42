"""``conduit datasets|train``: data sets into the control plane, and training runs from spec files into its registry.

Both use the control plane's connection flags (see ``_cli_control``); a data set is read and profiled on this
machine and only its Parquet file and profile travel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from clients._cli_control import SubParsers, command_parser
from clients._cli_import import add_import_options, check_file_options, import_spec, is_url, read_import
from clients._cli_output import emit, table, when
from clients.training import BUNDLED_PREFIX, fetch_dataset, import_outcome, read_source, register_result, reprofile
from contract import wire
from contract.client import SyncControlPlaneClient, collect
from contract.entities import DatasetVersion, ImportSpec
from contract.errors import ConduitError, ErrorCode
from trainers import ParityError, SpecError, describe_estimators, load_spec, train
from trainers.bundled import BUNDLED
from trainers.datasets import DEFAULT_NULL_VALUES, clean, split_null_values

__all__ = ["add_training_commands"]

STUDY_DB_ENV = "CONDUIT_CP_DB"


def _dataset_ref(text: str) -> tuple[str, str]:
    """``NAME`` (newest version) or ``NAME:VERSION``."""
    name, _, version = text.partition(":")
    return name, version


def _dataset_row(d: DatasetVersion) -> list[object]:
    return [d.name, d.version, d.profile.rows, len(d.profile.columns), d.target or "-", d.source, when(d.created_at)]


_DATASET_HEADERS = ("NAME", "VERSION", "ROWS", "COLUMNS", "TARGET", "SOURCE", "CREATED")


def _profile_text(d: DatasetVersion) -> str:
    head = (
        f"{d.name}:{d.version}  {d.profile.rows} rows  target {d.target or '-'}  source {d.source}\n"
        f"created {when(d.created_at)} by {d.created_by or '-'}  sha256 {d.sha256[:16]}…  {d.size_bytes} bytes\n"
    )
    rows = []
    for c in d.profile.columns:
        if c.kind == "numeric":
            summary = f"min {c.min:.4g}  mean {c.mean:.4g}  max {c.max:.4g}  {len(c.bin_counts)} bins"
        else:
            top = ", ".join(f"{t.value} ({t.count})" for t in c.top_categories[:3])
            summary = f"{c.distinct} distinct: {top}{' …' if c.distinct > 3 else ''}"
        rows.append([c.name, c.dtype, c.kind, f"{c.missing_rate:.1%}", summary])
    return head + table(("COLUMN", "DTYPE", "KIND", "MISSING", "SUMMARY"), rows)


def _import(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    name, target, description = args.name, args.target or "", args.description
    null_values = DEFAULT_NULL_VALUES if args.null_values is None else split_null_values(args.null_values)
    if args.spec is not None:
        # An import job's stored spec: the control plane runs this command with it, as the job's creator.
        spec = ImportSpec.from_json(args.spec.read_text())
        name, target, description = name or spec.name, target or spec.target, description or spec.description
        frame, source = read_import(spec, args, null_values), spec.source
    elif not name:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "give the data set's --name")
    elif is_url(args.source):
        spec = import_spec(args.source, args)
        frame, source = read_import(spec, args, null_values), spec.source
    else:
        check_file_options(args)
        frame, source = read_source(args.source, sql=args.sql, db=args.db, null_values=null_values)
    if not name:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the import spec names no data set; give --name")
    # Cleaning applies to the rows read, whatever their source.
    frame = clean(
        frame,
        casts=dict(args.cast),
        try_casts=dict(args.try_cast),
        filter=args.filter,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    done = import_outcome(client, frame, name, source=source, target=target, description=description)
    stored = done.dataset
    said = "unchanged (profile rebuilt)" if done.outcome == "profile rebuilt" else done.outcome
    emit(
        args,
        wire.dataset_version(stored),
        lambda: (
            f"{said} {stored.name}:{stored.version}  "
            f"({stored.profile.rows} rows, {len(stored.profile.columns)} columns)"
        ),
    )


def _reprofile(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    done = reprofile(client, *_dataset_ref(args.ref))
    stored = done.dataset
    said = "profile rebuilt" if done.outcome == "profile rebuilt" else "profile already current"
    emit(args, wire.dataset_version(stored), lambda: f"{said} {stored.name}:{stored.version}")


def _column_type(text: str) -> tuple[str, str]:
    """``COLUMN=TYPE``; the last ``=`` splits, so a column name may hold one."""
    column, equals, dtype = text.rpartition("=")
    if not equals or not column or not dtype:
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=TYPE (e.g. 'Body Mass (g)=float')")
    return column, dtype


def _list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    found = client.run(collect(lambda token: client.api.list_datasets(page_token=token), args.limit))
    emit(args, [wire.dataset_version(d) for d in found], lambda: table(_DATASET_HEADERS, map(_dataset_row, found)))


def _versions(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    found = client.run(collect(lambda token: client.api.list_dataset_versions(args.name, page_token=token), args.limit))
    emit(args, [wire.dataset_version(d) for d in found], lambda: table(_DATASET_HEADERS, map(_dataset_row, found)))


def _show(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    stored = client.run(client.api.get_dataset(*_dataset_ref(args.ref)))
    emit(args, wire.dataset_version(stored), lambda: _profile_text(stored))


def _download(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    name, version = _dataset_ref(args.ref)
    stored = client.run(client.api.download_dataset(name, args.output, version))
    emit(
        args,
        wire.dataset_version(stored),
        lambda: f"wrote {args.output} ({stored.name}:{stored.version}, {stored.size_bytes} bytes)",
    )


def _train(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    frame, stored = fetch_dataset(client, spec.dataset.name, spec.dataset.version or "")
    log(f"data set {stored.name}:{stored.version}: {frame.height} rows")
    study = args.study_db or os.environ.get(STUDY_DB_ENV) or None
    if spec.search is not None and study is None:
        log("search study kept in memory: pass --study-db URL (the control plane's database) to share it")
    try:
        result = train(spec, frame, dataset_version=stored.version, study_storage=study, log=log)
    except ParityError as exc:
        # Nothing is registered; the message says where the graph and the native model part ways.
        raise ParityError(f"not registered: {exc.message}", exc.report) from None
    registered = None
    if args.register or args.alias:
        name = args.model or (spec.registration.name if spec.registration else None)
        if not name:
            raise SpecError("--register needs a [register] name in the spec, or --model NAME")
        alias = args.alias or (spec.registration.alias if spec.registration else None)
        registered = register_result(
            client,
            result,
            model=name,
            aliases=[alias] if alias else [],
            description=spec.registration.description if spec.registration else "",
            log="\n".join(lines) + "\n",
        )
    if args.json:
        payload = {
            "dataset": {"name": stored.name, "version": stored.version},
            "metrics": result.metrics,
            "params": result.params,
            "parity": result.parity.describe(),
            "registered": None
            if registered is None
            else {"model": registered.model, "version": registered.version, "aliases": list(registered.aliases)},
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return
    print(table(("METRIC", "VALUE"), [(k, f"{v:.6g}") for k, v in sorted(result.metrics.items())]))
    if registered:
        aliases = f" ({', '.join(registered.aliases)})" if registered.aliases else ""
        print(f"registered {registered.model} version {registered.version}{aliases}")


def add_training_commands(sub: SubParsers) -> None:
    """Add ``datasets`` and ``train`` to the ``conduit`` parser."""
    datasets = sub.add_parser("datasets", help="data sets: import from files, SQL or URLs, list, show profiles")
    actions = datasets.add_subparsers(dest="action", required=True)
    p = command_parser(
        actions, "import", _import, "import a file, a URL, a bundled data set or a SQL query as a version"
    )
    p.add_argument(
        "source",
        nargs="?",
        help=f"a .csv, .parquet, .ndjson/.jsonl or .json file, an http(s):// or s3://bucket/key URL, or "
        f"{BUNDLED_PREFIX}NAME ({', '.join(sorted(BUNDLED))}); omit with --sql",
    )
    p.add_argument("--name", help="data set name (required)")
    p.add_argument("--target", help="the column models will predict")
    p.add_argument("--sql", metavar="QUERY", help="read the result of this query instead of a file")
    p.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the database --sql reads (sqlite:///…, postgresql…)")
    p.add_argument("--description", default="", help="free text stored with the version")
    add_import_options(p)
    cleaning = p.add_argument_group("cleaning (applied to the rows read, in this order, before versioning)")
    cleaning.add_argument(
        "--null-values",
        action="append",
        metavar="LIST",
        help="text values that mean missing, comma-separated, repeatable; replaces the default "
        f"{','.join(DEFAULT_NULL_VALUES)} (an empty CSV field is always missing; --null-values '' keeps only that)",
    )
    cleaning.add_argument(
        "--cast",
        action="append",
        default=[],
        type=_column_type,
        metavar="COLUMN=TYPE",
        help="cast a column (int, float, string, bool, date, datetime or a polars dtype); a value that does not "
        "parse fails the import",
    )
    cleaning.add_argument(
        "--try-cast",
        action="append",
        default=[],
        type=_column_type,
        metavar="COLUMN=TYPE",
        help="cast a column; values that do not parse become missing, counted on stderr",
    )
    cleaning.add_argument(
        "--filter",
        metavar="CONDITION",
        help="keep the rows where this SQL condition is true (the expressions of a spec's derived columns)",
    )
    p = command_parser(actions, "list", _list, "the newest version of every data set", listing=True)
    p.add_argument("--limit", type=int, help="at most this many")
    p = command_parser(actions, "versions", _versions, "versions of one data set, newest first", listing=True)
    p.add_argument("name")
    p.add_argument("--limit", type=int, help="at most this many")
    p = command_parser(actions, "show", _show, "one version with its profile (NAME or NAME:VERSION)")
    p.add_argument("ref", metavar="NAME[:VERSION]")
    p = command_parser(
        actions,
        "reprofile",
        _reprofile,
        "rebuild a version's profile made by an older Conduit from its rows (NAME or NAME:VERSION)",
    )
    p.add_argument("ref", metavar="NAME[:VERSION]")
    p = command_parser(actions, "download", _download, "write a version's Parquet file")
    p.add_argument("ref", metavar="NAME[:VERSION]")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")

    p = command_parser(
        sub,
        "train",
        _train,
        "train, evaluate and export a model from a spec file; --register stores it in the registry",
        epilog=describe_estimators(),
    )
    p.add_argument("spec", type=Path, metavar="SPEC.toml", help="training spec (see examples/)")
    p.add_argument("--register", action="store_true", help="register the model when its ONNX export passes parity")
    p.add_argument("--alias", help="register and point this alias at the new version (default: [register] alias)")
    p.add_argument("--model", help="registered model name (default: [register] name)")
    p.add_argument(
        "--study-db",
        metavar="URL",
        help=f"database of the search study, shared by workers: the control plane's ({STUDY_DB_ENV}); "
        "default: in memory",
    )
