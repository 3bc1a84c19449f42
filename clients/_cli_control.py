"""``conduit models|deploy|servers|users|audit``: the control plane API as commands.

Each command reads the control plane's address and a token from ``--control-plane``/``--token`` or from
``CONDUIT_CONTROL_PLANE``/``CONDUIT_TOKEN`` (and a CA certificate from ``--ca``/``CONDUIT_CONTROL_PLANE_CA`` for
TLS), calls one RPC, and prints a table, or JSON with ``--json``. Errors print one line and exit with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from clients.control_plane import ControlPlaneClient, parse_ref
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "SubParsers",
    "add_control_commands",
    "command_parser",
    "emit",
    "normalize_argv",
    "run_control_command",
    "table",
    "when",
]

DEFAULT_ADDRESS = "127.0.0.1:8100"
ROLES = {"viewer": cp.ROLE_VIEWER, "maintainer": cp.ROLE_MAINTAINER, "server": cp.ROLE_SERVER, "admin": cp.ROLE_ADMIN}
DEPLOY_ACTIONS = ("rollback", "list", "remove")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

Handler = Callable[[ControlPlaneClient, argparse.Namespace], Any]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# -- argument types ----------------------------------------------------------------------------------------------


def _pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"--{what} {value!r}: expected KEY=VALUE")
        pairs[key] = item
    return pairs


def _metrics(values: Sequence[str] | None) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, value in _pairs(values, "metric").items():
        try:
            metrics[key] = float(value)
        except ValueError:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"--metric {key}={value}: not a number") from None
    return metrics


def _since(text: str) -> datetime:
    """``15m``, ``2h``, ``7d`` ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    match = _DURATION.match(text)
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 15m, 2h, 7d or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text}: a percentage between 0 and 100")
    return value


# -- output ------------------------------------------------------------------------------------------------------


def _as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def when(message: Message, field: str) -> str:
    if not message.HasField(field):
        return "-"
    moment: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(headers)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _mapping(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def emit(args: argparse.Namespace, data: Message | Sequence[Message], text: Callable[[], str]) -> None:
    if args.json:
        payload: Any = [_as_dict(m) for m in data] if isinstance(data, Sequence) else _as_dict(data)
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        print(text())


def _version_text(version: cp.ModelVersion) -> str:
    lines = [
        f"model        {version.model}",
        f"version      {version.version}",
        f"aliases      {', '.join(version.aliases) or '-'}",
        f"sha256       {version.sha256}",
        f"size         {version.size_bytes} bytes",
        f"created      {when(version, 'created_at')} by {version.created_by}",
        f"metrics      {_mapping(version.metrics)}",
        f"params       {_mapping(version.params)}",
        f"tags         {_mapping(version.tags)}",
    ]
    lineage = version.lineage
    if lineage.dataset or lineage.dataset_version or lineage.code_version or lineage.parent_version:
        lines.append(
            f"lineage      dataset={lineage.dataset or '-'}:{lineage.dataset_version or '-'} "
            f"code={lineage.code_version or '-'} parent={lineage.parent_version or '-'}"
        )
    if version.description:
        lines.append(f"description  {version.description}")
    for kind, tensors in (("input", version.inputs), ("output", version.outputs)):
        for tensor in tensors:
            shape = ",".join(str(d) for d in tensor.shape)
            lines.append(f"{kind:<12} {tensor.name} {tensor.datatype} [{shape}]")
    return "\n".join(lines)


def _deployment_row(d: cp.Deployment) -> list[object]:
    target = "(removed)" if d.undeployed else (f"@{d.alias}" if d.alias else f":{d.version}")
    canary = f"v{d.canary_version} {d.canary_percent:g}%" if d.canary_version else "-"
    serving = d.resolved_version or "-"
    return [
        d.id,
        d.pool,
        d.model,
        target,
        serving,
        canary,
        "yes" if d.active else "",
        when(d, "created_at"),
        d.created_by,
    ]


# -- handlers ----------------------------------------------------------------------------------------------------


def _models_register(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    lineage = cp.Lineage(
        dataset=args.dataset or "",
        dataset_version=args.dataset_version or "",
        code_version=args.code_version or "",
        training_spec=args.training_spec.read_text() if args.training_spec else "",
        parent_version=args.parent_version or 0,
    )
    version = client.register_version(
        args.name,
        args.file,
        metrics=_metrics(args.metric),
        params=_pairs(args.param, "param"),
        tags=_pairs(args.tag, "tag"),
        lineage=lineage,
        description=args.description or "",
        aliases=args.alias or [],
    )
    emit(args, version, lambda: str(version.version))


def _models_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    models = client.list_models(include_archived=args.all)
    rows = [
        [m.name, m.latest_version or "-", _mapping(m.aliases), "archived" if m.archived else "", when(m, "created_at")]
        for m in models
    ]
    emit(args, models, lambda: table(["MODEL", "LATEST", "ALIASES", "", "CREATED"], rows))


def _models_show(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    version = client.get_version(parse_ref(args.ref))
    emit(args, version, lambda: _version_text(version))


def _models_versions(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    versions = client.list_versions(args.name, tags=_pairs(args.tag, "tag"), limit=args.limit)
    rows = [
        [v.version, ", ".join(v.aliases) or "-", _mapping(v.metrics), _mapping(v.tags), when(v, "created_at")]
        for v in versions
    ]
    emit(args, versions, lambda: table(["VERSION", "ALIASES", "METRICS", "TAGS", "CREATED"], rows))


def _models_alias(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    if args.delete:
        if args.version is not None:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "give either VERSION or --delete, not both")
        version = client.delete_alias(args.name, args.alias)
        print(f"deleted {args.name}@{args.alias} (was version {version})")
        return
    if args.version is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "missing VERSION (or --delete)")
    alias = client.set_alias(args.name, args.alias, args.version)
    moved = f" (was {alias.previous_version})" if alias.previous_version else ""
    emit(args, alias, lambda: f"{alias.model}@{alias.alias} -> {alias.version}{moved}")


def _models_create(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    model = client.create_model(args.name, args.description or "")
    emit(args, model, lambda: f"created model {model.name}")


def _models_archive(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    model = client.archive_model(args.name)
    emit(args, model, lambda: f"archived model {model.name}")


def _models_download(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    header = client.download(parse_ref(args.ref), args.output)
    print(f"wrote {args.output} (version {header.version}, {header.size_bytes} bytes, sha256 {header.sha256})")


def _deploy_apply(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    ref = parse_ref(args.target)
    if not ref.HasField("alias") and not ref.HasField("version"):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{args.target!r}: deploy NAME@ALIAS or NAME:VERSION")
    if (args.canary is None) != (args.percent is None):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "--canary VERSION and --percent P go together")
    deployment = client.deploy(
        args.pool,
        ref.model,
        alias=ref.alias,
        version=ref.version,
        canary_version=args.canary or 0,
        canary_percent=args.percent or 0.0,
    )
    canary = f", canary version {deployment.canary_version} at {deployment.canary_percent:g}%" if args.canary else ""
    emit(
        args,
        deployment,
        lambda: (
            f"deployed {args.target} to pool {deployment.pool} "
            f"(serving version {deployment.resolved_version}{canary}; deployment {deployment.id})"
        ),
    )


def _deploy_rollback(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    deployment = client.rollback(args.pool, args.name)
    target = f"@{deployment.alias}" if deployment.alias else f":{deployment.version}"
    emit(
        args,
        deployment,
        lambda: (
            f"rolled back {args.name} on pool {deployment.pool} to {args.name}{target} "
            f"(serving version {deployment.resolved_version or '-'}; deployment {deployment.id})"
        ),
    )


def _deploy_remove(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    deployment = client.undeploy(args.pool, args.name)
    emit(args, deployment, lambda: f"removed {args.name} from pool {deployment.pool}")


def _deploy_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    deployments = client.list_deployments(pool=args.pool or "", model=args.model or "", history=args.history)
    headers = ["ID", "POOL", "MODEL", "TARGET", "SERVING", "CANARY", "ACTIVE", "CREATED", "BY"]
    emit(args, deployments, lambda: table(headers, [_deployment_row(d) for d in deployments]))


def _servers_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    servers = client.list_servers(pool=args.pool or "")
    rows = [
        [
            s.name,
            s.pool,
            s.address,
            "alive" if s.alive else "silent",
            when(s, "last_heartbeat"),
            " ".join(f"{m.model}:{m.version}={m.state}" for m in s.models) or "-",
        ]
        for s in servers
    ]
    emit(args, servers, lambda: table(["SERVER", "POOL", "ADDRESS", "STATE", "HEARTBEAT", "MODELS"], rows))


def _role_name(role: int) -> str:
    return next((name for name, value in ROLES.items() if value == role), "?")


def _users_create(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    created = client.create_user(args.name, ROLES[args.role])
    emit(args, created, lambda: created.token)
    if not args.json:
        print(f"created {args.role} {args.name}; the token above is shown once", file=sys.stderr)


def _users_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    users = client.list_users()
    rows = [[u.name, _role_name(u.role), "disabled" if u.disabled else "", when(u, "created_at")] for u in users]
    emit(args, users, lambda: table(["USER", "ROLE", "", "CREATED"], rows))


def _users_token(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    print(client.create_token(args.name))


def _users_disable(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    user = client.disable_user(args.name)
    emit(args, user, lambda: f"disabled {user.name}")


def _users_whoami(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    user = client.whoami()
    emit(args, user, lambda: f"{user.name} ({_role_name(user.role)})")


def _audit(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    entries = client.list_audit(
        since=args.since,
        actor=args.actor or "",
        action=args.action or "",
        target_prefix=args.target or "",
        limit=args.limit,
    )

    def change(entry: cp.AuditEntry) -> str:
        return f"{entry.before_json or '-'} -> {entry.after_json or '-'}"

    rows = [[when(e, "at"), e.actor, e.action, e.target, change(e)] for e in entries]
    emit(args, entries, lambda: table(["AT (UTC)", "ACTOR", "ACTION", "TARGET", "CHANGE"], rows))


# -- parsers -----------------------------------------------------------------------------------------------------


def _connection(parser: argparse.ArgumentParser, *, listing: bool = False) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--control-plane",
        metavar="ADDR",
        help=f"control plane address (CONDUIT_CONTROL_PLANE, default {DEFAULT_ADDRESS})",
    )
    group.add_argument("--token", help="bearer token (CONDUIT_TOKEN)")
    group.add_argument("--ca", type=Path, metavar="FILE", help="CA certificate for TLS (CONDUIT_CONTROL_PLANE_CA)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts" if listing else "print JSON")


def command_parser(
    sub: SubParsers, name: str, handler: Handler, help_text: str, *, listing: bool = False, epilog: str | None = None
) -> argparse.ArgumentParser:
    """A command that calls the control plane: its connection flags, ``--json``, and ``handler`` to run it."""
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    _connection(parser, listing=listing)
    parser.set_defaults(handler=handler)
    return parser


def _models_parsers(sub: SubParsers) -> None:
    models = sub.add_parser("models", help="the model registry: register, list, show, alias, archive")
    msub = models.add_subparsers(dest="action", required=True)
    p = command_parser(msub, "register", _models_register, "upload an ONNX file as the model's next version; prints it")
    p.add_argument("name", metavar="NAME")
    p.add_argument("file", type=Path, metavar="FILE.onnx")
    p.add_argument("--metric", action="append", metavar="K=V", help="a metric (number); repeatable")
    p.add_argument("--param", action="append", metavar="K=V", help="a training parameter; repeatable")
    p.add_argument("--tag", action="append", metavar="K=V", help="a tag; repeatable")
    p.add_argument("--alias", action="append", metavar="ALIAS", help="point this alias at the new version; repeatable")
    p.add_argument("--description")
    p.add_argument("--dataset", help="lineage: data set name")
    p.add_argument("--dataset-version", help="lineage: data set version")
    p.add_argument("--code-version", help="lineage: code revision")
    p.add_argument("--training-spec", type=Path, metavar="FILE", help="lineage: the training spec file")
    p.add_argument("--parent-version", type=int, help="lineage: the version this one derives from")
    p = command_parser(msub, "list", _models_list, "list models with their latest version and aliases", listing=True)
    p.add_argument("--all", action="store_true", help="include archived models")
    p = command_parser(msub, "show", _models_show, "show a version: NAME (latest), NAME@ALIAS or NAME:VERSION")
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]")
    p = command_parser(msub, "versions", _models_versions, "list a model's versions, newest first", listing=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--tag", action="append", metavar="K=V", help="only versions with this tag; repeatable")
    p.add_argument("--limit", type=int, default=None)
    p = command_parser(msub, "alias", _models_alias, "point ALIAS at VERSION, or delete it with --delete")
    p.add_argument("name", metavar="NAME")
    p.add_argument("alias", metavar="ALIAS")
    p.add_argument("version", metavar="VERSION", type=int, nargs="?")
    p.add_argument("--delete", action="store_true")
    p = command_parser(msub, "create", _models_create, "create an empty model")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description")
    p = command_parser(msub, "archive", _models_archive, "archive a model (keeps its versions, takes no new ones)")
    p.add_argument("name", metavar="NAME")
    p = command_parser(msub, "download", _models_download, "download a version's ONNX artifact")
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")


def _deploy_parsers(sub: SubParsers) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="put a model on a server pool; rollback; list",
        usage="conduit deploy NAME@ALIAS|NAME:VERSION --pool POOL [--canary VERSION --percent P]\n"
        "       conduit deploy rollback NAME --pool POOL\n"
        "       conduit deploy remove NAME --pool POOL\n"
        "       conduit deploy list [--pool POOL] [--history]",
    )
    dsub = deploy.add_subparsers(dest="action", required=True)
    p = command_parser(
        dsub, "to", _deploy_apply, "deploy NAME@ALIAS (followed as the alias moves) or NAME:VERSION (pinned)"
    )
    p.usage = "conduit deploy NAME@ALIAS|NAME:VERSION [--pool POOL] [--canary VERSION --percent P] [--json]"
    p.add_argument("target", metavar="NAME@ALIAS|NAME:VERSION")
    p.add_argument("--pool", default="default", help="server pool (default: default)")
    p.add_argument("--canary", type=int, metavar="VERSION", help="send a share of traffic to this version")
    p.add_argument("--percent", type=_percent, metavar="P", help="the canary's share, 0-100")
    p = command_parser(dsub, "rollback", _deploy_rollback, "bring back the deployment before the current one")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--pool", default="default")
    p = command_parser(dsub, "remove", _deploy_remove, "stop serving a model on a pool")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--pool", default="default")
    p = command_parser(
        dsub, "list", _deploy_list, "list active deployments (or every one with --history)", listing=True
    )
    p.add_argument("--pool")
    p.add_argument("--model")
    p.add_argument("--history", action="store_true")


def _other_parsers(sub: SubParsers) -> None:
    servers = sub.add_parser("servers", help="inference servers following the control plane")
    ssub = servers.add_subparsers(dest="action", required=True)
    p = command_parser(ssub, "list", _servers_list, "list servers with their loaded models", listing=True)
    p.add_argument("--pool")

    users = sub.add_parser("users", help="users, roles and tokens (admin)")
    usub = users.add_subparsers(dest="action", required=True)
    p = command_parser(usub, "create", _users_create, "create a user and print its token (shown once)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=sorted(ROLES))
    command_parser(usub, "list", _users_list, "list users", listing=True)
    p = command_parser(usub, "token", _users_token, "issue another token for a user (shown once)")
    p.add_argument("name", metavar="NAME")
    p = command_parser(usub, "disable", _users_disable, "disable a user: its tokens stop working")
    p.add_argument("name", metavar="NAME")
    command_parser(usub, "whoami", _users_whoami, "the user the token belongs to")

    p = command_parser(sub, "audit", _audit, "the audit log of every mutating call, newest first", listing=True)
    p.add_argument("--since", type=_since, metavar="WHEN", help="15m, 2h, 7d, or an ISO 8601 time")
    p.add_argument("--actor")
    p.add_argument("--action")
    p.add_argument("--target", metavar="PREFIX", help="e.g. model/fraud or pool/default")
    p.add_argument("--limit", type=int, default=100, help="at most this many entries (default 100)")


def add_control_commands(sub: SubParsers) -> None:
    """Add ``models``, ``deploy``, ``servers``, ``users`` and ``audit`` to the ``conduit`` parser."""
    _models_parsers(sub)
    _deploy_parsers(sub)
    _other_parsers(sub)


def normalize_argv(argv: list[str]) -> list[str]:
    """``conduit deploy NAME@ALIAS …`` is ``conduit deploy to NAME@ALIAS …`` (argparse needs a sub-command)."""
    if len(argv) >= 2 and argv[0] == "deploy" and argv[1] not in (*DEPLOY_ACTIONS, "to", "-h", "--help"):
        return [argv[0], "to", *argv[1:]]
    return argv


def run_control_command(args: argparse.Namespace) -> int:
    """Run a parsed control-plane command; returns the exit code."""
    address = args.control_plane or os.environ.get("CONDUIT_CONTROL_PLANE") or DEFAULT_ADDRESS
    token = args.token or os.environ.get("CONDUIT_TOKEN")
    if not token:
        print("conduit: no token: pass --token or set CONDUIT_TOKEN", file=sys.stderr)
        return 2
    ca = args.ca or (
        Path(os.environ["CONDUIT_CONTROL_PLANE_CA"]) if os.environ.get("CONDUIT_CONTROL_PLANE_CA") else None
    )
    try:
        root_certificates = ca.read_bytes() if ca else None
        with ControlPlaneClient(address, token=token, root_certificates=root_certificates) as client:
            args.handler(client, args)
    except ConduitError as exc:
        print(f"conduit: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"conduit: {exc}", file=sys.stderr)
        return 1
    return 0
