"""``SqlAlertStore``: alert states and their event history in ``alert_states`` and ``alert_events``.

A state change and its event are written in one transaction, before any channel is told; the delivery outcome is
written after the send. An event whose delivery is still NULL was committed but never sent (the process died in
between): ``undelivered`` finds it for the next evaluation to send, so a crash delays a notification rather than
losing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Executable, Select, delete, insert, select, update

from control_plane.alerting._delivery import Delivery, DeliveryOutcome
from control_plane.alerting._sql import dialect_insert
from control_plane.alerting._state import AlertEvent, AlertKey, AlertState, Phase
from control_plane.alerting._tables import alert_events as events
from control_plane.alerting._tables import alert_states as states
from control_plane.alerting._time import Clock, utcnow
from control_plane.store._schema import AuditRow

__all__ = ["SqlAlertStore", "StoredEvent"]


def _acknowledgement(key: AlertKey, state: AlertState) -> dict[str, Any]:
    acknowledged_at = None if state.acknowledged_at is None else state.acknowledged_at.isoformat()
    return {
        "model": key.model,
        "version": key.version,
        "phase": state.phase.value,
        "acknowledged_by": state.acknowledged_by,
        "acknowledged_at": acknowledged_at,
    }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event of the history with its delivery (None: not sent yet)."""

    id: int
    key: AlertKey
    event: AlertEvent
    channel: str
    delivery: Delivery | None


class SqlAlertStore:
    """Alert states and history on the registry's database (see the module's docstring for the write order)."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock
        self._insert = dialect_insert(engine, states)

    def load(self, key: AlertKey) -> AlertState:
        """The alert's state; a new alert is ``AlertState()`` (inactive)."""
        query = select(states.c.state).where(
            states.c.rule == key.rule, states.c.model == key.model, states.c.version == key.version
        )
        with self._engine.connect() as conn:
            data = conn.execute(query).scalar_one_or_none()
        return AlertState() if data is None else AlertState.from_dict(data)

    def states(self, rule: str | None = None, *, phase: Phase | None = None) -> dict[AlertKey, AlertState]:
        """Every stored alert state, of one rule and/or in one phase."""
        query = select(states.c.rule, states.c.model, states.c.version, states.c.state)
        if rule is not None:
            query = query.where(states.c.rule == rule)
        if phase is not None:
            query = query.where(states.c.phase == phase.value)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {AlertKey(row.rule, row.model, row.version): AlertState.from_dict(row.state) for row in rows}

    def save(
        self, key: AlertKey, state: AlertState, event: AlertEvent | None = None, *, channel: str = ""
    ) -> StoredEvent | None:
        """Store ``state`` and, in the same transaction, ``event`` for ``channel`` (a redacted channel name).

        An event that is not to be notified is stored as suppressed at once; one to notify is stored undelivered,
        for the caller to send and then ``record_delivery``.
        """
        now = self._clock()
        row = {"rule": key.rule, "model": key.model, "version": key.version}
        with self._engine.begin() as conn:
            conn.execute(self._upsert(key, state, now))
            if event is None:
                return None
            delivery = None if event.notify else Delivery(channel, DeliveryOutcome.SUPPRESSED, 0, now)
            event_id = conn.execute(
                events.insert().values(
                    **row,
                    phase=event.phase.value,
                    at=event.at,
                    started_at=event.started_at,
                    value=event.value,
                    detail=event.detail,
                    notify=event.notify,
                    repeat=event.repeat,
                    channel=channel,
                    delivery=None if delivery is None else delivery.outcome.value,
                    attempts=0,
                    error="",
                    delivered_at=None if delivery is None else delivery.at,
                )
            ).inserted_primary_key
            assert event_id is not None
        return StoredEvent(int(event_id[0]), key, event, channel, delivery)

    def acknowledge(self, key: AlertKey, before: AlertState, after: AlertState, *, actor: str) -> None:
        """Store ``after``, the alert ``before`` as ``actor`` acknowledged it, and in the same transaction its entry
        in the registry's audit log (action ``AcknowledgeAlert``, target ``alert/RULE``, like a silence's): a user's
        change is audited however small, and the audit never disagrees with the state."""
        now = self._clock()
        # The registry's audit table, in the same database: an acknowledgement changes only this library's state.
        entry = insert(AuditRow).values(
            at=now,
            actor=actor,
            action="AcknowledgeAlert",
            target=f"alert/{key.rule}",
            before=_acknowledgement(key, before),
            after=_acknowledgement(key, after),
        )
        with self._engine.begin() as conn:
            conn.execute(self._upsert(key, after, now))
            conn.execute(entry)

    def _upsert(self, key: AlertKey, state: AlertState, now: datetime) -> Executable:
        row = {"rule": key.rule, "model": key.model, "version": key.version}
        values = {"phase": state.phase.value, "state": state.to_dict(), "updated_at": now}
        upsert: Executable = self._insert.values(**row, **values).on_conflict_do_update(
            index_elements=["rule", "model", "version"], set_=values
        )
        return upsert

    def record_delivery(self, event_id: int, delivery: Delivery) -> None:
        """How the notification of event ``event_id`` went."""
        with self._engine.begin() as conn:
            conn.execute(
                update(events)
                .where(events.c.id == event_id)
                .values(
                    delivery=delivery.outcome.value,
                    attempts=delivery.attempts,
                    error=delivery.error,
                    delivered_at=delivery.at,
                    channel=delivery.channel,
                )
            )

    def undelivered(self) -> list[StoredEvent]:
        """Events to notify whose delivery was never recorded, oldest first."""
        return self._events(select(events).where(events.c.delivery.is_(None)).order_by(events.c.id))

    def history(self, rule: str | None = None, *, limit: int = 100) -> list[StoredEvent]:
        """The latest events, newest first; of one rule, or of all."""
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(events.c.rule == rule)
        return self._events(query)

    def forget_rule(self, rule: str) -> None:
        """Drop the states of a deleted rule; its history stays."""
        with self._engine.begin() as conn:
            conn.execute(delete(states).where(states.c.rule == rule))

    def _events(self, query: Select[Any]) -> list[StoredEvent]:
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            event = AlertEvent(
                Phase(row.phase), row.at, row.started_at, row.value, row.notify, row.repeat, detail=row.detail
            )
            delivery = None
            if row.delivery is not None:
                delivery = Delivery(
                    row.channel, DeliveryOutcome(row.delivery), row.attempts, row.delivered_at, row.error
                )
            out.append(StoredEvent(row.id, AlertKey(row.rule, row.model, row.version), event, row.channel, delivery))
        return out
