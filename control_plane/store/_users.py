"""Users and their tokens; the store sees only token hashes and never writes one to the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.entities import CallerToken, Role, User
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._schema import TokenRow, UserRow, utcnow
from control_plane.store._validate import check_name, check_token_hash

__all__ = [
    "BOOTSTRAP_ACTOR",
    "add_job_token",
    "add_token",
    "bootstrap_admin",
    "callers",
    "create_user",
    "disable_user",
    "list_users",
    "revoke_job_token",
    "user_for_token",
]

BOOTSTRAP_ACTOR = "system"
"""The actor of the audit entry that records the first admin: nobody is signed in yet."""

# Any fixed number, distinct from the migrations' lock.
_BOOTSTRAP_LOCK = 0x436F6E65


def _find(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"user {name!r} not found")
    return row


def _insert_user(session: Session, name: str, role: Role, token_hash: str) -> UserRow:
    row = UserRow(name=name, role=role.value, disabled=False, created_at=utcnow())
    session.add(row)
    session.flush()
    session.add(TokenRow(user_id=row.id, token_hash=token_hash, created_at=utcnow()))
    session.flush()
    return row


def create_user(session: Session, name: str, role: Role, token_hash: str, *, actor: str) -> User:
    check_name("user", name)
    check_token_hash(token_hash)
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"user {name!r} already exists")
    try:
        row = _insert_user(session, name, role, token_hash)
    except IntegrityError:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"user {name!r} or that token already exists") from None
    record(session, actor, "CreateUser", f"user/{name}", before=None, after=_convert.user_state(row))
    return _convert.user(row)


def add_token(session: Session, user: str, token_hash: str, *, actor: str) -> None:
    check_token_hash(token_hash)
    row = _find(session, user)
    session.add(TokenRow(user_id=row.id, token_hash=token_hash, created_at=utcnow()))
    try:
        session.flush()
    except IntegrityError:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, "that token already exists") from None
    record(session, actor, "CreateToken", f"user/{user}", before=None, after={"user": user})


def add_job_token(session: Session, user: str, token_hash: str, *, job: str, expires_at: datetime) -> User:
    """A token of ``user`` for one run of ``job``; audited with the user as actor, as what the run does will be.

    Tokens of earlier runs past their expiry (a control plane that died mid-run never deleted them) go first.
    """
    check_token_hash(token_hash)
    row = _find(session, user)
    if row.disabled:
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"user {user!r} is disabled")
    session.execute(delete(TokenRow).where(TokenRow.expires_at <= utcnow()))
    session.add(TokenRow(user_id=row.id, token_hash=token_hash, created_at=utcnow(), job=job, expires_at=expires_at))
    try:
        session.flush()
    except IntegrityError:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, "that token already exists") from None
    after = {"user": user, "role": row.role, "expires_at": expires_at.isoformat()}
    record(session, user, "CreateJobToken", f"job/{job}", before=None, after=after)
    return _convert.user(row)


def revoke_job_token(session: Session, token_hash: str) -> bool:
    """Delete a run's token; False when it was gone already (expired and pruned)."""
    run_token = delete(TokenRow).where(TokenRow.token_hash == token_hash, TokenRow.job.is_not(None))
    deleted: int = session.execute(run_token).rowcount  # type: ignore[attr-defined]
    return deleted > 0


def disable_user(session: Session, name: str, *, actor: str) -> User:
    row = _find(session, name)
    before = _convert.user_state(row)
    row.disabled = True
    record(session, actor, "DisableUser", f"user/{name}", before=before, after=_convert.user_state(row))
    return _convert.user(row)


def list_users(session: Session) -> list[User]:
    return [_convert.user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]


def callers(session: Session) -> list[CallerToken]:
    rows = session.execute(
        select(TokenRow.token_hash, UserRow.name, UserRow.role)
        .join(UserRow, TokenRow.user_id == UserRow.id)
        # A job's token is for the control plane only: it never calls an inference server, and listing it would
        # change what every server fetches at each run.
        .where(~UserRow.disabled, TokenRow.job.is_(None))
    )
    return [CallerToken(token_hash, name, Role(role)) for token_hash, name, role in rows]


def user_for_token(session: Session, token_hash: str) -> User | None:
    row = session.scalar(
        select(UserRow)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(
            TokenRow.token_hash == token_hash,
            ~UserRow.disabled,
            or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > utcnow()),
        )
    )
    return None if row is None else _convert.user(row)


def bootstrap_admin(session: Session, name: str, token_hash: str) -> bool:
    """Raises IntegrityError when a concurrent bootstrap inserted the same name first: the caller reports False."""
    check_name("user", name)
    check_token_hash(token_hash)
    if session.get_bind().dialect.name == "postgresql":
        # Two control planes configured with different admin names would otherwise both see no users and both
        # insert; SQLite's write lock already makes them take turns.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK})
    if session.scalar(select(UserRow.id).limit(1)) is not None:
        return False
    row = _insert_user(session, name, Role.ADMIN, token_hash)
    record(session, BOOTSTRAP_ACTOR, "BootstrapAdmin", f"user/{name}", before=None, after=_convert.user_state(row))
    return True
