"""Deployments (an append-only history per pool and model), rollbacks and what each pool must serve."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from contract.entities import (
    ArtifactRef,
    Assignment,
    Deployment,
    DeploymentSpec,
    Page,
    PoolAssignments,
    UnseenCategories,
    unseen_categories_of,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._paging import decode_int, make_page, page_limit
from control_plane.store._rows import (
    active_deployment,
    bump_generation,
    find_alias,
    find_model,
    find_pool,
    find_version,
    pool_for_update,
)
from control_plane.store._schema import AliasRow, DeploymentRow, ModelRow, PoolRow, VersionRow, utcnow
from control_plane.store._validate import check_alias, check_name, check_version_number

__all__ = ["assignments", "deploy", "generation", "list_deployments", "rollback"]


def _check_spec(spec: DeploymentSpec) -> None:
    check_name("pool", spec.pool)
    check_name("model", spec.model)
    if spec.undeploy:
        if (
            spec.alias is not None
            or spec.version is not None
            or spec.canary_version is not None
            or spec.unseen_categories != "score"
        ):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "an undeploy names only the pool and the model")
        return
    if (spec.alias is None) == (spec.version is None):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "deploy exactly one of an alias and a version")
    if spec.alias is not None:
        check_alias(spec.alias)
    if spec.version is not None:
        check_version_number(spec.version)
    if not 0.0 <= spec.canary_percent <= 100.0:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "canary_percent must be between 0 and 100")
    if spec.canary_version is None and spec.canary_percent > 0:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "canary_percent needs a canary_version")
    if spec.canary_version is not None:
        check_version_number(spec.canary_version)
        if spec.canary_version == spec.version:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"the canary is version {spec.version} itself")


def _check_targets(
    session: Session, model: ModelRow, alias: str | None, version: int | None, canary: int | None
) -> None:
    """NOT_FOUND unless every version the deployment names exists; FAILED_PRECONDITION for an archived model."""
    if model.archived:
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {model.name!r} is archived")
    if alias is not None:
        find_alias(session, model, alias)
    for number in (version, canary):
        if number is not None:
            find_version(session, model, number)


def _alias_versions(session: Session, model_ids: set[int]) -> dict[tuple[int, str], int]:
    rows = session.execute(
        select(AliasRow.model_id, AliasRow.name, VersionRow.version)
        .join(VersionRow, AliasRow.version_id == VersionRow.id)
        .where(AliasRow.model_id.in_(sorted(model_ids)))
    ).all()
    return {(model_id, name): version for model_id, name, version in rows}


def _convert_all(session: Session, rows: Sequence[DeploymentRow]) -> list[Deployment]:
    aliases = _alias_versions(session, {row.model_id for row in rows if row.alias is not None})
    return [_convert.deployment(row, aliases) for row in rows]


def _alias_moved_since(session: Session, model: ModelRow, active: DeploymentRow) -> int | None:
    """The version the followed alias left after ``active`` was deployed; None when it has not moved since."""
    if active.alias is None or active.undeploy:
        return None
    row = session.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.name == active.alias))
    if row is None or row.previous_version is None or row.moved_at <= active.created_at:
        return None
    return row.previous_version.version


def _replace_active(
    session: Session,
    pool: PoolRow,
    model: ModelRow,
    *,
    action: str,
    actor: str,
    alias: str | None = None,
    version: int | None = None,
    canary_version: int | None = None,
    canary_percent: float = 0.0,
    undeploy: bool = False,
    unseen_categories: UnseenCategories = "score",
) -> Deployment:
    """Add a history entry with these targets and make it the active one, keeping the replaced one as its rollback
    target."""
    spec = DeploymentRow(
        pool=pool,
        model=model,
        alias=alias,
        version=version,
        canary_version=canary_version,
        canary_percent=canary_percent,
        undeploy=undeploy,
        unseen_categories=unseen_categories,
        active=True,
        created_at=utcnow(),
        created_by=actor,
    )
    active = active_deployment(session, pool.id, model.id)
    before = None
    if active is not None:
        before = _convert.deployment_state(active)
        active.active = False
        # The partial unique index allows one active row: the old one must be inactive before the new one exists.
        session.flush()
        spec.replaced_id = active.id
    session.add(spec)
    session.flush()
    bump_generation(session, [pool.id])
    record(
        session,
        actor,
        action,
        f"pool/{pool.name}/model/{model.name}",
        before=before,
        after=_convert.deployment_state(spec),
    )
    return _convert_all(session, [spec])[0]


def deploy(session: Session, spec: DeploymentSpec, *, actor: str) -> Deployment:
    _check_spec(spec)
    model = find_model(session, spec.model, lock=True)
    if spec.undeploy:
        pool_row = find_pool(session, spec.pool)
        active = None if pool_row is None else active_deployment(session, pool_row.id, model.id)
        if active is None or active.undeploy:
            raise ConduitError(ErrorCode.NOT_FOUND, f"model {spec.model!r} is not deployed on pool {spec.pool!r}")
    else:
        _check_targets(session, model, spec.alias, spec.version, spec.canary_version)
    pool = pool_for_update(session, spec.pool)
    return _replace_active(
        session,
        pool,
        model,
        action="Deploy",
        actor=actor,
        alias=spec.alias,
        version=spec.version,
        canary_version=spec.canary_version,
        canary_percent=float(spec.canary_percent) if spec.canary_version is not None else 0.0,
        undeploy=spec.undeploy,
        unseen_categories=spec.unseen_categories,
    )


def rollback(session: Session, pool: str, model: str, *, actor: str) -> Deployment:
    model_row = find_model(session, model, lock=True)
    if find_pool(session, pool) is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"model {model!r} has no deployment on pool {pool!r}")
    pool_row = pool_for_update(session, pool)
    active = active_deployment(session, pool_row.id, model_row.id)
    if active is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"model {model!r} has no deployment on pool {pool!r}")
    moved = _alias_moved_since(session, model_row, active)
    if moved is not None:
        # The pool follows an alias that moved after this deployment: what it served before is the version the
        # alias pointed at, so pin that version here. Other pools following the alias are left alone, and so is
        # the alias itself; rolling back again returns to following it.
        return _replace_active(
            session,
            pool_row,
            model_row,
            action="Rollback",
            actor=actor,
            version=moved,
            unseen_categories=unseen_categories_of(active.unseen_categories),
        )
    if active.replaced_id is None:
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"no earlier deployment of {model!r} on pool {pool!r}")
    previous = session.get_one(DeploymentRow, active.replaced_id)
    if not previous.undeploy:
        try:
            _check_targets(session, model_row, previous.alias, previous.version, previous.canary_version)
        except ConduitError as error:
            # What was deployable then may not be now: the model archived or the alias deleted since.
            raise ConduitError(
                ErrorCode.FAILED_PRECONDITION, f"cannot return to the earlier deployment: {error.message}"
            ) from None
    return _replace_active(
        session,
        pool_row,
        model_row,
        action="Rollback",
        actor=actor,
        alias=previous.alias,
        version=previous.version,
        canary_version=previous.canary_version,
        canary_percent=previous.canary_percent,
        undeploy=previous.undeploy,
        unseen_categories=unseen_categories_of(previous.unseen_categories),
    )


def list_deployments(
    session: Session, *, pool: str | None, model: str | None, history: bool, page_size: int, page_token: str
) -> Page[Deployment]:
    limit = page_limit(page_size)
    after = decode_int(page_token)
    query = select(DeploymentRow).order_by(DeploymentRow.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(DeploymentRow.id < after)
    if pool:
        query = query.where(DeploymentRow.pool.has(PoolRow.name == pool))
    if model:
        query = query.where(DeploymentRow.model.has(ModelRow.name == model))
    if not history:
        query = query.where(DeploymentRow.active, ~DeploymentRow.undeploy)
    rows = session.scalars(query).all()
    converted = dict(zip((row.id for row in rows), _convert_all(session, rows), strict=True))
    return make_page(rows, limit, lambda row: row.id, lambda row: converted[row.id])


def assignments(session: Session, pool: str) -> PoolAssignments:
    # The generation is read before the deployments: the answer is then never older than its generation, and a
    # change committed in between shows up again under the next generation.
    pool_row = find_pool(session, pool)
    if pool_row is None:
        return PoolAssignments(pool=pool, generation=0, models=())
    rows = session.scalars(
        select(DeploymentRow)
        .where(DeploymentRow.pool_id == pool_row.id, DeploymentRow.active, ~DeploymentRow.undeploy)
        .join(DeploymentRow.model)
        .order_by(ModelRow.name)
    ).all()
    aliases = _alias_versions(session, {row.model_id for row in rows if row.alias is not None})
    wanted: list[tuple[DeploymentRow, int, int | None]] = []
    for row in rows:
        primary = row.version if row.version is not None else aliases.get((row.model_id, row.alias or ""))
        if primary is not None:
            # Moving the followed alias onto the canary is how a canary gets promoted: from then on it is the
            # primary, and all of the traffic goes to it.
            canary = row.canary_version if row.canary_version != primary else None
            wanted.append((row, primary, canary))
    pairs = {(row.model_id, number) for row, primary, canary in wanted for number in (primary, canary) if number}
    refs: dict[tuple[int, int], ArtifactRef] = {}
    if pairs:
        found = session.execute(
            select(VersionRow.model_id, VersionRow.version, VersionRow.sha256, VersionRow.size_bytes).where(
                tuple_(VersionRow.model_id, VersionRow.version).in_(sorted(pairs))
            )
        )
        refs = {(model_id, version): ArtifactRef(version, sha256, size) for model_id, version, sha256, size in found}
    models = tuple(
        Assignment(
            model=row.model.name,
            primary=refs[(row.model_id, primary)],
            canary=None if canary is None else refs[(row.model_id, canary)],
            canary_percent=row.canary_percent if canary is not None else 0.0,
            unseen_categories=unseen_categories_of(row.unseen_categories),
        )
        for row, primary, canary in wanted
    )
    return PoolAssignments(pool=pool, generation=pool_row.generation, models=models)


def generation(session: Session, pool: str) -> int:
    pool_row = find_pool(session, pool)
    return 0 if pool_row is None else pool_row.generation
