"""Pages of what runs: deployments, servers, live monitoring, alerts, jobs, logs and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.entities import VersionRef
from contract.errors import ConduitError, ErrorCode
from dashboard import _data
from dashboard._data import AuditFilter
from dashboard._logs import error_counts, job_run_logs, training_log
from dashboard._monitoring import PERIODS, monitoring_json, window_minutes
from dashboard._web import context_of, render, session

__all__ = ["routes"]

_DEFAULT_PERIOD = 15


def _ref(request: Request) -> tuple[VersionRef, str]:
    """The version a monitoring page watches: ``?version=N``, ``?alias=NAME`` or (neither) the latest; and its label."""
    name = request.path_params["name"]
    version, alias = request.query_params.get("version", ""), request.query_params.get("alias", "")
    if version:
        if not version.isdigit():
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"version={version!r}: expected a version number")
        return VersionRef(name, version=int(version)), f"{name}:{version}"
    if alias:
        return VersionRef(name, alias=alias), f"{name}@{alias}"
    return VersionRef(name), f"{name} (latest version)"


def _period(request: Request) -> int:
    text = request.query_params.get("period", str(_DEFAULT_PERIOD))
    period = int(text) if text.isdigit() else -1
    window_minutes(period)  # refuses a period the page does not offer
    return period


async def deployments(request: Request) -> Response:
    api, viewer = await session(request)
    history = request.query_params.get("history") == "1"
    page = await api.list_deployments(
        history=history,
        page_size=context_of(request).page_size,
        page_token=request.query_params.get("page_token", ""),
    )
    return render(request, "deployments.html", viewer, "deployments", page=page, history=history)


async def servers(request: Request) -> Response:
    api, viewer = await session(request)
    return render(request, "servers.html", viewer, "servers", servers=await _data.servers(api))


async def monitoring_index(request: Request) -> Response:
    api, viewer = await session(request)
    page = await api.list_models(
        page_size=context_of(request).page_size, page_token=request.query_params.get("page_token", "")
    )
    return render(request, "monitoring_index.html", viewer, "monitoring", page=page)


async def monitoring(request: Request) -> Response:
    api, viewer = await session(request)
    ref, label = _ref(request)
    period = _period(request)
    model = await api.get_model(request.path_params["name"])
    endpoint = request.url_for("monitoring_api", name=model.name).include_query_params(**request.query_params)
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
        api=endpoint.path + "?" + endpoint.query,
        refresh_ms=int(context_of(request).refresh_seconds * 1000),
    )


async def monitoring_api(request: Request) -> Response:
    api, _ = await session(request)
    ref, _label = _ref(request)
    baseline = request.query_params.get("baseline") != "0"
    payload = await monitoring_json(api, ref, _period(request), baseline=baseline)
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


async def alerts(request: Request) -> Response:
    api, viewer = await session(request)
    view = await _data.alerts(api)
    return render(request, "alerts.html", viewer, "alerts", view=view)


async def jobs(request: Request) -> Response:
    api, viewer = await session(request)
    job = request.query_params.get("job", "")
    return render(
        request,
        "jobs.html",
        viewer,
        "jobs",
        jobs=await api.list_jobs(),
        runs=await _data.recent_runs(api, job, limit=50),
        job=job,
    )


async def audit(request: Request) -> Response:
    api, viewer = await session(request)
    query = request.query_params
    where = AuditFilter(query.get("actor", ""), query.get("action", ""), query.get("target", ""))
    page = await api.list_audit(
        actor=where.actor,
        action=where.action,
        target_prefix=where.target_prefix,
        page_size=context_of(request).page_size,
        page_token=query.get("page_token", ""),
    )
    return render(request, "audit.html", viewer, "audit", page=page, where=where)


async def logs(request: Request) -> Response:
    api, viewer = await session(request)
    query = request.query_params
    q, model, job = query.get("q", ""), query.get("model", ""), query.get("job", "")
    training = None
    predictions = None
    errors = None
    if model:
        predictions = await api.list_prediction_logs(
            VersionRef(model), page_size=context_of(request).page_size, page_token=query.get("page_token", "")
        )
        version_text = query.get("version", "")
        if version_text and not version_text.isdigit():
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"version={version_text!r}: expected a version number")
        number = int(version_text) if version_text else (await api.get_model(model)).latest_version
        if number:
            training = await training_log(api, model, number, q)
            errors = await error_counts(api, VersionRef(model, version=number), q)
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
        runs=await job_run_logs(api, job, q),
        jobs=await api.list_jobs(),
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
