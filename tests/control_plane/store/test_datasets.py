"""Data set versions and version attachments, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable

from contract.entities import (
    Attachment,
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    DatasetVersion,
    ModelVersion,
    NewDatasetVersion,
    NewVersion,
)
from contract.errors import ErrorCode
from control_plane.store import SqlStore

from .conftest import PROFILE

NewDataset = Callable[..., NewDatasetVersion]
ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def _imports(store: SqlStore) -> list[str]:
    page = store.list_audit(
        since=None, actor=None, action="ImportDataset", target_prefix=None, page_size=0, page_token=""
    )
    return [entry.target for entry in page.items]


def test_import_get_and_list_keep_the_profile(store: SqlStore, new_dataset: NewDataset) -> None:
    first = new_dataset("credit")
    stored, created = store.create_dataset_version(first, actor="alice")
    assert created
    assert (stored.name, stored.version, stored.sha256, stored.size_bytes) == (
        "credit",
        first.version,
        first.sha256,
        4321,
    )
    assert (stored.source, stored.target, stored.description, stored.created_by) == (
        "file:credit.csv",
        "fraud",
        "card transactions",
        "alice",
    )
    assert stored.profile == PROFILE  # infinite edges and all
    assert store.get_dataset("credit", first.version) == stored
    assert store.get_dataset("credit") == stored

    second, _ = store.create_dataset_version(new_dataset("credit"), actor="alice")
    other, _ = store.create_dataset_version(new_dataset("churn"), actor="bob")
    assert store.get_dataset("credit") == second
    assert store.list_datasets(page_size=0, page_token="").items == [other, second]
    versions = store.list_dataset_versions("credit", page_size=0, page_token="").items
    assert versions == [second, stored]
    assert _imports(store) == [
        f"dataset/churn:{other.version}",
        f"dataset/credit:{second.version}",
        f"dataset/credit:{first.version}",
    ]


def test_statistics_that_are_not_numbers_survive(store: SqlStore, new_dataset: NewDataset) -> None:
    # A column with no value has no mean; JSON has no NaN, so the store must carry it.
    empty = ColumnProfile("blank", "Float64", "numeric", missing=5, missing_rate=1.0, mean=math.nan, std=math.inf)
    stored, _ = store.create_dataset_version(new_dataset("credit", profile=DatasetProfile(5, (empty,))), actor="a")
    (column,) = store.get_dataset("credit").profile.columns
    assert math.isnan(column.mean) and column.std == math.inf
    assert math.isnan(stored.profile.columns[0].mean)


def test_importing_a_version_again_returns_it_unchanged(store: SqlStore, new_dataset: NewDataset) -> None:
    first = new_dataset("credit")
    stored, _ = store.create_dataset_version(first, actor="alice")
    again = dataclasses.replace(first, description="changed", sha256=hashlib.sha256(b"re-encoded").hexdigest())
    returned, created = store.create_dataset_version(again, actor="bob")
    assert (returned, created) == (stored, False)
    assert store.list_dataset_versions("credit", page_size=0, page_token="").items == [stored]
    assert len(_imports(store)) == 1


def _current(profile: DatasetProfile) -> DatasetProfile:
    """``profile`` (whose country column leaves 38 rarer countries unlisted) as the current profiler makes it."""
    country = profile.column("country")
    listed = tuple(f"C{i:02d}" for i in range(country.distinct - len(country.top_categories)))
    columns = tuple(dataclasses.replace(c, other_categories=listed) if c is country else c for c in profile.columns)
    return dataclasses.replace(profile, columns=columns)


def test_an_outdated_profile_is_rebuilt_once_and_audited(
    store: SqlStore, new_dataset: NewDataset, error_code: ErrorOf
) -> None:
    first = new_dataset("credit")
    stored, _ = store.create_dataset_version(first, actor="alice")
    assert stored.profile.outdated
    # Not the stored rows' profile: refused, nothing changed.
    other_rows = dataclasses.replace(first, profile=dataclasses.replace(_current(PROFILE), rows=999))
    assert error_code(lambda: store.rebuild_dataset_profile(other_rows, actor="bob")) is ErrorCode.INVALID_ARGUMENT
    # An outdated profile never replaces another.
    assert store.rebuild_dataset_profile(first, actor="bob") == (stored, False)

    rebuilt, replaced = store.rebuild_dataset_profile(
        dataclasses.replace(first, profile=_current(PROFILE)), actor="bob"
    )
    assert replaced and rebuilt.profile == _current(PROFILE) and not rebuilt.profile.outdated
    assert dataclasses.replace(rebuilt, profile=PROFILE) == stored  # only the profile changed
    assert store.get_dataset("credit", first.version) == rebuilt
    # A current profile stays, whatever comes next.
    assert store.rebuild_dataset_profile(dataclasses.replace(first, profile=_current(PROFILE)), actor="carol") == (
        rebuilt,
        False,
    )
    audit = store.list_audit(
        since=None, actor=None, action="RebuildDatasetProfile", target_prefix=None, page_size=0, page_token=""
    )
    assert [(e.actor, e.target) for e in audit.items] == [("bob", f"dataset/credit:{first.version}")]
    unknown = dataclasses.replace(first, version="0" * 16)
    assert error_code(lambda: store.rebuild_dataset_profile(unknown, actor="bob")) is ErrorCode.NOT_FOUND


def test_listings_page_through_every_item_once(store: SqlStore, new_dataset: NewDataset) -> None:
    for name in ("a", "b", "c"):
        for _ in range(3):
            store.create_dataset_version(new_dataset(name), actor="x")

    def every(page: Callable[[str], tuple[list[DatasetVersion], str]]) -> list[DatasetVersion]:
        items, token = page("")
        while token:
            more, token = page(token)
            items += more
        return items

    names = every(lambda token: _split(store.list_datasets(page_size=2, page_token=token)))
    assert [d.name for d in names] == ["a", "b", "c"]
    assert names == [store.get_dataset(name) for name in ("a", "b", "c")]
    versions = every(lambda token: _split(store.list_dataset_versions("b", page_size=2, page_token=token)))
    assert [v.created_at for v in versions] == sorted((v.created_at for v in versions), reverse=True)
    assert versions[0] == store.get_dataset("b") and len({v.version for v in versions}) == 3


def _split(page: object) -> tuple[list[DatasetVersion], str]:
    return list(page.items), page.next_token  # type: ignore[attr-defined]


def test_unknown_and_malformed_names_and_versions(
    store: SqlStore, new_dataset: NewDataset, error_code: ErrorOf
) -> None:
    stored, _ = store.create_dataset_version(new_dataset("credit"), actor="a")
    missing = "f" * 16
    assert error_code(lambda: store.get_dataset("ghost")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.get_dataset("credit", missing)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.list_dataset_versions("ghost", page_size=0, page_token="")) is ErrorCode.NOT_FOUND
    for version in ("", "abc", "F" * 16, "g" * 16, "0" * 65, stored.version + " "):
        assert error_code(lambda v=version: store.get_dataset("credit", v)) is ErrorCode.INVALID_ARGUMENT
        bad = new_dataset("credit", version=version)
        assert error_code(lambda bad=bad: store.create_dataset_version(bad, actor="a")) is ErrorCode.INVALID_ARGUMENT
    for name in ("", "a/b", "-x", "x" * 129):
        assert error_code(lambda n=name: store.get_dataset(n)) is ErrorCode.INVALID_ARGUMENT
    assert store.list_dataset_versions("credit", page_size=0, page_token="").items == [stored]


def _column(**fields: object) -> ColumnProfile:
    values: dict[str, object] = {"name": "x", "dtype": "Float64", "kind": "numeric", "missing": 0, "missing_rate": 0.0}
    return ColumnProfile(**{**values, **fields})  # type: ignore[arg-type]


def test_malformed_data_sets_are_refused(store: SqlStore, new_dataset: NewDataset, error_code: ErrorOf) -> None:
    profiles = [
        DatasetProfile(rows=-1),
        DatasetProfile(1, (_column(), _column())),
        DatasetProfile(1, (_column(kind="text"),)),
        DatasetProfile(1, (_column(missing=-1),)),
        DatasetProfile(1, (_column(missing_rate=1.5),)),
        DatasetProfile(1, (_column(missing_rate=math.nan),)),
        DatasetProfile(1, (_column(bin_edges=(0.0, 1.0), bin_counts=(1, 2)),)),
        DatasetProfile(1, (_column(bin_edges=(0.0,)),)),
        DatasetProfile(1, (_column(bin_edges=(1.0, 0.0), bin_counts=(1,)),)),
        DatasetProfile(1, (_column(bin_edges=(0.0, math.nan), bin_counts=(1,)),)),
        DatasetProfile(1, (_column(bin_edges=(0.0, 1.0), bin_counts=(-1,)),)),
        DatasetProfile(1, (_column(kind="categorical", top_categories=(CategoryCount("a", -2),)),)),
    ]
    others: list[dict[str, object]] = [
        {"source": "sql:postgresql://alice:secret@db/credit"},
        {"sha256": "A" * 64},
        {"size_bytes": -1},
        {"description": "d" * 70000},
        {"target": "t" * 5000},
    ]
    for fields in [{"profile": profile} for profile in profiles] + others:
        bad = new_dataset("credit", **fields)
        assert error_code(lambda bad=bad: store.create_dataset_version(bad, actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.get_dataset("credit")) is ErrorCode.NOT_FOUND
    assert store.list_datasets(page_size=0, page_token="").items == []


def _attachment(name: str, content: bytes, media_type: str = "application/json") -> Attachment:
    return Attachment(name, media_type, hashlib.sha256(content).hexdigest(), len(content))


def test_attachments_are_kept_with_their_version(
    store: SqlStore, new_version: Callable[..., NewVersion], new_dataset: NewDataset
) -> None:
    log, evaluation = _attachment("training.log", b"log", "text/plain"), _attachment("evaluation.json", b"{}")
    version = store.create_version(new_version("fraud", attachments=(log, evaluation)), actor="a", create_model=True)
    assert version.attachments == (evaluation, log)  # by name
    assert store.get_version("fraud", version=1).attachments == (evaluation, log)
    assert store.create_version(new_version("fraud"), actor="a").attachments == ()
    (entry,) = store.list_audit(
        since=None, actor=None, action="RegisterVersion", target_prefix="model/fraud:1", page_size=0, page_token=""
    ).items
    assert entry.after is not None and [a["name"] for a in entry.after["attachments"]] == [
        "evaluation.json",
        "training.log",
    ]
    dataset, _ = store.create_dataset_version(new_dataset("credit"), actor="a")
    assert {log.sha256, evaluation.sha256, dataset.sha256, version.sha256} <= store.artifact_digests()


def test_malformed_attachments_leave_no_version(
    store: SqlStore, new_version: Callable[..., NewVersion], error_code: ErrorOf, register: Callable[..., ModelVersion]
) -> None:
    register("fraud")
    good = _attachment("spec.toml", b"x", "application/toml")
    for attachments in [
        (good, good),
        (_attachment("../spec.toml", b"x"),),
        (_attachment(".hidden", b"x"),),
        (_attachment("a" * 129, b"x"),),
        (_attachment("spec.toml", b"x", media_type=""),),
        (_attachment("spec.toml", b"x", media_type="text/plain\n"),),
        (dataclasses.replace(good, sha256="nope"),),
    ]:
        new = new_version("fraud", attachments=attachments)
        assert error_code(lambda new=new: store.create_version(new, actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert store.get_model("fraud").latest_version == 1
