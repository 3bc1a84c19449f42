"""Model reports served by the dashboard: a version's stored documents and its training data set's profile, read
with the viewer's token, rendered by ``reports`` into one self-contained HTML page."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from control_plane.protocol import control_plane_pb2 as cp
from dashboard._data import DashboardData
from inference_server.errors import ConduitError, ErrorCode

__all__ = ["comparison_html", "report_html"]


def _reports() -> Any:
    module = importlib.import_module("reports")
    if not hasattr(module, "render_report"):
        raise ConduitError(ErrorCode.UNIMPLEMENTED, "this installation of Conduit has no model reports yet")
    return module


async def _inputs(data: DashboardData, token: str, model: str, version: int) -> Any:
    message = await data.version_message(token, model, version)
    attachments = {a.name: (await data.attachment(token, model, version, a.name))[1] for a in message.attachments}
    dataset: cp.DatasetVersion | None = None
    if message.lineage.dataset:
        try:
            dataset = await data.dataset(token, message.lineage.dataset, message.lineage.dataset_version)
        except ConduitError as exc:
            # A report without the data set's profile still shows everything stored with the version.
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
    return _reports().ReportInputs.from_messages(message, attachments, dataset)


async def report_html(data: DashboardData, token: str, model: str, version: int) -> str:
    """The report of ``model:version``."""
    inputs = await _inputs(data, token, model, version)
    # Rendering plots is CPU work: off the event loop, so that other pages keep answering.
    html: str = await asyncio.to_thread(_reports().render_report, inputs)
    return html


async def comparison_html(data: DashboardData, token: str, model: str, a: int, b: int) -> str:
    """The comparison of ``model:a`` with ``model:b``."""
    first = await _inputs(data, token, model, a)
    second = await _inputs(data, token, model, b)
    html: str = await asyncio.to_thread(_reports().render_comparison, first, second)
    return html
