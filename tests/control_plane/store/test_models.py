"""Models, versions and aliases, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

import pytest

from contract.entities import Lineage, ModelVersion, NewVersion, TensorSignature
from contract.errors import ErrorCode
from control_plane.store import SqlStore

Register = Callable[..., ModelVersion]
ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def test_create_get_and_list_models(store: SqlStore) -> None:
    created = store.create_model("fraud", "card fraud", actor="alice")
    assert (created.name, created.description, created.archived, created.created_by) == (
        "fraud",
        "card fraud",
        False,
        "alice",
    )
    assert created.latest_version == 0 and dict(created.aliases) == {}
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset() == UTC.utcoffset(None)
    assert store.get_model("fraud") == created
    store.create_model("churn", "", actor="alice")
    assert [m.name for m in store.list_models(include_archived=False, page_size=0, page_token="").items] == [
        "churn",
        "fraud",
    ]


def test_model_errors(store: SqlStore, error_code: ErrorOf) -> None:
    store.create_model("fraud", "", actor="alice")
    assert error_code(lambda: store.create_model("fraud", "", actor="bob")) is ErrorCode.ALREADY_EXISTS
    assert error_code(lambda: store.get_model("nope")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.archive_model("nope", actor="a")) is ErrorCode.NOT_FOUND
    for bad in ["", "-x", "a/b", "a b", "x" * 129, "ü"]:
        assert error_code(lambda bad=bad: store.create_model(bad, "", actor="a")) is ErrorCode.INVALID_ARGUMENT


def test_archived_models_are_listed_on_request_and_take_no_versions(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud")
    archived = store.archive_model("fraud", actor="alice")
    assert archived.archived and archived.latest_version == 1
    assert store.list_models(include_archived=False, page_size=0, page_token="").items == []
    assert [m.name for m in store.list_models(include_archived=True, page_size=0, page_token="").items] == ["fraud"]
    assert error_code(lambda: register("fraud")) is ErrorCode.FAILED_PRECONDITION


def test_list_models_pages_through_every_model_once(store: SqlStore, error_code: ErrorOf) -> None:
    names = [f"m{i:03d}" for i in range(25)]
    for name in reversed(names):
        store.create_model(name, "", actor="a")
    seen, token, pages = [], "", 0
    while True:
        page = store.list_models(include_archived=False, page_size=10, page_token=token)
        seen += [m.name for m in page.items]
        pages += 1
        token = page.next_token
        if not token:
            break
    assert seen == names and pages == 3
    for bad in ["!!", "bm90IGpzb24", "eyJhZnRlciI6IDF9"]:  # not base64, not JSON, an int key for a name listing
        assert error_code(lambda bad=bad: store.list_models(include_archived=False, page_size=10, page_token=bad)) is (
            ErrorCode.INVALID_ARGUMENT
        )
    assert error_code(lambda: store.list_models(include_archived=False, page_size=-1, page_token="")) is (
        ErrorCode.INVALID_ARGUMENT
    )


def test_versions_are_numbered_and_keep_what_was_registered(store: SqlStore, register: Register) -> None:
    lineage = Lineage(dataset="cards", dataset_version="abc", training_spec="spec", code_version="v1", parent_version=0)
    first = register(
        "fraud", metrics={"auc": 0.9}, params={"c": "1"}, tags={"team": "risk"}, lineage=lineage, description="d"
    )
    second = register("fraud")
    assert (first.version, second.version) == (1, 2)
    assert first.inputs == (TensorSignature("x", "FP32", (-1, 4)),)
    assert first.outputs == (TensorSignature("y", "INT64", (-1,)),)
    assert dict(first.metrics) == {"auc": 0.9} and dict(first.params) == {"c": "1"}
    assert dict(first.tags) == {"team": "risk"} and first.lineage == lineage and first.description == "d"
    assert store.get_version("fraud", version=1) == first
    assert store.get_version("fraud") == second
    assert store.get_model("fraud").latest_version == 2
    assert store.artifact_digests() == {first.sha256, second.sha256}


def test_version_errors(
    store: SqlStore, register: Register, error_code: ErrorOf, new_version: Callable[..., NewVersion]
) -> None:
    assert error_code(lambda: store.create_version(new_version("ghost"), actor="a")) is ErrorCode.NOT_FOUND
    store.create_model("fraud", "", actor="a")
    assert error_code(lambda: store.get_version("fraud")) is ErrorCode.NOT_FOUND
    register("fraud")
    assert error_code(lambda: store.get_version("fraud", version=2)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.get_version("fraud", alias="production")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.get_version("ghost")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.get_version("fraud", version=1, alias="x")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: register("fraud", sha256="ABC")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: register("fraud", aliases=("123",))) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.list_versions("ghost", tags={}, alias=None, page_size=0, page_token="")) is (
        ErrorCode.NOT_FOUND
    )
    # A refused registration leaves nothing behind: the next version is still 2.
    assert register("fraud").version == 2


def test_list_versions_newest_first_by_tag_and_alias_in_pages(store: SqlStore, register: Register) -> None:
    for i in range(1, 13):
        register("fraud", tags={"parity": "even" if i % 2 == 0 else "odd", "team": "risk"})
    register("other", tags={"parity": "even"})
    store.set_alias("fraud", "production", 7, actor="a")

    def listed(**filters: object) -> list[int]:
        versions, token = [], ""
        while True:
            page = store.list_versions(
                "fraud",
                tags=filters.get("tags", {}),  # type: ignore[arg-type]
                alias=filters.get("alias"),  # type: ignore[arg-type]
                page_size=5,
                page_token=token,
            )
            versions += [v.version for v in page.items]
            if not (token := page.next_token):
                return versions

    assert listed() == list(range(12, 0, -1))
    assert listed(tags={"parity": "even"}) == [12, 10, 8, 6, 4, 2]
    assert listed(tags={"parity": "odd", "team": "risk"}) == [11, 9, 7, 5, 3, 1]
    assert listed(tags={"parity": "odd", "team": "other"}) == []
    assert listed(alias="production") == [7]
    assert listed(alias="staging") == []


def test_create_version_can_create_the_model_and_set_aliases(store: SqlStore, register: Register) -> None:
    version = register("fraud", aliases=("staging", "production"))
    assert version.version == 1 and set(version.aliases) == {"staging", "production"}
    model = store.get_model("fraud")
    assert dict(model.aliases) == {"production": 1, "staging": 1} and model.created_by == "alice"
    assert store.get_version("fraud", alias="staging") == version


def test_set_alias_creates_and_moves(store: SqlStore, register: Register, error_code: ErrorOf) -> None:
    register("fraud")
    register("fraud")
    created = store.set_alias("fraud", "production", 1, actor="a")
    assert (created.version, created.previous_version) == (1, None)
    moved = store.set_alias("fraud", "production", 2, actor="a")
    assert (moved.version, moved.previous_version) == (2, 1)
    assert store.get_version("fraud", alias="production").version == 2
    assert store.get_version("fraud", version=1).aliases == ()
    assert error_code(lambda: store.set_alias("fraud", "production", 3, actor="a")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.set_alias("ghost", "production", 1, actor="a")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.set_alias("fraud", "42", 1, actor="a")) is ErrorCode.INVALID_ARGUMENT
    assert error_code(lambda: store.set_alias("fraud", "a@b", 1, actor="a")) is ErrorCode.INVALID_ARGUMENT


def test_delete_alias(store: SqlStore, register: Register, error_code: ErrorOf) -> None:
    register("fraud", aliases=("production",))
    assert store.delete_alias("fraud", "production", actor="a") == 1
    assert dict(store.get_model("fraud").aliases) == {}
    assert error_code(lambda: store.delete_alias("fraud", "production", actor="a")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.delete_alias("ghost", "production", actor="a")) is ErrorCode.NOT_FOUND


@pytest.mark.parametrize("bad", ["", "0", "a" * 64 + "0", "g" * 64])
def test_register_refuses_a_malformed_digest(register: Register, error_code: ErrorOf, bad: str) -> None:
    assert error_code(lambda: register("fraud", sha256=bad)) is ErrorCode.INVALID_ARGUMENT
