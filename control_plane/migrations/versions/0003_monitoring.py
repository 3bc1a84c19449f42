"""Monitoring roll-ups: per model version and minute, requests, errors and latency, and sketch counts per feature.

Revision ID: 0003
Revises: 0002
Create Date: 2026-06-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitoring_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("latency_bounds", sa.JSON(), nullable=False),
        sa.Column("latency_counts", sa.JSON(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum", sa.Double(), nullable=False),
        sa.Column("latency_min", sa.Double(), nullable=True),
        sa.Column("latency_max", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_rollups")),
        sa.UniqueConstraint("model", "version", "minute", name=op.f("uq_monitoring_rollups_model_version_minute")),
    )
    # Retention deletes by minute alone.
    op.create_index(op.f("ix_monitoring_rollups_minute"), "monitoring_rollups", ["minute"], unique=False)
    op.create_table(
        "monitoring_sketches",
        sa.Column("rollup_id", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollup_id"], ["monitoring_rollups.id"], name=op.f("fk_monitoring_sketches_rollup_id_monitoring_rollups")
        ),
        sa.PrimaryKeyConstraint("rollup_id", "feature", "kind", name=op.f("pk_monitoring_sketches")),
    )


def downgrade() -> None:
    for table in ("monitoring_sketches", "monitoring_rollups"):
        op.drop_table(table)
