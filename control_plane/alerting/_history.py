"""``SqlAlertStore``: alert states and their event history in ``alert_states`` and ``alert_events``.

A state change and its event are written in one transaction, before any channel is told; the delivery outcome is
written after the send. An event whose delivery is still NULL was committed but never sent (the process died in
between): ``undelivered`` finds it for the next evaluation to send, so a crash delays a notification rather than
losing it.

Every write of a state read before is a compare-and-set against what was read (``Revision``): the evaluator and a
user's acknowledgement or silence may change the same alert at once, and neither may overwrite the other. The
stored JSON text is the revision, compared as text, so no column is added and an unchanged state never conflicts.
A write whose alert changed in between raises ``AlertChanged`` and writes nothing, event and audit entry included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Executable, Select, Text, cast, delete, select, update

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting._delivery import Delivery, DeliveryOutcome
from control_plane.alerting._sql import dialect_insert
from control_plane.alerting._state import AlertEvent, AlertKey, AlertState, Phase, silence
from control_plane.alerting._tables import alert_events as events
from control_plane.alerting._tables import alert_states as states
from control_plane.alerting._time import Clock, utcnow
from control_plane.store import record_audit

__all__ = ["AlertChanged", "Revision", "SqlAlertStore", "StoredEvent"]

# The stored state as text: the JSON column's exact text on both databases (PostgreSQL's ``json`` keeps its input).
_stored_text: ColumnElement[Any] = cast(states.c.state, Text)


def _acknowledgement(key: AlertKey, state: AlertState) -> dict[str, Any]:
    acknowledged_at = None if state.acknowledged_at is None else state.acknowledged_at.isoformat()
    return {
        "model": key.model,
        "version": key.version,
        "phase": state.phase.value,
        "acknowledged_by": state.acknowledged_by,
        "acknowledged_at": acknowledged_at,
    }


class AlertChanged(ConduitError):
    """The alert was changed by someone else since it was read; nothing was written. Read it again and retry."""

    def __init__(self, key: AlertKey) -> None:
        super().__init__(
            ErrorCode.FAILED_PRECONDITION,
            f"the alert of rule {key.rule!r} on {key.model}:{key.version} changed; try again",
        )
        self.key = key


@dataclass(frozen=True, slots=True)
class Revision:
    """An alert's state as read, and what it was stored as: the condition of a write that must not overwrite a
    change made since (``SqlAlertStore.save``'s ``expected``)."""

    state: AlertState
    stored: str | None
    """The stored JSON text; None: the alert had no row."""


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
        return self.read(key).state

    def read(self, key: AlertKey) -> Revision:
        """The alert's state with its revision, for a ``save`` that must not overwrite a change made since."""
        query = select(_stored_text).where(
            states.c.rule == key.rule, states.c.model == key.model, states.c.version == key.version
        )
        with self._engine.connect() as conn:
            text = conn.execute(query).scalar_one_or_none()
        return Revision(AlertState() if text is None else AlertState.from_dict(json.loads(text)), text)

    def states(self, rule: str | None = None, *, phase: Phase | None = None) -> dict[AlertKey, AlertState]:
        """Every stored alert state, of one rule and/or in one phase."""
        return {key: revision.state for key, revision in self.revisions(rule, phase=phase).items()}

    def revisions(self, rule: str | None = None, *, phase: Phase | None = None) -> dict[AlertKey, Revision]:
        """Every stored alert state with its revision, of one rule and/or in one phase."""
        query = select(states.c.rule, states.c.model, states.c.version, _stored_text.label("stored"))
        if rule is not None:
            query = query.where(states.c.rule == rule)
        if phase is not None:
            query = query.where(states.c.phase == phase.value)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            AlertKey(row.rule, row.model, row.version): Revision(
                AlertState.from_dict(json.loads(row.stored)), row.stored
            )
            for row in rows
        }

    def save(
        self,
        key: AlertKey,
        state: AlertState,
        event: AlertEvent | None = None,
        *,
        channel: str = "",
        expected: Revision | None = None,
    ) -> StoredEvent | None:
        """Store ``state`` and, in the same transaction, ``event`` for ``channel`` (a redacted channel name).

        An event that is not to be notified is stored as suppressed at once; one to notify is stored undelivered,
        for the caller to send and then ``record_delivery``.

        Args:
            expected: the revision ``state`` was computed from; the write happens only if the alert is still
                stored so. None: write whatever is stored (for a state computed from nothing stored).

        Raises:
            AlertChanged: the alert is no longer stored as ``expected``; nothing was written.
        """
        now = self._clock()
        row = {"rule": key.rule, "model": key.model, "version": key.version}
        with self._engine.begin() as conn:
            self._write(conn, key, state, now, expected)
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

    def acknowledge(self, key: AlertKey, before: Revision, after: AlertState, *, actor: str) -> None:
        """Store ``after``, the alert read as ``before`` as ``actor`` acknowledged it, and in the same transaction its
        entry in the registry's audit log (action ``AcknowledgeAlert``, target ``alert/RULE``, like a silence's): a
        user's change is audited however small, and the audit never disagrees with the state.

        Raises:
            AlertChanged: the alert changed since ``before`` was read (it resolved, say); nothing was written.
        """
        with self._engine.begin() as conn:
            self._write(conn, key, after, self._clock(), before)
            record_audit(
                conn,
                actor,
                "AcknowledgeAlert",
                f"alert/{key.rule}",
                before=_acknowledgement(key, before.state),
                after=_acknowledgement(key, after),
            )

    def silence(self, rule: str, until: datetime | None) -> None:
        """Silence every alert of ``rule`` until ``until`` (None lifts it). An alert the evaluator changes meanwhile
        is read again and silenced as it now is, never written back as it was (that could undo a resolve)."""
        for key, first in self.revisions(rule).items():
            read = first
            while True:
                try:
                    self.save(key, silence(read.state, until=until), expected=read)
                    break
                except AlertChanged:
                    read = self.read(key)
                    if read.stored is None:
                        break  # forgotten with its rule meanwhile: nothing left to silence

    def _write(
        self, conn: Connection, key: AlertKey, state: AlertState, now: datetime, expected: Revision | None
    ) -> None:
        row = {"rule": key.rule, "model": key.model, "version": key.version}
        values = {"phase": state.phase.value, "state": state.to_dict(), "updated_at": now}
        statement: Executable
        if expected is None:
            statement = self._insert.values(**row, **values).on_conflict_do_update(
                index_elements=["rule", "model", "version"], set_=values
            )
        elif expected.stored is None:
            # Read as new: whoever inserted the row first wins; a second insert finds the row and changes nothing.
            # Told by RETURNING, not rowcount, which PostgreSQL's driver gives as -1 for ON CONFLICT DO NOTHING.
            insert = self._insert.values(**row, **values).on_conflict_do_nothing(
                index_elements=["rule", "model", "version"]
            )
            if conn.execute(insert.returning(states.c.rule)).first() is None:
                raise AlertChanged(key)
            return
        else:
            statement = (
                update(states)
                .where(
                    states.c.rule == key.rule,
                    states.c.model == key.model,
                    states.c.version == key.version,
                    _stored_text == expected.stored,
                )
                .values(**values)
            )
        if conn.execute(statement).rowcount == 0 and expected is not None:
            raise AlertChanged(key)

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
