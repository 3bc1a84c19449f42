"""Evaluations as the control plane runs them, through the real API: a rule's silence reaches the alerts of versions
it starts watching later (SQLite and PostgreSQL), never over an alert changed since the evaluation read it
(PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import create_engine, text

from contract.entities import LatencyHistogram, Rollup
from control_plane.alerting import AlertKey, AlertState, Phase, SqlAlertStore, acknowledge
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.store import SqlStore

from .conftest import Api, StartApi, eventually

UNTIL = datetime(2030, 3, 17, 12, 0, tzinfo=UTC)


async def _silenced_rule(api: Api, model_bytes: bytes, *, production: int) -> None:
    """Versions 1 and 2 of "fraud", ``production`` on one of them, a p99 rule "slow" on fraud@production silenced
    until ``UNTIL``, and an evaluation job "check" that runs only when asked."""
    stub, admin = api.stub, api.admin
    for _ in range(2):
        await api.register("fraud", model_bytes)
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=production), metadata=admin)
    rule = cp.CreateAlertRuleRequest(name="slow", model="fraud@production", when="p99_ms > 250", notify="log")
    await stub.CreateAlertRule(rule, metadata=admin)
    await stub.CreateJob(cp.CreateJobRequest(name="check", cron="0 3 * * *", kind="evaluate"), metadata=admin)
    await stub.SilenceAlert(
        cp.SilenceAlertRequest(rule="slow", until=Timestamp(seconds=int(UNTIL.timestamp()))), metadata=admin
    )


async def test_a_silenced_rule_silences_the_version_its_alias_moves_to(
    any_api: Api, store_url: str, model_bytes: bytes
) -> None:
    stub, admin = any_api.stub, any_api.admin
    await _silenced_rule(any_api, model_bytes, production=1)

    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=2), metadata=admin)
    run = await stub.RunJob(cp.RunJobRequest(name="check"), metadata=admin, timeout=30)
    assert run.outcome == "succeeded", run.log

    engine = create_engine(store_url)
    try:
        # Alerts list no silence; the store that keeps them shows it.
        state = SqlAlertStore(engine).load(AlertKey("slow", "fraud", "2"))
    finally:
        engine.dispose()
    assert state.silenced_until == UNTIL


async def test_a_carried_silence_never_overwrites_an_alert_changed_since_it_was_read(
    start_api: StartApi,
    postgres_url: str,
    model_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # PostgreSQL only: a row lock holds the evaluation between its read and its write, and pg_stat_activity shows it
    # waiting there. SQLite shows no waiter, so there the interleaving could only be hoped for.
    monkeypatch.setenv("CONDUIT_ALERTS_EVALUATE_INTERVAL_S", "86400")  # no built-in evaluation meanwhile
    api = await start_api(postgres_url)
    stub, admin = api.stub, api.admin
    await _silenced_rule(api, model_bytes, production=2)

    key = AlertKey("slow", "fraud", "2")
    now = datetime.now(UTC)
    # Version 2 answers slowly (a p99 near 400 ms) in the minutes before: the evaluation finds the alert still firing.
    registry = SqlStore(postgres_url)
    slow = LatencyHistogram((0.25, 0.5), (0, 100, 0), 100, 40.0)
    this_minute = now.replace(second=0, microsecond=0)
    registry.add_rollups([Rollup("fraud", "2", this_minute - timedelta(minutes=n), 100, {}, slow) for n in (1, 2, 3)])
    registry.close()
    engine = create_engine(postgres_url)
    try:
        store = SqlAlertStore(engine)
        # Version 2 firing, as a replica that read the rule before its silence stores it: not silenced.
        firing = AlertState(phase=Phase.FIRING, since=now, changed_at=now, evaluated_at=now, value=300.0)
        store.save(key, firing)
        acknowledged = acknowledge(firing, by="ann", at=now)
        with engine.connect() as other, caplog.at_level(logging.INFO, logger="conduit.jobs"):
            where = "WHERE rule = :rule AND model = :model AND version = :version"
            row = {"rule": key.rule, "model": key.model, "version": key.version}
            other.execute(text(f"SELECT 1 FROM alert_states {where} FOR UPDATE"), row)
            run = asyncio.ensure_future(stub.RunJob(cp.RunJobRequest(name="check"), metadata=admin, timeout=30))

            def waiting() -> bool:
                query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"
                with engine.connect() as conn:
                    return bool(conn.exec_driver_sql(query, ("%alert_states%",)).scalar_one())

            await eventually(waiting, "the evaluation waits to write version 2's alert")
            # Ann's acknowledgement lands after the evaluation read the alert, before it writes.
            other.execute(
                text(f"UPDATE alert_states SET state = CAST(:state AS json) {where}"),
                {**row, "state": json.dumps(acknowledged.to_dict())},
            )
            other.commit()
            first = await run
        assert first.outcome == "succeeded", first.log
        after = store.load(key)
        assert (after.acknowledged_by, after.silenced_until) == ("ann", None)
        assert f"alert {key} changed while its rule's silence was carried" in caplog.text
        # The next evaluation carries the silence onto the alert as it now is.
        second = await stub.RunJob(cp.RunJobRequest(name="check"), metadata=admin, timeout=30)
        assert second.outcome == "succeeded", second.log
        after = store.load(key)
        assert (after.acknowledged_by, after.silenced_until) == ("ann", UNTIL)
    finally:
        engine.dispose()
