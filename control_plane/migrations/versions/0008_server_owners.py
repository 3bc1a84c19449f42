"""Server owners: a registration belongs to the user who made it, and only that user heartbeats or re-registers it.

Existing registrations take the actor of their latest ``RegisterServer`` audit entry as their owner; one without any
stays unowned, and its next registration (by anyone) claims it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("servers", sa.Column("owner", sa.String(length=128), nullable=True))
    # '||' concatenates on both SQLite and PostgreSQL; audit targets of servers are 'server/<name>'.
    op.execute(
        """
        UPDATE servers SET owner = (
            SELECT audit_log.actor FROM audit_log
            WHERE audit_log.action = 'RegisterServer' AND audit_log.target = 'server/' || servers.name
            ORDER BY audit_log.id DESC LIMIT 1
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("owner")
