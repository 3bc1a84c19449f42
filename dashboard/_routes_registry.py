"""Pages of the model registry: models, a model's versions, a version, its documents, its report, comparisons."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from contract.entities import VersionRef
from contract.errors import ConduitError, ErrorCode
from dashboard._reports import comparison_html, report_html
from dashboard._web import context_of, render, session

__all__ = ["REPORT_POLICY", "routes"]

# A report is a whole page of its own, made to open offline: it may run its inline scripts and styles, and nothing
# else. The sandbox gives it no access to the dashboard's origin (its cookie, its pages).
REPORT_POLICY = (
    "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)
# Documents are shown as text, never as pages of the dashboard's origin.
_DOCUMENT_POLICY = "sandbox; default-src 'none'"


# The metrics a versions table shows first; a version page shows them all.
_KEY_METRICS = ("roc_auc", "ks", "pr_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2")
_MAX_METRIC_COLUMNS = 6


def _columns(names: set[str]) -> list[str]:
    """The metric columns of a versions table: the key metrics present, else the first names, at most six."""
    key = [name for name in _KEY_METRICS if name in names]
    return (key or sorted(names))[:_MAX_METRIC_COLUMNS]


def _int(request: Request, name: str) -> int:
    text = request.query_params.get(name, "")
    if not text.isdigit() or int(text) < 1:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{name}={text!r}: expected a version number")
    return int(text)


async def home(request: Request) -> Response:
    return RedirectResponse("/models", status_code=303)


async def models(request: Request) -> Response:
    api, viewer = await session(request)
    archived = request.query_params.get("archived") == "1"
    page = await api.list_models(
        include_archived=archived,
        page_size=context_of(request).page_size,
        page_token=request.query_params.get("page_token", ""),
    )
    return render(request, "models.html", viewer, "models", page=page, archived=archived)


async def model(request: Request) -> Response:
    api, viewer = await session(request)
    name = request.path_params["name"]
    found = await api.get_model(name)
    page = await api.list_versions(
        name, page_size=context_of(request).page_size, page_token=request.query_params.get("page_token", "")
    )
    metric_names = _columns({m for v in page.items for m in v.metrics})
    return render(request, "model.html", viewer, "models", model=found, page=page, metric_names=metric_names)


async def version(request: Request) -> Response:
    api, viewer = await session(request)
    found = await api.get_version(VersionRef(request.path_params["name"], version=request.path_params["version"]))
    return render(request, "version.html", viewer, "models", version=found)


async def attachment(request: Request) -> Response:
    api, _ = await session(request)
    params = request.path_params
    found = await api.get_attachment(VersionRef(params["name"], version=params["version"]), params["attachment"])
    shown = "application/json" if found.attachment.media_type == "application/json" else "text/plain; charset=utf-8"
    headers = {"Content-Security-Policy": _DOCUMENT_POLICY}
    return Response(found.content, media_type=shown, headers=headers)


async def report(request: Request) -> Response:
    api, _ = await session(request)
    html = await report_html(api, request.path_params["name"], request.path_params["version"])
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_POLICY})


async def compare(request: Request) -> Response:
    api, _ = await session(request)
    a, b = _int(request, "a"), _int(request, "b")
    html = await comparison_html(api, request.path_params["name"], a, b)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_POLICY})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/models", models, methods=["GET"]),
    Route("/models/{name}", model, methods=["GET"]),
    Route("/models/{name}/compare", compare, methods=["GET"]),
    Route("/models/{name}/versions/{version:int}", version, methods=["GET"]),
    Route("/models/{name}/versions/{version:int}/report", report, methods=["GET"]),
    Route("/models/{name}/versions/{version:int}/attachments/{attachment}", attachment, methods=["GET"]),
]
