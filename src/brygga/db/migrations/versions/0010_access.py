"""Health-data access: applications, permits and their outputs (access/).

Revision ID: 0010
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("purpose_category", sa.String(length=40), nullable=False),
        sa.Column("legal_basis", sa.String(length=40), nullable=False),
        sa.Column("ethics_number", sa.String(length=20), nullable=True),
        sa.Column("criteria_yaml", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("data_form", sa.String(length=20), nullable=False),
        sa.Column("data_form_reason", sa.Text(), nullable=False),
        sa.Column("safeguards", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("statistics", sa.Boolean(), nullable=False),
        sa.Column("output_format", sa.String(length=10), nullable=False),
        sa.Column("feasibility", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("checklist", sa.JSON(), nullable=True),
        sa.Column("decision_reasons", sa.Text(), nullable=True),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["applicant_id"],
            ["staff_account.id"],
            name=op.f("fk_access_application_applicant_id_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["staff_account.id"],
            name=op.f("fk_access_application_decided_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_application")),
    )
    with op.batch_alter_table("access_application", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_application_applicant_id"), ["applicant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_access_application_status"), ["status"], unique=False)

    op.create_table(
        "access_permit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("criteria_yaml", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("data_form", sa.String(length=20), nullable=False),
        sa.Column("output_format", sa.String(length=10), nullable=False),
        sa.Column("donation_based", sa.Boolean(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.Column("extracts", sa.Boolean(), nullable=False),
        sa.Column("budget_project", sa.String(length=100), nullable=True),
        sa.Column("budget_epsilon", sa.Float(), nullable=True),
        sa.Column("pseudonym_key", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=False),
        sa.Column("deliver_by", sa.Date(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["access_application.id"],
            name=op.f("fk_access_permit_application_id_access_application"),
        ),
        sa.ForeignKeyConstraint(
            ["granted_by"],
            ["staff_account.id"],
            name=op.f("fk_access_permit_granted_by_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["staff_account.id"],
            name=op.f("fk_access_permit_holder_id_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"],
            ["staff_account.id"],
            name=op.f("fk_access_permit_revoked_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_permit")),
        sa.UniqueConstraint("application_id", name=op.f("uq_access_permit_application_id")),
    )
    with op.batch_alter_table("access_permit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_permit_holder_id"), ["holder_id"], unique=False)

    op.create_table(
        "access_output",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["permit_id"],
            ["access_permit.id"],
            name=op.f("fk_access_output_permit_id_access_permit"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["staff_account.id"],
            name=op.f("fk_access_output_requested_by_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["staff_account.id"],
            name=op.f("fk_access_output_reviewed_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_output")),
    )
    with op.batch_alter_table("access_output", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_output_permit_id"), ["permit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_output_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_output", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_output_status"))
        batch_op.drop_index(batch_op.f("ix_access_output_permit_id"))

    op.drop_table("access_output")
    with op.batch_alter_table("access_permit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_permit_holder_id"))

    op.drop_table("access_permit")
    with op.batch_alter_table("access_application", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_application_status"))
        batch_op.drop_index(batch_op.f("ix_access_application_applicant_id"))

    op.drop_table("access_application")
