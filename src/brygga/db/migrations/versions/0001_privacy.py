"""Privacy layer: budgets, their ledger, cached noisy answers, feasibility requests.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_budget",
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("epsilon_total", sa.Float(), nullable=False),
        sa.Column("delta_total", sa.Float(), nullable=False),
        sa.Column("epsilon_spent", sa.Float(), nullable=False),
        sa.Column("delta_spent", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_privacy_budget")),
    )
    op.create_table(
        "privacy_spend",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("query", sa.String(200), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("user", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["privacy_budget.project_id"],
            name=op.f("fk_privacy_spend_project_id_privacy_budget"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_spend")),
    )
    op.create_index(op.f("ix_privacy_spend_project_id"), "privacy_spend", ["project_id"])
    op.create_table(
        "noisy_answer",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_noisy_answer")),
    )
    op.create_table(
        "feasibility_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feasibility_request")),
    )
    op.create_index(op.f("ix_feasibility_request_user"), "feasibility_request", ["user"])
    op.create_index(op.f("ix_feasibility_request_at"), "feasibility_request", ["at"])


def downgrade() -> None:
    op.drop_table("feasibility_request")
    op.drop_table("noisy_answer")
    op.drop_table("privacy_spend")
    op.drop_table("privacy_budget")
