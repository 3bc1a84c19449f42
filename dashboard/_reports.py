"""Model reports served by the dashboard: a version, the documents a report reads and its training data set's
profile, fetched with the viewer's client and rendered by ``reports`` into one self-contained HTML page."""

from __future__ import annotations

import asyncio

from contract.client import ControlPlaneClient
from contract.entities import DatasetVersion, VersionRef
from contract.errors import ConduitError, ErrorCode
from reports import ATTACHMENTS, ReportInputs, render_comparison, render_report

__all__ = ["comparison_html", "report_html"]


async def _inputs(api: ControlPlaneClient, model: str, version: int) -> ReportInputs:
    ref = VersionRef(model, version=version)
    found = await api.get_version(ref)
    stored = {a.name for a in found.attachments}
    attachments = {name: (await api.get_attachment(ref, name)).content for name in ATTACHMENTS if name in stored}
    dataset: DatasetVersion | None = None
    lineage = found.lineage
    if lineage.dataset and lineage.dataset_version:
        try:
            dataset = await api.get_dataset(lineage.dataset, lineage.dataset_version)
        except ConduitError as exc:
            # A report without the data set's profile still shows everything stored with the version.
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
    return ReportInputs.of(found, attachments, dataset)


async def report_html(api: ControlPlaneClient, model: str, version: int) -> str:
    """The report of ``model:version``."""
    inputs = await _inputs(api, model, version)
    # Drawing plots is CPU work: off the event loop, so that other pages keep answering meanwhile.
    return await asyncio.to_thread(render_report, inputs)


async def comparison_html(api: ControlPlaneClient, model: str, a: int, b: int) -> str:
    """The comparison of ``model:a`` with ``model:b``."""
    first = await _inputs(api, model, a)
    second = await _inputs(api, model, b)
    return await asyncio.to_thread(render_comparison, first, second)
