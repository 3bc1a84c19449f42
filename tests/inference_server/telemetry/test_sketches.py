"""Data sketches of a real in-process server: models trained by the trainers library, served with their data sets'
profiles, and the counts read from an in-memory reader equal a numpy computation of the same binning on the rows sent.

Stopping the server flushes its sketches, so the tests stop it before reading.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

from clients import AsyncInferenceClient, ConduitError
from contract.errors import ErrorCode
from contract.metrics import MISSING, OTHER, PREDICTION, SKETCH_BIN, SKETCH_CATEGORY, UNSEEN
from tests.inference_server.conftest import ProfiledModel, StartServer

# Uneven request sizes, so the batcher forms batches of several sizes.
SIZES = (1, 7, 3, 16, 2, 5)


def sketch_points(reader: InMemoryMetricReader, name: str) -> dict[tuple[str, str], dict[str, int]]:
    """{(model, feature): {bin or category: count}} of the sketch metric ``name``."""
    data = reader.get_metrics_data()
    found: dict[tuple[str, str], dict[str, int]] = {}
    slot = "bin" if name == SKETCH_BIN else "category"
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                assert metric.data.is_monotonic
                assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
                for point in metric.data.data_points:
                    attributes = dict(point.attributes)
                    assert set(attributes) == {"model", "version", "feature", slot}
                    assert attributes["version"] == "1"
                    counts = found.setdefault((attributes["model"], attributes["feature"]), {})
                    counts[attributes[slot]] = point.value
    return found


def expected_bins(values: np.ndarray, edges: list[float]) -> dict[str, int]:
    """The profile's rule in numpy: [e0, e1], then (e[i], e[i+1]]; below, above, missing outside them."""
    column = values.astype(np.float64).reshape(-1)
    missing = np.isnan(column)
    below, above = column < edges[0], column > edges[-1]
    inside = column[~missing & ~below & ~above]
    slots = np.maximum(np.searchsorted(edges, inside, side="left") - 1, 0)
    counts = np.bincount(slots, minlength=len(edges) - 1)
    return {
        **{str(i): int(c) for i, c in enumerate(counts)},
        "below": int(below.sum()),
        "above": int(above.sum()),
        "missing": int(missing.sum()),
    }


def expected_categories(values: list[str], profiled: dict[str, Any]) -> dict[str, int]:
    """Counts of the top categories, missing (""), and the rest; when the profile lists every category, the rest
    the training data never had apart, as unseen."""
    counted = Counter(values)
    top = [c["value"] for c in profiled["top_categories"]]
    expected = {value: counted.get(value, 0) for value in top}
    expected[MISSING] = counted.get("", 0)
    if profiled["other_count"] and not profiled["other_categories"]:
        expected[OTHER] = len(values) - sum(expected.values())
        return expected
    known = {*top, *profiled["other_categories"], ""}
    expected[UNSEEN] = sum(n for value, n in counted.items() if value not in known)
    expected[OTHER] = len(values) - sum(expected.values())
    return expected


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def credit_rows(model: ProfiledModel) -> dict[str, np.ndarray]:
    """The credit test split, plus rows the training data never had: missing, out of range, unseen categories."""
    rows = {name: array.copy() for name, array in model.result.test_inputs.items()}
    edges = column(model.profile, "income")["bin_edges"]
    rows["income"][:4, 0] = [np.nan, edges[0] - 1.0, edges[-1] + 1.0, edges[3]]  # missing, below, above, on an edge
    rows["age"][4:6, 0] = [edges[0], np.inf]  # a number far below income's edges is fine for age's; inf is above
    rows["has_mortgage"][:3, 0] = [np.nan, 0.5, 1.0]  # a boolean served as a number: missing, neither, true
    rows["city"][:3, 0] = ["atlantis", "", "paris"]
    rows["employment"][5, 0] = ""
    return rows


async def send(port: int, model: str, rows: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Send ``rows`` in requests of SIZES rows, 8 at a time; returns each request's outputs in order."""
    total = len(next(iter(rows.values())))
    cuts, start, i = [], 0, 0
    while start < total:
        end = min(start + SIZES[i % len(SIZES)], total)
        cuts.append((start, end))
        start, i = end, i + 1
    async with AsyncInferenceClient(f"127.0.0.1:{port}", timeout=30.0) as client:
        limit = asyncio.Semaphore(8)

        async def one(begin: int, end: int) -> Any:
            async with limit:
                return await client.infer(model, {name: array[begin:end] for name, array in rows.items()})

        return await asyncio.gather(*(one(b, e) for b, e in cuts))


@pytest.fixture
def repository(tmp_path: Path, credit: ProfiledModel, diabetes: ProfiledModel, classifier: Any) -> Path:
    from trainers.onnx_export import write_model_version

    repo = tmp_path / "sketched"
    credit.write(repo, "credit")  # profile beside config.json: every version's baseline
    diabetes.write(repo, "diabetes", beside="version")
    write_model_version(repo, "plain", 1, classifier.onnx)  # no profile: no sketches
    return repo


async def test_sketch_counts_equal_numpy_binning_of_the_rows_sent(
    start_server: StartServer, repository: Path, credit: ProfiledModel
) -> None:
    server, port, reader = await start_server(repository)
    rows = credit_rows(credit)
    answers = await send(port, "credit", rows)
    await server.stop()

    bins, categories = sketch_points(reader, SKETCH_BIN), sketch_points(reader, SKETCH_CATEGORY)
    for name in ("age", "income", "debt", "months_at_address"):
        assert bins[("credit", name)] == expected_bins(rows[name], column(credit.profile, name)["bin_edges"]), name
    # The rows added to the test split reach every slot (the split has missing incomes of its own).
    assert bins[("credit", "income")]["missing"] >= 1
    assert bins[("credit", "income")]["below"] == 1
    assert bins[("credit", "income")]["above"] == 1
    assert bins[("credit", "age")]["above"] >= 1
    for name in ("city", "employment"):
        values = rows[name].reshape(-1).tolist()
        assert categories[("credit", name)] == expected_categories(values, column(credit.profile, name)), name
    # Every city of the training data is in its profile: "atlantis" is one it never had.
    assert column(credit.profile, "city")["other_count"] == 0
    assert categories[("credit", "city")][UNSEEN] == 1 and categories[("credit", "city")][OTHER] == 0
    assert categories[("credit", "city")][MISSING] >= 1
    mortgage = rows["has_mortgage"].reshape(-1)
    assert categories[("credit", "has_mortgage")] == {
        "false": int((mortgage == 0).sum()),
        "true": int((mortgage == 1).sum()),
        OTHER: 0,
        UNSEEN: 1,
        MISSING: 1,
    }
    labels = np.concatenate([answer.as_numpy("label").reshape(-1) for answer in answers])
    assert categories[("credit", PREDICTION)] == {"0": int((labels == 0).sum()), "1": int((labels == 1).sum())}
    assert ("plain", "input") not in bins and not any(model == "plain" for model, _ in bins)


async def test_a_regressor_bins_its_prediction_over_the_targets_edges(
    start_server: StartServer, repository: Path, diabetes: ProfiledModel
) -> None:
    server, port, reader = await start_server(repository)
    rows = diabetes.result.test_inputs
    answers = await send(port, "diabetes", rows)
    await server.stop()

    bins = sketch_points(reader, SKETCH_BIN)
    predicted = np.concatenate([answer.as_numpy("variable").reshape(-1) for answer in answers])
    target = column(diabetes.profile, diabetes.profile["target"])["bin_edges"]
    assert bins[("diabetes", PREDICTION)] == expected_bins(predicted, target)
    assert sum(bins[("diabetes", PREDICTION)].values()) == len(predicted)
    for name in rows:
        assert bins[("diabetes", name)] == expected_bins(rows[name], column(diabetes.profile, name)["bin_edges"])
    assert not sketch_points(reader, SKETCH_CATEGORY)


async def test_without_a_profile_or_with_sketches_off_nothing_is_sketched_and_requests_are_served(
    start_server: StartServer, repository: Path, credit: ProfiledModel, classifier: Any
) -> None:
    server, port, reader = await start_server(repository)
    answers = await send(port, "plain", {"input": classifier.rows[:40]})
    assert sum(len(a.as_numpy("label")) for a in answers) == 40
    await server.stop()
    assert not any(
        model == "plain" for model, _ in sketch_points(reader, SKETCH_BIN) | sketch_points(reader, SKETCH_CATEGORY)
    )

    server, port, reader = await start_server(repository, sketches=False)
    answers = await send(port, "credit", credit.result.test_inputs)
    assert sum(len(a.as_numpy("label")) for a in answers) == len(credit.result.test_target)
    await server.stop()
    assert not sketch_points(reader, SKETCH_BIN)
    assert not sketch_points(reader, SKETCH_CATEGORY)


async def test_a_model_that_refuses_unseen_categories_answers_invalid_argument(
    start_server: StartServer, tmp_path: Path, credit: ProfiledModel
) -> None:
    from trainers.onnx_export import write_model_version

    repo = tmp_path / "strict"
    write_model_version(repo, "strict", 1, credit.result.onnx, config={"unseen_categories": "refuse"})
    # As a profile of more cities would list them: the two most frequent on top, the others by name only.
    strict = json.loads(json.dumps(credit.profile))
    city = column(strict, "city")
    top, rest = city["top_categories"][:2], city["top_categories"][2:]
    city.update(top_categories=top, other_count=sum(c["count"] for c in rest))
    city["other_categories"] = sorted(c["value"] for c in rest)
    (repo / "strict" / "profile.json").write_text(json.dumps(strict))
    credit.write(repo, "lenient")  # the default: "score"
    server, port, reader = await start_server(repo)
    row = {name: array[:2].copy() for name, array in credit.result.test_inputs.items()}
    # A top city and a missing one, then a rarer city the profile lists by name: all are scored.
    row["city"][:, 0] = [top[0]["value"], ""]
    async with AsyncInferenceClient(f"127.0.0.1:{port}", timeout=30.0) as client:
        assert len((await client.infer("strict", row)).as_numpy("label")) == 2
        row["city"][1, 0] = rest[0]["value"]
        assert len((await client.infer("strict", row)).as_numpy("label")) == 2
        row["city"][1, 0] = "atlantis"
        with pytest.raises(ConduitError) as refused:
            await client.infer("strict", row)
        assert refused.value.code is ErrorCode.INVALID_ARGUMENT
        assert "'city'" in refused.value.message and "'atlantis'" in refused.value.message
        # A long value is quoted only in part.
        row["city"][1, 0] = "x" * 100_000
        with pytest.raises(ConduitError) as long:
            await client.infer("strict", row)
        assert long.value.code is ErrorCode.INVALID_ARGUMENT and len(long.value.message) < 300
        # The default scores it, and counts it as unseen.
        row["city"][1, 0] = "atlantis"
        assert len((await client.infer("lenient", row)).as_numpy("label")) == 2
    await server.stop()
    assert sketch_points(reader, SKETCH_CATEGORY)[("lenient", "city")][UNSEEN] == 1
    # Refused requests never reach the batch, so nothing of them is sketched; the rarer city is other, not unseen.
    sketched = sketch_points(reader, SKETCH_CATEGORY)[("strict", "city")]
    assert (sketched[UNSEEN], sketched[OTHER], sketched[MISSING]) == (0, 1, 1)
