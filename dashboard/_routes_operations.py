"""Pages of what runs: deployments, servers, live monitoring, alerts, jobs, logs and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from dashboard._data import AuditFilter
from dashboard._logs import error_counts, job_run_logs, training_log
from dashboard._monitoring import PERIODS, monitoring_json, window_minutes
from dashboard._web import context_of, render, session

__all__ = ["routes"]

_DEFAULT_PERIOD = 15


def _ref(request: Request) -> tuple[cp.VersionRef, str]:
    """The version a monitoring page watches: ``?version=N``, ``?alias=NAME`` or (neither) the latest; and its label."""
    name = request.path_params["name"]
    version, alias = request.query_params.get("version", ""), request.query_params.get("alias", "")
    if version:
        if not version.isdigit():
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"version={version!r}: expected a version number")
        return cp.VersionRef(model=name, version=int(version)), f"{name}:{version}"
    if alias:
        return cp.VersionRef(model=name, alias=alias), f"{name}@{alias}"
    return cp.VersionRef(model=name), f"{name} (latest version)"


def _period(request: Request) -> int:
    text = request.query_params.get("period", str(_DEFAULT_PERIOD))
    period = int(text) if text.isdigit() else -1
    window_minutes(period)  # refuses a period the page does not offer
    return period


async def deployments(request: Request) -> Response:
    token, viewer = await session(request)
    history = request.query_params.get("history") == "1"
    page = await context_of(request).data.deployments(
        token, request.query_params.get("page_token", ""), history=history
    )
    return render(request, "deployments.html", viewer, "deployments", page=page, history=history)


async def servers(request: Request) -> Response:
    token, viewer = await session(request)
    rows = await context_of(request).data.servers(token)
    return render(request, "servers.html", viewer, "servers", servers=rows)


async def monitoring_index(request: Request) -> Response:
    token, viewer = await session(request)
    page = await context_of(request).data.models(token, request.query_params.get("page_token", ""))
    return render(request, "monitoring_index.html", viewer, "monitoring", page=page)


async def monitoring(request: Request) -> Response:
    token, viewer = await session(request)
    ref, label = _ref(request)
    period = _period(request)
    model = await context_of(request).data.model(token, request.path_params["name"])
    api = request.url_for("monitoring_api", name=model.name).include_query_params(**request.query_params)
    return render(
        request,
        "monitoring.html",
        viewer,
        "monitoring",
        model=model,
        label=label,
        ref=ref,
        period=period,
        periods=sorted(PERIODS),
        api=api.path + "?" + api.query,
        refresh_ms=int(context_of(request).refresh_seconds * 1000),
    )


async def monitoring_api(request: Request) -> Response:
    token, _ = await session(request)
    ref, _label = _ref(request)
    baseline = request.query_params.get("baseline") != "0"
    payload = await monitoring_json(context_of(request).data, token, ref, _period(request), baseline=baseline)
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


async def alerts(request: Request) -> Response:
    token, viewer = await session(request)
    view = await context_of(request).data.alerts(token)
    return render(request, "alerts.html", viewer, "alerts", view=view)


async def jobs(request: Request) -> Response:
    token, viewer = await session(request)
    data = context_of(request).data
    job = request.query_params.get("job", "")
    return render(
        request,
        "jobs.html",
        viewer,
        "jobs",
        jobs=await data.jobs(token),
        runs=await data.recent_runs(token, job, limit=50),
        job=job,
    )


async def audit(request: Request) -> Response:
    token, viewer = await session(request)
    query = request.query_params
    where = AuditFilter(query.get("actor", ""), query.get("action", ""), query.get("target", ""))
    page = await context_of(request).data.audit(token, query.get("page_token", ""), where)
    return render(request, "audit.html", viewer, "audit", page=page, where=where)


async def logs(request: Request) -> Response:
    token, viewer = await session(request)
    data = context_of(request).data
    query = request.query_params
    q, model, job = query.get("q", ""), query.get("model", ""), query.get("job", "")
    training = None
    predictions = None
    errors = None
    if model:
        predictions = await data.prediction_logs(token, model, query.get("page_token", ""))
        version_text = query.get("version", "")
        if version_text and not version_text.isdigit():
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"version={version_text!r}: expected a version number")
        number = int(version_text) if version_text else (await data.model(token, model)).latest_version
        if number:
            training = await training_log(data, token, model, number, q)
            errors = await error_counts(data, token, cp.VersionRef(model=model, version=number), q)
    return render(
        request,
        "logs.html",
        viewer,
        "logs",
        q=q,
        model=model,
        job=job,
        version=query.get("version", ""),
        training=training,
        predictions=predictions,
        errors=errors,
        runs=await job_run_logs(data, token, job, q),
        jobs=await data.jobs(token),
    )


routes = [
    Route("/deployments", deployments, methods=["GET"]),
    Route("/servers", servers, methods=["GET"]),
    Route("/monitoring", monitoring_index, methods=["GET"]),
    Route("/models/{name}/monitoring", monitoring, methods=["GET"]),
    Route("/api/models/{name}/monitoring", monitoring_api, methods=["GET"], name="monitoring_api"),
    Route("/alerts", alerts, methods=["GET"]),
    Route("/jobs", jobs, methods=["GET"]),
    Route("/audit", audit, methods=["GET"]),
    Route("/logs", logs, methods=["GET"]),
]
