"""Residents and studies: identity, profile, consents (with history), organizations, staff,
studies and sites, invitations, notification outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("municipality_code", sa.String(length=4), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization")),
        sa.UniqueConstraint("name", name=op.f("uq_organization_name")),
    )
    op.create_table(
        "resident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("personnummer", sa.String(length=13), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("street_address", sa.String(length=200), nullable=True),
        sa.Column("postal_code", sa.String(length=10), nullable=True),
        sa.Column("post_town", sa.String(length=100), nullable=True),
        sa.Column("municipality_code", sa.String(length=4), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident")),
        sa.UniqueConstraint("person_id", name=op.f("uq_resident_person_id")),
        sa.UniqueConstraint("personnummer", name=op.f("uq_resident_personnummer")),
        sa.UniqueConstraint("ref", name=op.f("uq_resident_ref")),
    )
    op.create_table(
        "resident_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_resident_consent_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_consent")),
        sa.UniqueConstraint("resident_id", "kind", name=op.f("uq_resident_consent_resident_id")),
    )
    op.create_index(
        op.f("ix_resident_consent_resident_id"), "resident_consent", ["resident_id"], unique=False
    )
    op.create_table(
        "resident_consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("text_version", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["resident.id"],
            name=op.f("fk_resident_consent_event_resident_id_resident"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_consent_event")),
    )
    op.create_index(
        op.f("ix_resident_consent_event_resident_id"),
        "resident_consent_event",
        ["resident_id"],
        unique=False,
    )
    op.create_table(
        "resident_profile",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("medicines", sa.JSON(), nullable=False),
        sa.Column("height_cm", sa.Integer(), nullable=True),
        sa.Column("weight_kg", sa.Integer(), nullable=True),
        sa.Column("smoking", sa.String(length=10), nullable=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("healthy_volunteer", sa.Boolean(), nullable=False),
        sa.Column("max_travel_km", sa.Integer(), nullable=True),
        sa.Column("contact_channel", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_resident_profile_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_resident_profile")),
    )
    op.create_table(
        "staff_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_staff_account_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_account")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_account_email")),
    )
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("title_sv", sa.String(length=300), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=False),
        sa.Column("summary_sv", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=False),
        sa.Column("sponsor", sa.String(length=200), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("area", sa.String(length=30), nullable=False),
        sa.Column("drug_trial", sa.Boolean(), nullable=False),
        sa.Column("healthy_volunteers", sa.Boolean(), nullable=False),
        sa.Column("ethics_number", sa.String(length=20), nullable=True),
        sa.Column("eu_ct_number", sa.String(length=20), nullable=True),
        sa.Column("nct_id", sa.String(length=20), nullable=True),
        sa.Column("target_enrolment", sa.Integer(), nullable=False),
        sa.Column("recruitment_start", sa.Date(), nullable=False),
        sa.Column("recruitment_end", sa.Date(), nullable=False),
        sa.Column("criteria_yaml", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feasibility", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff_account.id"], name=op.f("fk_study_created_by_staff_account")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_study_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["staff_account.id"], name=op.f("fk_study_reviewed_by_staff_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
    )
    op.create_index(op.f("ix_study_organization_id"), "study", ["organization_id"], unique=False)
    op.create_index(op.f("ix_study_status"), "study", ["status"], unique=False)
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_invitation_resident_id_resident")
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_invitation_study_id_study")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("study_id", "resident_id", name=op.f("uq_invitation_study_id")),
    )
    op.create_index(op.f("ix_invitation_resident_id"), "invitation", ["resident_id"], unique=False)
    op.create_index(op.f("ix_invitation_status"), "invitation", ["status"], unique=False)
    op.create_index(op.f("ix_invitation_study_id"), "invitation", ["study_id"], unique=False)
    op.create_table(
        "study_site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipality_code", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_site_study_id_study")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_site")),
    )
    op.create_index(op.f("ix_study_site_study_id"), "study_site", ["study_id"], unique=False)
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitation.id"],
            name=op.f("fk_outbox_message_invitation_id_invitation"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_outbox_message_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    op.create_index(
        op.f("ix_outbox_message_invitation_id"), "outbox_message", ["invitation_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_message_resident_id"), "outbox_message", ["resident_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_message_resident_id"), table_name="outbox_message")
    op.drop_index(op.f("ix_outbox_message_invitation_id"), table_name="outbox_message")
    op.drop_table("outbox_message")
    op.drop_index(op.f("ix_study_site_study_id"), table_name="study_site")
    op.drop_table("study_site")
    op.drop_index(op.f("ix_invitation_study_id"), table_name="invitation")
    op.drop_index(op.f("ix_invitation_status"), table_name="invitation")
    op.drop_index(op.f("ix_invitation_resident_id"), table_name="invitation")
    op.drop_table("invitation")
    op.drop_index(op.f("ix_study_status"), table_name="study")
    op.drop_index(op.f("ix_study_organization_id"), table_name="study")
    op.drop_table("study")
    op.drop_table("staff_account")
    op.drop_table("resident_profile")
    op.drop_index(
        op.f("ix_resident_consent_event_resident_id"), table_name="resident_consent_event"
    )
    op.drop_table("resident_consent_event")
    op.drop_index(op.f("ix_resident_consent_resident_id"), table_name="resident_consent")
    op.drop_table("resident_consent")
    op.drop_table("resident")
    op.drop_table("organization")
