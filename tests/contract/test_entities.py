"""contract.entities: the JSON forms every process shares, version references, and a pool's assignments by name."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from contract.entities import (
    LISTED_CATEGORIES,
    ArtifactRef,
    Assignment,
    Callers,
    CallerToken,
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    PoolAssignments,
    Role,
    VersionRef,
)
from contract.errors import ConduitError, ErrorCode


def test_a_profile_survives_strict_json_with_its_infinite_edges_and_missing_statistics() -> None:
    profile = DatasetProfile(
        rows=3,
        columns=(
            ColumnProfile("x", "Float64", "numeric", 3, 1.0, (-math.inf, 0.0, math.inf), (0, 0), math.nan, 0.0),
            ColumnProfile("c", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("a", 2),), other_count=1),
        ),
    )
    # allow_nan=False: the text is JSON any reader (and PostgreSQL's json type) accepts.
    text = json.dumps(profile.to_json(), allow_nan=False)
    back = DatasetProfile.from_json(json.loads(text))
    assert back.columns[1] == profile.columns[1] and back.rows == 3
    numeric = back.column("x")
    assert numeric.bin_edges == (-math.inf, 0.0, math.inf) and math.isnan(numeric.min)
    assert back.column("c").categories == ("a",)
    with pytest.raises(KeyError):
        back.column("absent")


def test_a_hand_written_profile_needs_only_names_and_kinds() -> None:
    profile = DatasetProfile.from_json({"columns": [{"name": "x", "kind": "numeric", "bin_edges": [0, 1, 2]}]})
    assert profile.column("x") == ColumnProfile("x", "", "numeric", 0, 0.0, bin_edges=(0.0, 1.0, 2.0))
    with pytest.raises(KeyError):
        DatasetProfile.from_json({"columns": [{"name": "x"}]})


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("fraud", VersionRef("fraud")),
        ("fraud:12", VersionRef("fraud", version=12)),
        ("fraud@production", VersionRef("fraud", alias="production")),
    ],
)
def test_version_references_parse_and_print_back(text: str, ref: VersionRef) -> None:
    assert VersionRef.parse(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "fraud:", "fraud@", "fraud:1.5", "fraud@a@b", "fraud:1@a"])
def test_malformed_references_are_invalid(text: str) -> None:
    with pytest.raises(ConduitError) as refused:
        VersionRef.parse(text)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_a_pools_assignments_are_ordered_by_model_and_survive_json() -> None:
    ref, canary = ArtifactRef(1, "ab" * 32, 10), ArtifactRef(2, "cd" * 32, 20)
    state = PoolAssignments.of("default", 4, [Assignment("b", ref), Assignment("a", ref, canary, 12.5)])
    assert [a.model for a in state.models] == ["a", "b"]
    assert state.by_model()["a"].artifacts() == [ref, canary] and state.by_model()["b"].artifacts() == [ref]
    assert PoolAssignments.from_json(json.loads(json.dumps(state.to_json()))) == state
    strict = PoolAssignments.of("default", 5, [Assignment("a", ref, unseen_categories="refuse")])
    assert PoolAssignments.from_json(json.loads(json.dumps(strict.to_json()))) == strict
    # Saved by a server from before deployments had the option: the default.
    saved = {"pool": "default", "generation": 4, "models": [{"model": "a", "primary": ref.to_json(), "canary": None}]}
    assert PoolAssignments.from_json(saved).models[0].unseen_categories == "score"


def test_callers_digest_follows_the_content_not_the_order_and_survives_json() -> None:
    a = CallerToken("a" * 64, "ana", Role.VIEWER)
    b = CallerToken("b" * 64, "bob", Role.ADMIN)
    assert Callers.of([a, b]) == Callers.of([b, a])
    assert Callers.of([a, b]).digest != Callers.of([a]).digest
    assert Callers.of([a]).digest != Callers.of([CallerToken("a" * 64, "ana", Role.ADMIN)]).digest
    table = Callers.of([a, b])
    assert Callers.from_json(table.to_json()) == table


def test_a_profile_is_outdated_by_an_edge_float32_cannot_hold_or_rarer_categories_left_unlisted() -> None:
    numeric = ColumnProfile("x", "Float64", "numeric", 0, 0.0, (float("-inf"), 0.5, 17.25, float("inf")), (1, 2, 3))
    assert not numeric.outdated
    assert replace(numeric, bin_edges=(0.5, 17.3)).outdated  # float32(17.3) is another number
    assert replace(numeric, bin_edges=(0.5, 1e39)).outdated  # beyond float32's range
    top = tuple(CategoryCount(f"c{i}", 10) for i in range(20))
    city = ColumnProfile("city", "String", "categorical", 0, 0.0, distinct=23, top_categories=top, other_count=3)
    assert city.outdated
    assert not replace(city, other_categories=("c20", "c21", "c22")).outdated
    # More rarer categories than a profile lists, or none at all: nothing is missing.
    assert not replace(city, distinct=20 + LISTED_CATEGORIES + 1).outdated
    assert not replace(city, distinct=20, other_count=0).outdated
    assert DatasetProfile(3, (numeric, city)).outdated and not DatasetProfile(3, (numeric,)).outdated
