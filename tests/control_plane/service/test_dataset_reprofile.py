"""Data set versions imported before profiles were float32 and listed rarer categories: importing the same rows
again, or ``conduit datasets reprofile``, replaces the outdated profile (audited), and a model version trained on
them then sees no drift in its own training rows as the servers count them (float32)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from clients.cli import main
from clients.training import import_outcome
from contract.client import SyncControlPlaneClient
from contract.entities import (
    DatasetProfile,
    DatasetVersion,
    DriftRule,
    Lineage,
    NewDatasetVersion,
    NewVersion,
    Rollup,
    TensorSignature,
)
from control_plane.artifacts import LocalArtifactStore
from control_plane.monitoring import build_report
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service._baseline import version_baseline
from control_plane.store import SqlStore
from tests.control_plane.monitoring.conftest import numeric_sketch
from trainers import datasets as ds

from .conftest import ADMIN_TOKEN, Api

CITIES = [f"city-{i:02d}" for i in range(25)]  # as frequent as each other: 20 top ones (by name), 5 others
# Measurements to one decimal, heavily tied, so that the quantile edges are measured values; float32 rounds 17.2,
# 17.6 and 17.7 up.
LENGTHS = {17.1: 150, 17.2: 450, 17.3: 200, 17.6: 500, 17.7: 450, 18.0: 250}


def _rows() -> pl.DataFrame:
    """2000 lengths and 25 cities."""
    return pl.DataFrame(
        {
            "length": [length for length, count in LENGTHS.items() for _ in range(count)],
            "city": [CITIES[i % 25] for i in range(2000)],
            "label": [("no", "yes")[i % 3 == 0] for i in range(2000)],
        }
    )


def _outdated(profile: DatasetProfile, frame: pl.DataFrame) -> DatasetProfile:
    """``profile`` as Conduit profiled before: float64 quantile edges counted in float64, no rarer categories."""
    columns = []
    for column in profile.columns:
        old = dataclasses.replace(column, other_categories=())
        if column.kind == "numeric":
            values = frame[column.name].cast(pl.Float64).to_numpy()
            edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, 11)))
            index = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
            counts = np.bincount(index, minlength=len(edges) - 1)
            old = dataclasses.replace(
                old, bin_edges=tuple(float(e) for e in edges), bin_counts=tuple(int(c) for c in counts)
            )
        columns.append(old)
    return dataclasses.replace(profile, columns=tuple(columns))


def _store_outdated(api: Api, store: SqlStore, frame: pl.DataFrame, tmp_path: Path) -> DatasetVersion:
    """``frame`` imported as data set ``lengths`` with an outdated profile, written through the store itself."""
    frame = ds.canonical(frame)
    path = tmp_path / "rows.parquet"
    ds.write_parquet(frame, path)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    LocalArtifactStore(api.artifacts).put(sha256, path)
    new = NewDatasetVersion(
        name="lengths",
        version=ds.content_version(frame),
        sha256=sha256,
        size_bytes=path.stat().st_size,
        profile=_outdated(ds.profile(frame), frame),
        source="file:lengths.csv",
        target="label",
        description="rulers",
    )
    stored, created = store.create_dataset_version(new, actor="admin")
    assert created and stored.profile.outdated
    return stored


def _served_drift(store: SqlStore, api: Api, frame: pl.DataFrame) -> bool:
    """Whether model ``ruler`` (trained on ``lengths``, no profile of its own) sees its training lengths, served as
    FP32, drifted from its baseline."""
    version = store.get_version("ruler", version=1)
    baseline = version_baseline(store, LocalArtifactStore(api.artifacts), version)
    assert baseline is not None
    edges = baseline.columns["length"].bin_edges
    served = (float(v) for v in frame["length"].cast(pl.Float32).to_numpy())
    minute = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    sketches = {("length", "numeric"): numeric_sketch(served, edges)}
    rollup = Rollup("ruler", "1", minute, requests=frame.height, sketches=sketches)
    report = build_report("ruler", 1, [rollup], minutes=1, baseline=baseline, rule=DriftRule())
    (feature,) = report.windows[0].features
    assert not feature.too_few_rows
    return feature.drifted


def _register_model(store: SqlStore, dataset: DatasetVersion) -> None:
    new = NewVersion(
        model="ruler",
        sha256="a" * 64,
        size_bytes=1,
        inputs=(TensorSignature("length", "FP32", (-1, 1)),),
        outputs=(TensorSignature("label", "INT64", (-1,)),),
        lineage=Lineage(dataset=dataset.name, dataset_version=dataset.version),
    )
    store.create_version(new, actor="admin", create_model=True, aliases=())


def _check_current(dataset: DatasetVersion) -> None:
    assert not dataset.profile.outdated
    length = dataset.profile.column("length")
    assert all(float(np.float32(edge)) == edge for edge in length.bin_edges)
    assert dataset.profile.column("city").other_categories == tuple(CITIES[20:])


async def test_importing_the_same_rows_again_rebuilds_an_outdated_profile(
    api: Api, sqlite_url: str, tmp_path: Path
) -> None:
    frame = _rows()
    store = SqlStore(sqlite_url)
    try:
        old = _store_outdated(api, store, frame, tmp_path)
        _register_model(store, old)
        assert _served_drift(store, api, frame)  # the false drift of an outdated profile

        def again() -> tuple[str, DatasetVersion, str]:
            with SyncControlPlaneClient.connect(api.server.target, token=ADMIN_TOKEN) as client:
                done = import_outcome(client, frame, "lengths", source="file:lengths.csv", target="label")
                return done.outcome, done.dataset, import_outcome(client, frame, "lengths", source="x").outcome

        outcome, rebuilt, then = await asyncio.to_thread(again)
        assert (outcome, then) == ("profile rebuilt", "unchanged")
        assert rebuilt.version == old.version and rebuilt.sha256 == old.sha256
        _check_current(rebuilt)
        _check_current(store.get_dataset("lengths", old.version))
        assert not _served_drift(store, api, frame)
        audit = store.list_audit(
            since=None, actor=None, action="RebuildDatasetProfile", target_prefix=None, page_size=100, page_token=""
        )
        assert [(e.target, (e.before or {})["profile"], (e.after or {})["profile"]) for e in audit.items] == [
            (f"dataset/lengths:{old.version}", "outdated", "current")
        ]
    finally:
        store.close()


def _cli(target: str, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--control-plane", target, "--token", token])
    return code, out.getvalue(), err.getvalue()


async def test_conduit_datasets_reprofile_rebuilds_from_the_stored_rows(
    api: Api, sqlite_url: str, tmp_path: Path
) -> None:
    frame = _rows()
    store = SqlStore(sqlite_url)
    try:
        old = _store_outdated(api, store, frame, tmp_path)
        _register_model(store, old)
        target = api.server.target
        # The rows are for maintainers only: a viewer is refused in one line, and nothing changes.
        await api.user("vera", cp.ROLE_VIEWER)
        code, _, err = await asyncio.to_thread(
            _cli, target, "datasets", "reprofile", "lengths", token=api.tokens["vera"]
        )
        assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert store.get_dataset("lengths", old.version).profile.outdated

        code, out, err = await asyncio.to_thread(_cli, target, "datasets", "reprofile", f"lengths:{old.version}")
        assert (code, out.strip(), err) == (0, f"profile rebuilt lengths:{old.version}", "")
        stored = store.get_dataset("lengths", old.version)
        _check_current(stored)
        assert (stored.source, stored.target, stored.description) == ("file:lengths.csv", "label", "rulers")
        assert not _served_drift(store, api, frame)

        code, out, _ = await asyncio.to_thread(_cli, target, "datasets", "reprofile", "lengths")
        assert (code, out.strip()) == (0, f"profile already current lengths:{old.version}")
        code, out, err = await asyncio.to_thread(_cli, target, "datasets", "reprofile", "missing")
        assert code != 0 and "not found" in err and "Traceback" not in err
    finally:
        store.close()
