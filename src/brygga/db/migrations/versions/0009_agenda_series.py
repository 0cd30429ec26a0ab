"""Imported KPI series of the agenda (employees, trial applications, patents ...).

Revision ID: 0009
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agenda_series_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kpi_id", sa.String(64), nullable=False),
        sa.Column("area", sa.String(40), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=False),
        sa.Column("licence", sa.String(100), nullable=False),
        sa.Column("file", sa.String(300), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_series_value")),
        sa.UniqueConstraint("kpi_id", "area", "period", name=op.f("uq_agenda_series_value_kpi_id")),
    )
    op.create_index(op.f("ix_agenda_series_value_kpi_id"), "agenda_series_value", ["kpi_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agenda_series_value_kpi_id"), table_name="agenda_series_value")
    op.drop_table("agenda_series_value")
