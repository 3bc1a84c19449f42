"""Model reports served by the dashboard: a version, the documents a report reads and its training data set's
profile, fetched with the viewer's token and rendered by ``reports`` into one self-contained HTML page."""

from __future__ import annotations

import asyncio

from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from dashboard._data import DashboardData
from reports import ATTACHMENTS, ReportInputs, render_comparison, render_report

__all__ = ["comparison_html", "report_html"]


async def _inputs(data: DashboardData, token: str, model: str, version: int) -> ReportInputs:
    message = await data.version_message(token, model, version)
    stored = {a.name for a in message.attachments}
    attachments = {
        name: (await data.attachment(token, model, version, name))[1] for name in ATTACHMENTS if name in stored
    }
    dataset: cp.DatasetVersion | None = None
    lineage = message.lineage
    if lineage.dataset and lineage.dataset_version:
        try:
            dataset = await data.dataset(token, lineage.dataset, lineage.dataset_version)
        except ConduitError as exc:
            # A report without the data set's profile still shows everything stored with the version.
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
    return ReportInputs.from_messages(message, attachments, dataset)


async def report_html(data: DashboardData, token: str, model: str, version: int) -> str:
    """The report of ``model:version``."""
    inputs = await _inputs(data, token, model, version)
    # Drawing plots is CPU work: off the event loop, so that other pages keep answering meanwhile.
    return await asyncio.to_thread(render_report, inputs)


async def comparison_html(data: DashboardData, token: str, model: str, a: int, b: int) -> str:
    """The comparison of ``model:a`` with ``model:b``."""
    first = await _inputs(data, token, model, a)
    second = await _inputs(data, token, model, b)
    return await asyncio.to_thread(render_comparison, first, second)
