"""``conduit report``: a model version's self-contained HTML report, or two versions compared, from what the control
plane stores (a viewer token is enough).

``fetch_report_inputs`` gathers a version, its attachments and its data set's profile over gRPC; rendering is the
``reports`` package's. Uses the control plane's connection flags (see ``_cli_control``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from clients._cli_control import SubParsers, command_parser
from clients._cli_output import write_atomically
from contract.client import SyncControlPlaneClient
from contract.entities import DatasetVersion, VersionRef
from contract.errors import ConduitError, ErrorCode

if TYPE_CHECKING:
    from reports import ReportInputs

__all__ = ["add_report_commands", "fetch_report_inputs"]

_USAGE = (
    "conduit report NAME[@ALIAS|:VERSION] -o FILE.html [--control-plane ADDR] [--token T]\n"
    "       conduit report compare A B -o FILE.html [--control-plane ADDR] [--token T]"
)


def fetch_report_inputs(client: SyncControlPlaneClient, ref: VersionRef) -> ReportInputs:
    """The version ``ref`` names (GetVersion), each attachment a report reads (GetAttachment), and the profile of
    the data set version its lineage names (GetDataset; None when there is none or the control plane lacks it).

    Raises:
        ConduitError: NOT_FOUND for an unknown model, version or alias; the control plane's other refusals.
    """
    from reports import ATTACHMENTS, ReportInputs  # matplotlib: loaded by this command only, not by every one

    version = client.run(client.api.get_version(ref))
    # Pinned to the resolved number: an alias moving between the calls must not mix two versions' documents.
    pinned = VersionRef(version.model, version=version.version)
    stored = {attachment.name for attachment in version.attachments}
    attachments = {
        name: client.run(client.api.get_attachment(pinned, name)).content for name in ATTACHMENTS if name in stored
    }
    dataset: DatasetVersion | None = None
    lineage = version.lineage
    if lineage.dataset and lineage.dataset_version:
        try:
            dataset = client.run(client.api.get_dataset(lineage.dataset, lineage.dataset_version))
        except ConduitError as exc:
            if exc.code != ErrorCode.NOT_FOUND:
                raise
    return ReportInputs.of(version, attachments, dataset)


def _report(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    from reports import render_comparison, render_report

    refs: list[str] = args.refs
    if refs[0] == "compare" and len(refs) == 3:
        a, b = (fetch_report_inputs(client, VersionRef.parse(text)) for text in refs[1:])
        html, what = render_comparison(a, b), f"{a.ref} against {b.ref}"
    elif len(refs) == 1:
        inputs = fetch_report_inputs(client, VersionRef.parse(refs[0]))
        html, what = render_report(inputs), inputs.ref
    else:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"expected NAME[@ALIAS|:VERSION] or compare A B, got {refs}")
    write_atomically(args.output, html.encode())
    size = len(html.encode())
    if args.json:
        print(json.dumps({"output": str(args.output), "report": what, "bytes": size}))
    else:
        print(f"wrote {args.output} ({what}, {size / 1024:.0f} KiB)")


def add_report_commands(sub: SubParsers) -> None:
    """Add ``report`` (and ``report compare``) to the ``conduit`` parser."""
    p = command_parser(
        sub,
        "report",
        _report,
        "write a self-contained HTML report of a model version, or of two versions compared",
        epilog="A report holds the data set profile, spec, parameters, lineage, package versions, metrics, ROC, "
        "precision-recall, KS, confusion and calibration plots, feature importances, the first trees, training "
        "loss and weights, and the hyper-parameter search, as far as the version stores them. It fetches "
        "nothing when opened.",
    )
    p.usage = _USAGE
    p.add_argument("refs", nargs="+", metavar="NAME[@ALIAS|:VERSION] | compare A B")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.html", help="where to write the page")
