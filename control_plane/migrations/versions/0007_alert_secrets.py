"""Alert channels kept apart from what is shown: ``alert_secrets`` holds each rule's channel in full, ``alert_rules``
its redacted form, and the audit log only redacted channels with a fingerprint.

Existing rules move their channel to ``alert_secrets``; existing audit entries of alert rules have the webhook URLs
they held replaced by ``scheme://host/…`` and a fingerprint. That redaction is not undone by a downgrade: the
secrets it removed from the audit log are gone from it for good (the rules themselves get their channel back).

The redaction and the fingerprint are written out here rather than imported, so that this migration does the same
thing whatever later code does.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_rules = sa.table(
    "alert_rules", sa.column("id", sa.Integer()), sa.column("name", sa.String()), sa.column("channel", sa.Text())
)
_secrets = sa.table(
    "alert_secrets",
    sa.column("rule_id", sa.Integer()),
    sa.column("channel", sa.Text()),
    sa.column("fingerprint", sa.String()),
)
_audit = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("target", sa.String()),
    # As the registry declares them: None is SQL NULL, not a JSON null.
    sa.column("before", sa.JSON(none_as_null=True)),
    sa.column("after", sa.JSON(none_as_null=True)),
)


def _redacted(channel: str) -> str:
    if not channel.startswith("webhook:"):
        return channel
    parts = urlsplit(channel.removeprefix("webhook:"))
    return f"webhook:{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _fingerprint(channel: str) -> str:
    return hashlib.sha256(channel.encode()).hexdigest()[:12]


def _redacted_state(state: Any) -> Any:
    if not isinstance(state, dict) or not isinstance(state.get("channel"), str):
        return state
    channel = state["channel"]
    return {**state, "channel": _redacted(channel), "channel_fingerprint": _fingerprint(channel)}


def upgrade() -> None:
    op.create_table(
        "alert_secrets",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], name=op.f("fk_alert_secrets_rule_id_alert_rules")),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_alert_secrets")),
    )
    connection = op.get_bind()
    for rule_id, channel in connection.execute(sa.select(_rules.c.id, _rules.c.channel)).all():
        connection.execute(
            _secrets.insert().values(rule_id=rule_id, channel=channel, fingerprint=_fingerprint(channel))
        )
        connection.execute(_rules.update().where(_rules.c.id == rule_id).values(channel=_redacted(channel)))
    # Every entry of an alert rule (created, silenced, deleted), whichever state holds a channel.
    entries = connection.execute(
        sa.select(_audit.c.id, _audit.c.before, _audit.c.after).where(_audit.c.target.startswith("alert/"))
    ).all()
    for entry_id, before, after in entries:
        redacted = _redacted_state(before), _redacted_state(after)
        if redacted != (before, after):
            connection.execute(
                _audit.update().where(_audit.c.id == entry_id).values(before=redacted[0], after=redacted[1])
            )


def downgrade() -> None:
    connection = op.get_bind()
    for rule_id, channel in connection.execute(sa.select(_secrets.c.rule_id, _secrets.c.channel)).all():
        connection.execute(_rules.update().where(_rules.c.id == rule_id).values(channel=channel))
    op.drop_table("alert_secrets")
