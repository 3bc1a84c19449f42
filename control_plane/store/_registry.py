"""Models, versions and aliases."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from sqlalchemy import exists, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.entities import AliasChange, Model, ModelVersion, NewVersion, Page
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._paging import decode_int, decode_str, make_page, page_limit
from control_plane.store._rows import (
    bump_generation,
    find_alias,
    find_model,
    find_version,
    insert_missing,
    pools_serving,
)
from control_plane.store._schema import (
    AliasRow,
    AttachmentRow,
    DatasetVersionRow,
    ModelRow,
    PredictionLogRow,
    TagRow,
    VersionRow,
    utcnow,
)
from control_plane.store._validate import (
    check_alias,
    check_attachments,
    check_name,
    check_version_metadata,
    check_version_number,
)

__all__ = [
    "archive_model",
    "artifact_digests",
    "create_model",
    "create_version",
    "delete_alias",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "set_alias",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _reload_model(session: Session, row: ModelRow) -> Model:
    session.flush()
    session.expire(row, ["aliases"])
    return _convert.model(row)


def _reload_version(session: Session, row: VersionRow) -> ModelVersion:
    session.flush()
    session.expire(row, ["aliases", "tags", "attachments"])
    return _convert.version(row)


def create_model(session: Session, name: str, description: str, *, actor: str) -> Model:
    check_name("model", name)
    if session.scalar(select(ModelRow.id).where(ModelRow.name == name)) is not None:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"model {name!r} already exists")
    row = ModelRow(
        name=name, description=description, archived=False, created_at=utcnow(), created_by=actor, latest_version=0
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        # Created by a concurrent transaction between the check and the insert.
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"model {name!r} already exists") from None
    record(session, actor, "CreateModel", f"model/{name}", before=None, after=_convert.model_state(row))
    return _reload_model(session, row)


def get_model(session: Session, name: str) -> Model:
    return _convert.model(find_model(session, name))


def list_models(session: Session, *, include_archived: bool, page_size: int, page_token: str) -> Page[Model]:
    limit = page_limit(page_size)
    after = decode_str(page_token)
    query = select(ModelRow).order_by(ModelRow.name).limit(limit + 1)
    if after is not None:
        query = query.where(ModelRow.name > after)
    if not include_archived:
        query = query.where(~ModelRow.archived)
    return make_page(session.scalars(query).all(), limit, lambda row: row.name, _convert.model)


def archive_model(session: Session, name: str, *, actor: str) -> Model:
    row = find_model(session, name, lock=True)
    if pools_serving(session, row.id):
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {name!r} is deployed; undeploy it first")
    before = _convert.model_state(row)
    row.archived = True
    record(session, actor, "ArchiveModel", f"model/{name}", before=before, after=_convert.model_state(row))
    return _reload_model(session, row)


def _check_new_version(new: NewVersion, aliases: Sequence[str]) -> None:
    check_name("model", new.model)
    for alias in aliases:
        check_alias(alias)
    for digest, size in ((new.sha256, new.size_bytes), *((a.sha256, a.size_bytes) for a in new.attachments)):
        if not _SHA256.fullmatch(digest):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "sha256 must be 64 lowercase hex digits")
        if size < 0:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "size_bytes must not be negative")
    check_version_metadata(new.metrics, new.params, new.tags, new.description)
    check_attachments((a.name, a.media_type) for a in new.attachments)


def create_version(
    session: Session, new: NewVersion, *, actor: str, create_model: bool, aliases: Sequence[str]
) -> ModelVersion:
    _check_new_version(new, aliases)
    if create_model:
        state = {"name": new.model, "description": "", "archived": False}
        values = {**state, "latest_version": 0, "created_at": utcnow(), "created_by": actor}
        if insert_missing(session, ModelRow, values, ["name"]):
            record(session, actor, "CreateModel", f"model/{new.model}", before=None, after=state)
    # The lock makes concurrent registrations take turns on the counter; the unique (model_id, version) constraint
    # would turn any mistake here into an error rather than two versions with one number.
    model = find_model(session, new.model, lock=True)
    if model.archived:
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {new.model!r} is archived")
    model.latest_version += 1
    row = VersionRow(
        model=model,
        version=model.latest_version,
        sha256=new.sha256,
        size_bytes=new.size_bytes,
        inputs=_convert.signatures_json(new.inputs),
        outputs=_convert.signatures_json(new.outputs),
        metrics={key: float(value) for key, value in new.metrics.items()},
        params=dict(new.params),
        lineage=asdict(new.lineage),
        description=new.description,
        created_at=utcnow(),
        created_by=actor,
        tags=[TagRow(key=key, value=value) for key, value in new.tags.items()],
        attachments=[
            AttachmentRow(name=a.name, media_type=a.media_type, sha256=a.sha256, size_bytes=a.size_bytes)
            for a in new.attachments
        ],
    )
    session.add(row)
    session.flush()
    unique_aliases = list(dict.fromkeys(aliases))
    after = {**_convert.version_state(row, new.tags), "aliases": unique_aliases}
    record(session, actor, "RegisterVersion", f"model/{new.model}:{row.version}", before=None, after=after)
    for alias in unique_aliases:
        _move_alias(session, model, alias, row, actor=actor)
    return _reload_version(session, row)


def get_version(session: Session, model: str, *, version: int | None, alias: str | None) -> ModelVersion:
    model_row = find_model(session, model)
    if version is not None and alias is not None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "name a version by number or by alias, not both")
    if alias is not None:
        return _convert.version(find_alias(session, model_row, check_alias(alias)).version)
    if version is None:
        if model_row.latest_version == 0:
            raise ConduitError(ErrorCode.NOT_FOUND, f"model {model!r} has no version yet")
        version = model_row.latest_version
    return _convert.version(find_version(session, model_row, check_version_number(version)))


def list_versions(
    session: Session, model: str, *, tags: Mapping[str, str], alias: str | None, page_size: int, page_token: str
) -> Page[ModelVersion]:
    limit = page_limit(page_size)
    after = decode_int(page_token)
    model_row = find_model(session, model)
    query = select(VersionRow).where(VersionRow.model_id == model_row.id).order_by(VersionRow.version.desc())
    if after is not None:
        query = query.where(VersionRow.version < after)
    for key, value in tags.items():
        query = query.where(
            exists().where(TagRow.version_id == VersionRow.id, TagRow.key == key, TagRow.value == value)
        )
    if alias:
        query = query.join(AliasRow, AliasRow.version_id == VersionRow.id).where(AliasRow.name == alias)
    rows = session.scalars(query.limit(limit + 1)).all()
    return make_page(rows, limit, lambda row: row.version, _convert.version)


def artifact_digests(session: Session) -> set[str]:
    referenced = union(
        select(VersionRow.sha256),
        select(AttachmentRow.sha256),
        select(DatasetVersionRow.sha256),
        select(PredictionLogRow.sha256),
    )
    return set(session.scalars(referenced).all())


def _move_alias(session: Session, model: ModelRow, alias: str, target: VersionRow, *, actor: str) -> int | None:
    """Point ``alias`` at ``target``; returns the version it pointed at before (None: it is new)."""
    row = session.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.name == alias))
    previous = None if row is None else row.version.version
    if row is None:
        session.add(AliasRow(model_id=model.id, name=alias, version=target, moved_at=utcnow()))
    elif row.version_id != target.id:
        row.previous_version_id = row.version_id
        row.version = target
        row.moved_at = utcnow()
    before = None if previous is None else {"version": previous}
    record(session, actor, "SetAlias", f"model/{model.name}@{alias}", before=before, after={"version": target.version})
    if previous != target.version:
        bump_generation(session, pools_serving(session, model.id, alias=alias))
    return previous


def set_alias(session: Session, model: str, alias: str, version: int, *, actor: str) -> AliasChange:
    check_alias(alias)
    model_row = find_model(session, model, lock=True)
    target = find_version(session, model_row, check_version_number(version))
    previous = _move_alias(session, model_row, alias, target, actor=actor)
    return AliasChange(model=model, alias=alias, version=version, previous_version=previous)


def delete_alias(session: Session, model: str, alias: str, *, actor: str) -> int:
    check_alias(alias)
    model_row = find_model(session, model, lock=True)
    row = find_alias(session, model_row, alias)
    if pools_serving(session, model_row.id, alias=alias):
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION, f"a deployment follows {model}@{alias}; deploy something else first"
        )
    version = row.version.version
    session.delete(row)
    record(session, actor, "DeleteAlias", f"model/{model}@{alias}", before={"version": version}, after=None)
    return version
