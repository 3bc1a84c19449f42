"""``conduit monitoring show``: a model version's traffic, latency and drift per window, as the control plane keeps
them from what its inference servers push.

Uses the control plane's connection flags (see ``_cli_control``).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime

from clients._cli_control import SubParsers, _since, command_parser
from clients._cli_output import emit, table, when
from contract import wire
from contract.client import SyncControlPlaneClient
from contract.entities import FeatureDrift, MonitoringReport, MonitoringWindow, VersionRef

__all__ = ["add_monitoring_commands"]

_WINDOW = re.compile(r"^(\d+)([mhd]?)$")
_MINUTES = {"": 1, "m": 1, "h": 60, "d": 1440}
_FEATURE_HEADERS = ("FEATURE", "KIND", "VALUES", "UNSEEN", "PSI", "JS", "KS", "P(KS)", "CHI2", "P(CHI2)", "DRIFTED")


def _window(text: str) -> int:
    """``1m``, ``5m``, ``1h``, ``1d`` (or a number of minutes) as whole minutes."""
    match = _WINDOW.match(text)
    minutes = int(match[1]) * _MINUTES[match[2]] if match else 0
    if minutes < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole minutes, like 1m, 5m, 1h or 1d")
    return minutes


def _minute(value: datetime) -> str:
    return when(value, "%Y-%m-%d %H:%M")


def _ms(window: MonitoringWindow, field: str) -> str:
    seconds = window.quantiles[wire.QUANTILE_FIELDS.index(field)]
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _number(value: float) -> str:
    return f"{value:.3g}"


def _errors(window: MonitoringWindow) -> str:
    if not window.errors:
        return "0"
    detail = " ".join(f"{status}={count}" for status, count in sorted(window.errors.items()))
    return f"{sum(window.errors.values())} {detail}"


def _verdict(window: MonitoringWindow) -> str:
    inputs = [f for f in window.features if f.feature != "@prediction"]
    if not inputs:
        return "-"
    if window.too_few_rows:
        return "too few rows"
    judged = [f for f in inputs if not f.too_few_rows]
    drifted = sum(f.drifted for f in judged)
    return f"{'DRIFT' if window.dataset_drift else 'ok'} {drifted}/{len(judged)}"


def _optional(value: float | None) -> str:
    return "-" if value is None else _number(value)


def _unseen(feature: FeatureDrift) -> str:
    if feature.unseen is None:
        return "-"
    return f"{feature.unseen} ({feature.unseen / feature.count:.1%})" if feature.unseen else "0"


def _feature_row(feature: FeatureDrift) -> list[object]:
    return [
        feature.feature,
        feature.kind,
        feature.count,
        _unseen(feature),
        _number(feature.psi),
        _number(feature.js),
        _optional(feature.ks),
        _optional(feature.ks_p_value),
        _number(feature.chi2),
        _number(feature.chi2_p_value),
        "too few rows" if feature.too_few_rows else "yes" if feature.drifted else "no",
    ]


def _text(answer: MonitoringReport) -> str:
    baseline = (
        f"drift against {answer.baseline.name}:{answer.baseline.version}"
        if answer.baseline is not None
        else "no drift baseline (the version's lineage names no data set version the control plane holds)"
    )
    lines = [f"{answer.model}:{answer.version}  {baseline}"]
    if not answer.windows:
        return "\n".join([*lines, "no traffic reported in this span"])
    rows = [
        [_minute(w.start), w.requests, _errors(w), _ms(w, "latency_p50"), _ms(w, "latency_p99"), _verdict(w)]
        for w in answer.windows
    ]
    lines.append(table(("WINDOW (UTC)", "REQUESTS", "ERRORS", "P50 MS", "P99 MS", "DATA SET"), rows))
    rule = answer.rule
    for window in answer.windows:
        if not window.features:
            continue
        if window.too_few_rows:
            verdict = "too few rows, no verdict"
        else:
            verdict = f"{'drift' if window.dataset_drift else 'no drift'}, {window.drifted_share:.0%} of the input "
            verdict += "features with a verdict drifted"
        lines += [
            "",
            f"{_minute(window.start)} to {_minute(window.end)}: {verdict} (each: PSI >= {rule.psi_threshold:g} and "
            f"p(chi2) < {rule.chi2_p_threshold:g} over at least {rule.min_rows} values; the data set: at least "
            f"{rule.drift_share:.0%})",
            table(_FEATURE_HEADERS, [_feature_row(f) for f in window.features]),
        ]
    return "\n".join(lines)


def _show(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    ref = VersionRef.parse(args.ref)
    answer = client.run(client.api.get_monitoring(ref, since=args.since, window_minutes=args.window))
    emit(args, wire.monitoring_report(answer), lambda: _text(answer))


def add_monitoring_commands(sub: SubParsers) -> None:
    """Add ``monitoring`` to the ``conduit`` parser."""
    monitoring = sub.add_parser("monitoring", help="traffic, latency and drift of served model versions")
    actions = monitoring.add_subparsers(dest="action", required=True)
    p = command_parser(
        actions,
        "show",
        _show,
        "per window: requests, errors, p50 and p99 latency, and each feature's drift against the training data",
        listing=True,
    )
    p.add_argument("ref", metavar="NAME[@ALIAS|:VERSION]", help="the version (NAME alone: the latest)")
    p.add_argument(
        "--since",
        type=_since,
        default=None,
        metavar="WHEN",
        help="15m, 2h, 7d ago, or an ISO 8601 time (default 15m)",
    )
    p.add_argument("--window", type=_window, default=1, metavar="LENGTH", help="1m, 5m, 1h or 1d (default 1m)")
