"""Prediction logs: the Parquet files of sampled predictions inference servers upload, by model version and time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_logs")),
        sa.UniqueConstraint("sha256", name=op.f("uq_prediction_logs_sha256")),
    )
    # Listings go by model and version, or by model alone, newest first (each index serves one of them without a
    # sort); retention deletes by last_at alone.
    op.create_index(
        op.f("ix_prediction_logs_model_version_id"), "prediction_logs", ["model", "version", "id"], unique=False
    )
    op.create_index(op.f("ix_prediction_logs_model_id"), "prediction_logs", ["model", "id"], unique=False)
    op.create_index(op.f("ix_prediction_logs_last_at"), "prediction_logs", ["last_at"], unique=False)


def downgrade() -> None:
    op.drop_table("prediction_logs")
