"""``conduit models|deploy|servers|users|audit``: the control plane API as commands.

Each command reads the control plane's address and a token from ``--control-plane``/``--token`` or from
``CONDUIT_CONTROL_PLANE``/``CONDUIT_TOKEN`` (and a CA certificate from ``--ca``/``CONDUIT_CONTROL_PLANE_CA`` for
TLS), calls one RPC, and prints a table, or JSON with ``--json``. Errors print one line and exit with 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from clients._cli_flags import path_flag
from clients._cli_output import emit, mapping, table, when, write_atomically
from contract import wire
from contract.client import SyncControlPlaneClient, collect
from contract.entities import UNSEEN_CATEGORIES, AuditEntry, Deployment, Lineage, ModelVersion, Role, VersionRef
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "SubParsers",
    "add_control_commands",
    "command_parser",
    "normalize_argv",
    "run_control_command",
]

DEFAULT_ADDRESS = "127.0.0.1:8100"
ROLES = {role.value: role for role in Role}
DEPLOY_ACTIONS = ("rollback", "list", "remove")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ENVIRONMENT = "environment.json"
"""The attachment that lists a trained version's classes (``clients.training.register_result`` writes it)."""

Handler = Callable[[SyncControlPlaneClient, argparse.Namespace], Any]
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


# -- text --------------------------------------------------------------------------------------------------------------


def _version_text(version: ModelVersion, classes: Sequence[str] = ()) -> str:
    lines = [
        f"model        {version.model}",
        f"version      {version.version}",
        f"aliases      {', '.join(version.aliases) or '-'}",
        f"sha256       {version.sha256}",
        f"size         {version.size_bytes} bytes",
        f"created      {when(version.created_at)} by {version.created_by}",
        f"metrics      {mapping(version.metrics)}",
        f"params       {mapping(version.params)}",
        f"tags         {mapping(version.tags)}",
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
            # repr only where a name would not read as one word: "Culmen Length (mm)" stays visibly one name.
            name = tensor.name if tensor.name.isidentifier() else repr(tensor.name)
            lines.append(f"{kind:<12} {name} {tensor.datatype} [{shape}]")
    if classes:
        lines.append(f"classes      {', '.join(f'{i}={name}' for i, name in enumerate(classes))}")
    for attachment in version.attachments:
        lines.append(f"attachment   {attachment.name} ({attachment.media_type}, {attachment.size_bytes} bytes)")
    return "\n".join(lines)


def _classes(client: SyncControlPlaneClient, version: ModelVersion) -> list[str]:
    """A classifier's class names, as its ``environment.json`` lists them (a served label ``i`` is ``classes[i]``);
    empty for a regressor, or a version registered without the document or with one that does not list them."""
    if not any(attachment.name == ENVIRONMENT for attachment in version.attachments):
        return []
    pinned = VersionRef(version.model, version=version.version)
    content = client.run(client.api.get_attachment(pinned, ENVIRONMENT)).content
    try:
        classes = json.loads(content).get("classes")
    except (ValueError, AttributeError):  # not JSON, or not an object: the attachment listing still names it
        return []
    return [str(name) for name in classes] if isinstance(classes, list) else []


def _target(d: Deployment) -> str:
    """``@ALIAS`` or ``:VERSION`` (``:0`` when neither, as the API's zero value reads)."""
    return f"@{d.alias}" if d.alias else f":{d.version or 0}"


def _deployment_row(d: Deployment) -> list[object]:
    target = "(removed)" if d.undeployed else _target(d)
    canary = f"v{d.canary_version} {d.canary_percent:g}%" if d.canary_version else "-"
    serving = d.resolved_version or "-"
    return [
        d.id,
        d.pool,
        d.model,
        target,
        serving,
        canary,
        "-" if d.undeployed else d.unseen_categories,
        "yes" if d.active else "",
        when(d.created_at),
        d.created_by,
    ]


def _change(entry: AuditEntry) -> str:
    # The states as the API writes them (JSON text), not as Python prints the parsed mappings.
    message = wire.audit_entry(entry)
    return f"{message.before_json or '-'} -> {message.after_json or '-'}"


# -- handlers ----------------------------------------------------------------------------------------------------


def _models_register(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    lineage = Lineage(
        dataset=args.dataset or "",
        dataset_version=args.dataset_version or "",
        code_version=args.code_version or "",
        training_spec=args.training_spec.read_text() if args.training_spec else "",
        parent_version=args.parent_version or 0,
    )
    version = client.run(
        client.api.register_version(
            args.name,
            args.file,
            metrics=_metrics(args.metric),
            params=_pairs(args.param, "param"),
            tags=_pairs(args.tag, "tag"),
            lineage=lineage,
            description=args.description or "",
            aliases=args.alias or [],
        )
    )
    emit(args, wire.model_version(version), lambda: str(version.version))


def _models_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    models = client.run(collect(lambda token: client.api.list_models(include_archived=args.all, page_token=token)))
    rows = [
        [m.name, m.latest_version or "-", mapping(m.aliases), "archived" if m.archived else "", when(m.created_at)]
        for m in models
    ]
    emit(args, [wire.model(m) for m in models], lambda: table(["MODEL", "LATEST", "ALIASES", "", "CREATED"], rows))


def _models_show(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    version = client.run(client.api.get_version(VersionRef.parse(args.ref)))
    classes = [] if args.json else _classes(client, version)
    emit(args, wire.model_version(version), lambda: _version_text(version, classes))


def _models_attachment(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    output: Path = args.output
    to_stdout = str(output) == "-"
    if not to_stdout and output.exists() and not args.force:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"{output} exists; pass --force to overwrite it")
    found = client.run(client.api.get_attachment(VersionRef.parse(args.ref), args.file))
    if hashlib.sha256(found.content).hexdigest() != found.attachment.sha256:
        raise ConduitError(ErrorCode.INTERNAL, f"attachment {args.file!r} does not match its sha256")
    if to_stdout:
        sys.stdout.buffer.write(found.content)
        sys.stdout.flush()
        return
    write_atomically(output, found.content)
    size = found.attachment.size_bytes
    emit(
        args,
        wire.attachment(found.attachment),
        lambda: f"wrote {output} ({args.file} of version {found.version}, {size} bytes)",
    )


def _models_versions(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    tags = _pairs(args.tag, "tag")
    versions = client.run(
        collect(lambda token: client.api.list_versions(args.name, tags=tags, page_token=token), args.limit)
    )
    rows = [
        [v.version, ", ".join(v.aliases) or "-", mapping(v.metrics), mapping(v.tags), when(v.created_at)]
        for v in versions
    ]
    emit(
        args,
        [wire.model_version(v) for v in versions],
        lambda: table(["VERSION", "ALIASES", "METRICS", "TAGS", "CREATED"], rows),
    )


def _models_alias(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    if args.delete:
        if args.version is not None:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "give either VERSION or --delete, not both")
        version = client.run(client.api.delete_alias(args.name, args.alias))
        print(f"deleted {args.name}@{args.alias} (was version {version})")
        return
    if args.version is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "missing VERSION (or --delete)")
    alias = client.run(client.api.set_alias(args.name, args.alias, args.version))
    moved = f" (was {alias.previous_version})" if alias.previous_version else ""
    emit(args, wire.alias(alias), lambda: f"{alias.model}@{alias.alias} -> {alias.version}{moved}")


def _models_create(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    model = client.run(client.api.create_model(args.name, args.description or ""))
    emit(args, wire.model(model), lambda: f"created model {model.name}")


def _models_archive(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    model = client.run(client.api.archive_model(args.name))
    emit(args, wire.model(model), lambda: f"archived model {model.name}")


def _models_download(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    header = client.run(client.api.download(VersionRef.parse(args.ref), args.output))
    print(f"wrote {args.output} (version {header.version}, {header.size_bytes} bytes, sha256 {header.sha256})")


def _deploy_apply(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    ref = VersionRef.parse(args.target)
    if ref.alias is None and ref.version is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{args.target!r}: deploy NAME@ALIAS or NAME:VERSION")
    if (args.canary is None) != (args.percent is None):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "--canary VERSION and --percent P go together")
    deployment = client.run(
        client.api.deploy(
            args.pool,
            ref.model,
            alias=ref.alias or "",
            version=ref.version or 0,
            canary_version=args.canary or 0,
            canary_percent=args.percent or 0.0,
            unseen_categories=args.unseen_categories,
        )
    )
    canary = (
        f", canary version {deployment.canary_version or 0} at {deployment.canary_percent:g}%" if args.canary else ""
    )
    emit(
        args,
        wire.deployment(deployment),
        lambda: (
            f"deployed {args.target} to pool {deployment.pool} "
            f"(serving version {deployment.resolved_version or 0}{canary}"
            f"{'; refusing unseen categories' if deployment.unseen_categories == 'refuse' else ''}; "
            f"deployment {deployment.id})"
        ),
    )
    _warn_if_unserved(client, deployment.pool)


def _warn_if_unserved(client: SyncControlPlaneClient, pool: str) -> None:
    """A line on stderr when no live server follows ``pool``: the deployment stands (servers may start later), but a
    misspelt pool would otherwise serve nothing without a word."""
    servers = client.run(client.api.list_servers(pool))
    if any(server.alive for server in servers):
        return
    known = sorted({s.record.pool for s in client.run(client.api.list_servers()) if s.alive})
    elsewhere = f"; live servers follow {', '.join(repr(p) for p in known)}" if known else ""
    state = f"{len(servers)} registered, none live" if servers else "none registered"
    print(
        f"conduit: warning: no server follows pool {pool!r} yet ({state}{elsewhere}); start one with "
        f"`conduit serve --control-plane ADDR --pool {pool} --token SERVER_TOKEN`",
        file=sys.stderr,
    )


def _deploy_rollback(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    deployment = client.run(client.api.rollback(args.pool, args.name))
    emit(
        args,
        wire.deployment(deployment),
        lambda: (
            f"rolled back {args.name} on pool {deployment.pool} to {args.name}{_target(deployment)} "
            f"(serving version {deployment.resolved_version or '-'}; deployment {deployment.id})"
        ),
    )


def _deploy_remove(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    deployment = client.run(client.api.undeploy(args.pool, args.name))
    emit(args, wire.deployment(deployment), lambda: f"removed {args.name} from pool {deployment.pool}")


def _deploy_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    deployments = client.run(
        collect(
            lambda token: client.api.list_deployments(
                pool=args.pool or "", model=args.model or "", history=args.history, page_token=token
            )
        )
    )
    headers = ["ID", "POOL", "MODEL", "TARGET", "SERVING", "CANARY", "UNSEEN", "ACTIVE", "CREATED", "BY"]
    emit(
        args,
        [wire.deployment(d) for d in deployments],
        lambda: table(headers, [_deployment_row(d) for d in deployments]),
    )


def _servers_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    servers = client.run(client.api.list_servers(args.pool or ""))
    rows = [
        [
            s.record.name,
            s.record.pool,
            s.record.address,
            "alive" if s.alive else "silent",
            when(s.record.last_heartbeat),
            " ".join(f"{m.model}:{m.version}={m.state}" for m in s.record.models) or "-",
        ]
        for s in servers
    ]
    emit(
        args,
        [wire.server(s) for s in servers],
        lambda: table(["SERVER", "POOL", "ADDRESS", "STATE", "HEARTBEAT", "MODELS"], rows),
    )


def _users_create(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    user, token = client.run(client.api.create_user(args.name, ROLES[args.role]))
    emit(args, cp.CreateUserResponse(user=wire.user(user), token=token), lambda: token)
    if not args.json:
        print(f"created {args.role} {args.name}; the token above is shown once", file=sys.stderr)


def _users_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    users = client.run(client.api.list_users())
    rows = [[u.name, u.role.value, "disabled" if u.disabled else "", when(u.created_at)] for u in users]
    emit(args, [wire.user(u) for u in users], lambda: table(["USER", "ROLE", "", "CREATED"], rows))


def _users_token(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    print(client.run(client.api.create_token(args.name)))


def _users_disable(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    user = client.run(client.api.disable_user(args.name))
    emit(args, wire.user(user), lambda: f"disabled {user.name}")


def _users_whoami(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    user = client.run(client.api.whoami())
    emit(args, wire.user(user), lambda: f"{user.name} ({user.role.value})")


def _audit(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    entries = client.run(
        collect(
            lambda token: client.api.list_audit(
                since=args.since,
                actor=args.actor or "",
                action=args.action or "",
                target_prefix=args.target or "",
                page_token=token,
            ),
            args.limit,
        )
    )
    rows = [[when(e.at), e.actor, e.action, e.target, _change(e)] for e in entries]
    emit(
        args,
        [wire.audit_entry(e) for e in entries],
        lambda: table(["AT (UTC)", "ACTOR", "ACTION", "TARGET", "CHANGE"], rows),
    )


# -- parsers -----------------------------------------------------------------------------------------------------


def _connection(parser: argparse.ArgumentParser, *, listing: bool = False) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--control-plane",
        metavar="ADDR",
        help=f"control plane address (CONDUIT_CONTROL_PLANE, default {DEFAULT_ADDRESS})",
    )
    group.add_argument("--token", help="bearer token (CONDUIT_TOKEN)")
    group.add_argument("--ca", type=path_flag, metavar="FILE", help="CA certificate for TLS (CONDUIT_CONTROL_PLANE_CA)")
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
    p = command_parser(
        msub,
        "attachment",
        _models_attachment,
        "download one of a version's attachments (models show lists them)",
        epilog="An OUT that exists is left alone unless --force is given; -o - writes to standard output.",
    )
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]")
    p.add_argument("file", metavar="ATTACHMENT", help="e.g. environment.json, evaluation.json, spec.toml")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    p.add_argument("--force", action="store_true", help="overwrite OUT when it exists")


def _deploy_parsers(sub: SubParsers) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="put a model on a server pool; rollback; list",
        usage="conduit deploy NAME@ALIAS|NAME:VERSION --pool POOL [--canary VERSION --percent P]"
        " [--unseen-categories score|refuse]\n"
        "       conduit deploy rollback NAME --pool POOL\n"
        "       conduit deploy remove NAME --pool POOL\n"
        "       conduit deploy list [--pool POOL] [--history]",
    )
    dsub = deploy.add_subparsers(dest="action", required=True)
    p = command_parser(
        dsub, "to", _deploy_apply, "deploy NAME@ALIAS (followed as the alias moves) or NAME:VERSION (pinned)"
    )
    p.usage = (
        "conduit deploy NAME@ALIAS|NAME:VERSION [--pool POOL] [--canary VERSION --percent P] "
        "[--unseen-categories score|refuse] [--json]"
    )
    p.add_argument("target", metavar="NAME@ALIAS|NAME:VERSION")
    p.add_argument("--pool", default="default", help="server pool (default: default)")
    p.add_argument("--canary", type=int, metavar="VERSION", help="send a share of traffic to this version")
    p.add_argument("--percent", type=_percent, metavar="P", help="the canary's share, 0-100")
    p.add_argument(
        "--unseen-categories",
        choices=UNSEEN_CATEGORIES,
        default="score",
        help="what the pool's servers answer to a categorical value the training data never had: score it "
        "(default) or refuse it with INVALID_ARGUMENT naming the input",
    )
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
        with SyncControlPlaneClient.connect(address, token=token, root_certificates=root_certificates) as client:
            args.handler(client, args)
    except ConduitError as exc:
        print(f"conduit: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader of stdout left: the entry point ends quietly
    except OSError as exc:
        print(f"conduit: {exc}", file=sys.stderr)
        return 1
    return 0
