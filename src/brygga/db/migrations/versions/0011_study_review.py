"""The research office's review: checklist, documents with their hash, comment thread and
decision history per study (issue 14).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_checklist",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("ethics_checked", sa.Boolean(), nullable=False),
        sa.Column("ethics_decision_date", sa.Date(), nullable=True),
        sa.Column("eu_ct_checked", sa.Boolean(), nullable=False),
        sa.Column("insurance", sa.String(200), nullable=True),
        sa.Column("protocol_version", sa.String(50), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_checklist_study_id_study")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["staff_account.id"],
            name=op.f("fk_study_checklist_updated_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_study_checklist")),
    )
    op.create_table(
        "study_document",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_document_study_id_study")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["staff_account.id"],
            name=op.f("fk_study_document_uploaded_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_document")),
    )
    op.create_index(op.f("ix_study_document_study_id"), "study_document", ["study_id"])
    op.create_table(
        "study_comment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_comment_study_id_study")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_account.id"],
            name=op.f("fk_study_comment_author_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_comment")),
    )
    op.create_index(op.f("ix_study_comment_study_id"), "study_comment", ["study_id"])
    op.create_table(
        "study_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_decision_study_id_study")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["staff_account.id"],
            name=op.f("fk_study_decision_actor_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_decision")),
    )
    op.create_index(op.f("ix_study_decision_study_id"), "study_decision", ["study_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_study_decision_study_id"), table_name="study_decision")
    op.drop_table("study_decision")
    op.drop_index(op.f("ix_study_comment_study_id"), table_name="study_comment")
    op.drop_table("study_comment")
    op.drop_index(op.f("ix_study_document_study_id"), table_name="study_document")
    op.drop_table("study_document")
    op.drop_table("study_checklist")
