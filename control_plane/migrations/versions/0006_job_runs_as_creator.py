"""Jobs run as their creator: a token made for one run of a job, which expires at the latest when the run must
have ended.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them in place, and the users' tokens keep working as they are.
    op.add_column("tokens", sa.Column("job", sa.String(length=128), nullable=True))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A run's token is no user's token: left behind without its columns, it would work forever.
    op.execute(sa.text("DELETE FROM tokens WHERE job IS NOT NULL"))
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("job")
