"""The ``conduit`` command. Each subcommand parses its flags and hands over to its package's entry point."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from clients._cli_flags import CONNECTION_FLAGS, path_flag, unset_empty

__all__ = ["main"]


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Flags default to SUPPRESS so that unset flags fall back to CONDUIT_* variables, then to the defaults.
    p = sub.add_parser(
        "serve",
        help="serve a model repository, or what the control plane assigns, over the Open Inference Protocol (gRPC)",
        description="Serve DIR/<model>/<version>/model.onnx over gRPC (KServe v2 / Triton protocol), or follow a "
        "control plane: serve the models assigned to a pool, from a verified local cache that keeps serving while "
        "the control plane is away. Every flag can also be set as a CONDUIT_<FLAG> environment variable.",
        argument_default=argparse.SUPPRESS,
    )
    source = p.add_argument_group("model source (exactly one)")
    source.add_argument(
        "--model-repository", type=path_flag, metavar="DIR", help="serve this model repository directory"
    )
    source.add_argument("--control-plane", metavar="ADDR", help="follow the control plane at host:port")
    follow = p.add_argument_group("following a control plane")
    follow.add_argument("--pool", help="server pool whose assignments to serve (default 'default')")
    follow.add_argument("--token", help="token of a user with the server role (or CONDUIT_TOKEN)")
    follow.add_argument(
        "--control-plane-ca", type=path_flag, metavar="FILE", help="PEM CA of the control plane: use TLS"
    )
    follow.add_argument(
        "--cache-dir", type=path_flag, metavar="DIR", help="artifact cache (default HOME/serve-cache/POOL)"
    )
    follow.add_argument("--advertise", metavar="HOST:PORT", help="address registered for callers (default host:port)")
    follow.add_argument("--instance-name", metavar="NAME", help="name registered (default hostname-pid)")
    follow.add_argument("--heartbeat-interval", type=float, metavar="S", help="seconds between heartbeats (default 5)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port, worker i uses port+i; 0 disables (default 8002)")
    p.add_argument("--workers", type=int, help="worker processes sharing the gRPC port (default 1)")
    p.add_argument(
        "--front",
        choices=("auto", "native", "python"),
        help="gRPC front: native (compiled), python (grpc.aio) or auto, native where built (default auto)",
    )
    p.add_argument("--front-threads", type=int, metavar="N", help="threads of the native front (default: by cores)")
    p.add_argument("--poll-interval", type=float, metavar="S", help="rescan the repository every S seconds")
    p.add_argument("--max-message-bytes", type=int, help="largest gRPC message in either direction (default 64 MiB)")
    p.add_argument("--drain-timeout", type=float, metavar="S", help="seconds to answer in-flight calls on SIGTERM")
    p.add_argument(
        "--drain-grace",
        type=float,
        metavar="S",
        help="seconds between SIGTERM and the drain, NOT_SERVING through gRPC health but still answering (default 5)",
    )
    p.add_argument("--log-level", help="logging level (default INFO)")
    security = p.add_argument_group("security")
    security.add_argument(
        "--tls-cert", type=path_flag, metavar="FILE", help="PEM certificate chain: serve TLS (re-read on change)"
    )
    security.add_argument("--tls-key", type=path_flag, metavar="FILE", help="PEM private key of --tls-cert")
    security.add_argument(
        "--tls-client-ca",
        type=path_flag,
        metavar="FILE",
        help="require client certificates signed by this PEM CA (mTLS)",
    )
    security.add_argument(
        "--tokens-file",
        type=path_flag,
        metavar="FILE",
        help="repository mode: authenticate callers by these token hashes and roles (`conduit tokens add`)",
    )
    security.add_argument(
        "--no-auth",
        action="store_true",
        help="no caller authentication (needed to serve a non-loopback host without --tokens-file)",
    )
    security.add_argument(
        "--model-control",
        choices=["none", "explicit"],
        help="repository mode: 'explicit' allows RepositoryModelLoad/Unload, by admins (default none)",
    )
    security.add_argument(
        "--max-inflight-bytes", type=int, metavar="N", help="request tensor bytes in flight at once (default 512 MiB)"
    )
    security.add_argument(
        "--stream-window-bytes", type=int, metavar="N", help="bytes a stream reads ahead and holds (default 16 MiB)"
    )
    telemetry = p.add_argument_group("telemetry")
    telemetry.add_argument("--otlp-endpoint", metavar="URL", help="push metrics with OTLP/gRPC to this collector")
    telemetry.add_argument(
        "--otlp-push",
        action=argparse.BooleanOptionalAction,
        help="push metrics with OTLP at all (default on: to --otlp-endpoint, else to the followed control plane)",
    )
    telemetry.add_argument("--otlp-interval", type=float, metavar="S", help="seconds between OTLP pushes (default 10)")
    telemetry.add_argument(
        "--otlp-temporality", choices=["delta", "cumulative"], help="of pushed counters and histograms (default delta)"
    )
    telemetry.add_argument(
        "--trace-sample-ratio", type=float, metavar="R", help="share of requests traced to --otlp-endpoint (0.01)"
    )
    telemetry.add_argument(
        "--metrics-flush-interval", type=float, metavar="S", help="seconds between metric flushes (default 1)"
    )
    telemetry.add_argument(
        "--sketches",
        action=argparse.BooleanOptionalAction,
        help="count served values against each version's training profile for drift (default on)",
    )
    predictions = p.add_argument_group("prediction logs")
    predictions.add_argument(
        "--prediction-log-sample",
        type=float,
        metavar="R",
        help="share of requests logged to Parquet, 0 disables (default 0.01 with a control plane or a log dir)",
    )
    predictions.add_argument(
        "--prediction-log-dir",
        type=path_flag,
        metavar="DIR",
        help="repository mode: write logs here (unset: none); following: their outbox (CACHE/prediction-logs)",
    )
    predictions.add_argument(
        "--prediction-log-flush-interval", type=float, metavar="S", help="seconds between log files (default 10)"
    )
    predictions.add_argument(
        "--prediction-log-flush-rows", type=int, metavar="N", help="flush sooner at this many rows (default 10000)"
    )
    predictions.add_argument(
        "--prediction-log-buffer-rows", type=int, metavar="N", help="rows held at most, more are dropped (100000)"
    )
    predictions.add_argument(
        "--prediction-log-buffer-bytes",
        type=int,
        metavar="N",
        help="bytes of sampled tensors held at most, more are dropped (default 64 MiB)",
    )
    predictions.add_argument(
        "--prediction-log-outbox-bytes",
        type=int,
        metavar="N",
        help="following: bytes the outbox holds at most per worker, the oldest files deleted beyond (default 1 GiB)",
    )


def _given(args: argparse.Namespace, *besides: str) -> dict[str, object]:
    """The flags given, for settings that fall back to their environment variables: an empty one is not given."""
    return {k: v for k, v in vars(args).items() if k not in besides and v is not None}


def _serve(args: argparse.Namespace) -> int:
    from inference_server.app import main as serve

    return serve(_given(args, "command"))


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="import bundled data, train and tune a model, register, deploy and serve it, predict, report latency",
    )
    p.add_argument("--requests", type=int, default=2000, help="single-row requests to time (default 2000)")
    p.add_argument(
        "--workdir",
        type=path_flag,
        default=None,
        help="keep the control plane home and server cache here (default: temporary)",
    )
    p.add_argument(
        "--tls-cert",
        type=path_flag,
        metavar="FILE",
        help="serve inference with TLS: a PEM certificate for 127.0.0.1, which the demo's client trusts as its CA",
    )
    p.add_argument("--tls-key", type=path_flag, metavar="FILE", help="PEM private key of --tls-cert")


def _demo(args: argparse.Namespace) -> int:
    from clients.demo import demo_tls, run_demo

    try:
        tls = demo_tls(args.tls_cert, args.tls_key)
    except ValueError as exc:
        print(f"conduit demo: {exc}", file=sys.stderr)
        return 1
    return run_demo(requests=args.requests, workdir=args.workdir, tls=tls)


def _control_plane_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "control-plane",
        help="run the control plane (model registry, deployments, users), or migrate its database",
        description="Run the control plane's gRPC API (conduit.control.v1.ControlPlane), migrating its schema "
        "first; `conduit control-plane migrate` only migrates. Every flag can also be set as a CONDUIT_CP_<FLAG> "
        "environment variable; CONDUIT_HOME moves the default database and artifact directory, "
        "CONDUIT_ADMIN_TOKEN gives the first admin's token.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("action", nargs="?", default=None, choices=["migrate"], help="migrate the database schema and exit")
    p.add_argument("--db", metavar="URL", help="sqlite:///FILE or postgresql+psycopg://… (default: SQLite in HOME)")
    p.add_argument("--artifacts", metavar="URL", help="directory or s3://bucket/prefix (default: HOME/artifacts)")
    p.add_argument("--s3-endpoint-url", metavar="URL", help="S3-compatible endpoint (default: AWS)")
    p.add_argument("--home", type=path_flag, metavar="DIR", help="where the defaults live (default ~/.conduit)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (default 8100)")
    p.add_argument("--tls-cert", type=path_flag, metavar="FILE", help="PEM certificate: serve TLS (with --tls-key)")
    p.add_argument("--tls-key", type=path_flag, metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--max-upload-bytes", type=int, help="largest model artifact accepted (default 2 GiB)")
    p.add_argument("--log-level", help="logging level (default INFO)")


def _control_plane(args: argparse.Namespace) -> int:
    from control_plane.app import main as run_control_plane
    from control_plane.app import migrate_main

    overrides = _given(args, "command", "action")
    code: int = migrate_main(overrides) if getattr(args, "action", None) == "migrate" else run_control_plane(overrides)
    return code


def _dashboard_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the read-only web dashboard: models, reports, deployments, monitoring, alerts, jobs, logs, audit",
        description="Serve a read-only web UI over the control plane's gRPC API; people sign in with their token, and "
        "its role decides what they see. Every flag can also be set as a CONDUIT_DASHBOARD_<FLAG> environment "
        "variable.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default 8080)")
    p.add_argument("--control-plane", metavar="ADDR", help="control plane address (default 127.0.0.1:8100)")
    p.add_argument("--control-plane-ca", type=path_flag, metavar="FILE", help="PEM CA of the control plane: use TLS")
    p.add_argument("--refresh-seconds", type=float, metavar="S", help="monitoring pages refresh every S (default 5)")
    p.add_argument("--session-idle-seconds", type=float, metavar="S", help="sign-in sessions end unused (default 1800)")
    p.add_argument(
        "--session-lifetime-seconds", type=float, metavar="S", help="sign-in sessions end after (default 43200)"
    )
    p.add_argument("--log-level", help="logging level (default INFO)")


def _dashboard(args: argparse.Namespace) -> int:
    from dashboard.app import main as run_dashboard

    code: int = run_dashboard(_given(args, "command"))
    return code


# What a shell reports for a process that SIGPIPE ended (128 + 13), as `ls | head -1` reports for ls.
BROKEN_PIPE_EXIT = 141


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``conduit … | head -1``): nothing more to say, and nobody to say it to.

    Python would print a traceback, and again at exit when it flushes stdout; pointing stdout at /dev/null lets the
    interpreter's last flush succeed silently (the recipe of Python's ``signal`` documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``conduit`` command.

    A closed pipe on stdout ends every command quietly, with ``BROKEN_PIPE_EXIT``: no traceback, no error line.
    """
    try:
        try:
            return _main(argv)
        finally:
            # Output still buffered would meet the closed pipe only at exit, out of reach of this handler (argparse's
            # --help and usage errors leave theirs there too, on their way out with SystemExit).
            sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _main(argv: Sequence[str] | None) -> int:
    from clients._cli_alerts import add_alert_commands
    from clients._cli_control import add_control_commands, normalize_argv, run_control_command
    from clients._cli_monitoring import add_monitoring_commands
    from clients._cli_predictions import add_prediction_commands
    from clients._cli_report import add_report_commands
    from clients._cli_tokens import add_token_commands, run_token_command
    from clients._cli_train import add_training_commands
    from clients.bench._cli import add_bench_parser, run_bench_command

    parser = argparse.ArgumentParser(prog="conduit", description="Conduit: serve, watch and ship ML models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _control_plane_parser(sub)
    add_control_commands(sub)
    add_training_commands(sub)
    add_monitoring_commands(sub)
    add_prediction_commands(sub)
    add_alert_commands(sub)
    add_report_commands(sub)
    add_bench_parser(sub)
    add_token_commands(sub)
    _demo_parser(sub)
    _dashboard_parser(sub)
    args = parser.parse_args(normalize_argv(list(sys.argv[1:] if argv is None else argv)))
    # serve, control-plane and dashboard take every flag from CONDUIT_* variables too; the others, their connection.
    unset_empty(args, vars(args) if args.command in ("serve", "control-plane", "dashboard") else CONNECTION_FLAGS)
    handlers = {
        "serve": _serve,
        "control-plane": _control_plane,
        "demo": _demo,
        "bench": run_bench_command,
        "tokens": run_token_command,
        "dashboard": _dashboard,
    }
    if args.command in handlers:
        return handlers[args.command](args)
    return run_control_command(args)


if __name__ == "__main__":
    sys.exit(main())
