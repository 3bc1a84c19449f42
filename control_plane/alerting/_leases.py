"""``SqlLeaseStore``: job ticks leased in the ``scheduler_runs`` table, on SQLite or PostgreSQL.

A tick is taken by inserting its (job, tick) row: the primary key lets exactly one insert succeed, whichever replica
and database. ``ON CONFLICT DO NOTHING`` turns the losers' inserts into no-ops rather than errors, so a PostgreSQL
transaction is not aborted and the server logs no error. An unfinished lease past its expiry is taken over by a
conditional ``UPDATE``, which the database also lets only one replica win.

Built-in jobs (names starting with ``@``, which no user job can take, like the control plane's ``@evaluate``) tick
every minute or faster, forever: their finished runs older than ``builtin_history_s`` are deleted as each new run
completes, so the table stays the size of that period. User jobs keep every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from control_plane.alerting._runs import RunOutcome
from control_plane.alerting._sql import dialect_insert
from control_plane.alerting._tables import scheduler_runs as runs
from control_plane.alerting._time import Clock, utcnow

__all__ = ["BUILTIN_PREFIX", "SqlLeaseStore", "TickRecord"]

BUILTIN_PREFIX = "@"
"""Names of built-in jobs start with this; their runs are pruned (see the module's docstring)."""


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One leased tick as stored; ``outcome`` and ``finished_at`` are None while it runs (or after its holder died)."""

    job: str
    tick: datetime
    holder: str
    acquired_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome | None
    log: str


class SqlLeaseStore:
    """The scheduler's ``LeaseStore`` on the registry's database.

    Args:
        engine: the registry's engine (its tables must include ``scheduler_runs``).
        clock: the time leases are stamped and expired with; share one clock source between replicas' stores in
            tests, and keep replicas' clocks in sync (NTP) in production.
        builtin_history_s: how long the finished runs of built-in jobs stay listed.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utcnow, builtin_history_s: float = 86400.0) -> None:
        self._engine = engine
        self._clock = clock
        self._builtin_history = timedelta(seconds=builtin_history_s)
        self._insert = dialect_insert(engine, runs)

    def try_acquire(self, job: str, tick: datetime, holder: str, ttl_s: float) -> bool:
        now = self._clock()
        expires = now + timedelta(seconds=ttl_s)
        values = {"job": job, "tick": tick, "holder": holder, "acquired_at": now, "expires_at": expires, "log": ""}
        with self._engine.begin() as conn:
            # RETURNING rather than rowcount, which psycopg leaves at -1 for an INSERT … ON CONFLICT here.
            insert = self._insert.values(**values).on_conflict_do_nothing(index_elements=["job", "tick"])
            if conn.execute(insert.returning(runs.c.job)).first() is not None:
                return True
            taken_over = conn.execute(
                update(runs)
                .where(runs.c.job == job, runs.c.tick == tick, runs.c.finished_at.is_(None), runs.c.expires_at < now)
                .values(holder=holder, acquired_at=now, expires_at=expires)
            )
            return taken_over.rowcount == 1

    def complete(self, job: str, tick: datetime, holder: str, outcome: RunOutcome, log: str) -> bool:
        now = self._clock()
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.job == job, runs.c.tick == tick, runs.c.holder == holder, runs.c.finished_at.is_(None))
                .values(finished_at=now, outcome=outcome.value, log=log)
            )
            if job.startswith(BUILTIN_PREFIX):
                # The primary key (job, tick) makes this a range delete on the index, whatever the table's size.
                conn.execute(
                    delete(runs).where(
                        runs.c.job == job, runs.c.tick < now - self._builtin_history, runs.c.finished_at.is_not(None)
                    )
                )
            return result.rowcount == 1

    def ticks(self, job: str | None = None, *, limit: int = 100) -> list[TickRecord]:
        """The latest leased ticks, newest first; of one job, or of all."""
        query = select(runs).order_by(runs.c.tick.desc(), runs.c.job).limit(limit)
        if job is not None:
            query = query.where(runs.c.job == job)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            TickRecord(
                job=row.job,
                tick=row.tick,
                holder=row.holder,
                acquired_at=row.acquired_at,
                expires_at=row.expires_at,
                finished_at=row.finished_at,
                outcome=None if row.outcome is None else RunOutcome(row.outcome),
                log=row.log,
            )
            for row in rows
        ]
