"""Monitoring roll-ups: added to under concurrency, read by model version and time, pruned by age.

Exporters of several servers (and several control plane replicas) add to the same minute at once, and every count
must land. Each transaction first inserts the roll-up rows it needs with ``ON CONFLICT DO NOTHING`` (so creating the
same row twice is no error), then locks them with ``SELECT … FOR UPDATE`` and adds in Python: JSON counts cannot be
added by an ``ON CONFLICT DO UPDATE``. Rows are created and locked in (model, version, minute) order in every
transaction, so two of them never wait for each other in a cycle; a roll-up's sketch rows are only written under its
lock. On SQLite, write transactions already hold the database's write lock from their first statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from contract.entities import LatencyHistogram, Rollup
from control_plane.monitoring import check_counts, fold, merge_counts, merge_histograms
from control_plane.store import _convert
from control_plane.store._rows import insert_ignoring
from control_plane.store._schema import RollupRow, SketchRow

__all__ = ["add_rollups", "list_rollups", "prune_rollups"]

_KEY = ["model", "version", "minute"]


def _empty(rollup: Rollup) -> dict[str, object]:
    return {
        "model": rollup.model,
        "version": rollup.version,
        "minute": rollup.minute,
        "requests": 0,
        "errors": {},
        "latency_bounds": [],
        "latency_counts": [],
        "latency_count": 0,
        "latency_sum": 0.0,
        "latency_min": None,
        "latency_max": None,
    }


def _set_latency(row: RollupRow, histogram: LatencyHistogram) -> None:
    row.latency_bounds = list(histogram.bounds)
    row.latency_counts = list(histogram.counts)
    row.latency_count = histogram.count
    row.latency_sum = histogram.sum
    row.latency_min = histogram.min
    row.latency_max = histogram.max


def _add_sketches(session: Session, rollup_id: int, rollup: Rollup) -> None:
    new = [{"rollup_id": rollup_id, "feature": f, "kind": k, "counts": {}} for f, k in sorted(rollup.sketches)]
    session.execute(insert_ignoring(session, SketchRow, new, ["rollup_id", "feature", "kind"]))
    # No lock of their own: every writer of these rows holds the roll-up's.
    for row in session.scalars(select(SketchRow).where(SketchRow.rollup_id == rollup_id)):
        added = rollup.sketches.get((row.feature, row.kind))
        if added:
            merged = merge_counts(row.counts, added)
            check_counts(replace(rollup, sketches={(row.feature, row.kind): merged}))
            row.counts = merged


def add_rollups(session: Session, rollups: Sequence[Rollup]) -> None:
    folded = fold(rollups)
    for rollup in folded:
        session.execute(insert_ignoring(session, RollupRow, [_empty(rollup)], _KEY))
    for rollup in folded:
        row = session.scalars(
            select(RollupRow)
            .where(
                RollupRow.model == rollup.model, RollupRow.version == rollup.version, RollupRow.minute == rollup.minute
            )
            .with_for_update()
        ).one()
        requests = row.requests + rollup.requests
        errors = merge_counts(row.errors, rollup.errors)
        latency = merge_histograms(_convert.latency(row), rollup.latency)
        # Counts add up across exports: a sum past BIGINT is refused (the transaction with it), never an overflow.
        check_counts(replace(rollup, requests=requests, errors=errors, latency=latency, sketches={}))
        row.requests = requests
        row.errors = errors
        if latency is not None:
            _set_latency(row, latency)
        if rollup.sketches:
            _add_sketches(session, row.id, rollup)


def list_rollups(session: Session, model: str, version: str, since: datetime, until: datetime) -> list[Rollup]:
    query = (
        select(RollupRow)
        .where(RollupRow.model == model, RollupRow.version == version)
        .where(RollupRow.minute >= since, RollupRow.minute < until)
        .order_by(RollupRow.minute)
        .options(selectinload(RollupRow.sketches))
    )
    return [_convert.rollup(row) for row in session.scalars(query)]


def prune_rollups(session: Session, before: datetime) -> int:
    old = select(RollupRow.id).where(RollupRow.minute < before)
    session.execute(delete(SketchRow).where(SketchRow.rollup_id.in_(old)))
    deleted: int = session.execute(delete(RollupRow).where(RollupRow.minute < before)).rowcount  # type: ignore[attr-defined]
    return deleted
