"""Feasibility questions and refused sweeps (the question guard, security property 7).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feasibility_question",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asker", sa.String(100), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("atoms", sa.JSON(), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feasibility_question")),
    )
    op.create_index(op.f("ix_feasibility_question_at"), "feasibility_question", ["at"])
    op.create_index(op.f("ix_feasibility_question_asker"), "feasibility_question", ["asker"])
    op.create_index(op.f("ix_feasibility_question_study_id"), "feasibility_question", ["study_id"])
    op.create_table(
        "question_flag",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asker", sa.String(100), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("reviewed_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question_flag")),
    )
    op.create_index(op.f("ix_question_flag_asker"), "question_flag", ["asker"])


def downgrade() -> None:
    op.drop_table("question_flag")
    op.drop_table("feasibility_question")
