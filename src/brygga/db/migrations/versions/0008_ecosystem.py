"""The ecosystem: directory entries, needs, routed inquiries (general and site feasibility),
their notifications.

Revision ID: 0008
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eco_entry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("name_sv", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("description_sv", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("services_sv", sa.JSON(), nullable=False),
        sa.Column("services_en", sa.JSON(), nullable=False),
        sa.Column("support_kinds", sa.JSON(), nullable=False),
        sa.Column("access_sv", sa.Text(), nullable=False),
        sa.Column("access_en", sa.Text(), nullable=False),
        sa.Column("price_model", sa.String(20), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("trl_min", sa.Integer(), nullable=True),
        sa.Column("trl_max", sa.Integer(), nullable=True),
        sa.Column("therapy_areas", sa.JSON(), nullable=False),
        sa.Column("technology_areas", sa.JSON(), nullable=False),
        sa.Column("sme_eligible", sa.Boolean(), nullable=False),
        sa.Column("region", sa.String(20), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("cross_border", sa.Boolean(), nullable=False),
        sa.Column("contact_role_sv", sa.String(200), nullable=False),
        sa.Column("contact_role_en", sa.String(200), nullable=False),
        sa.Column("contact_channel", sa.String(300), nullable=False),
        sa.Column("response_days", sa.Integer(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(100), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_eco_entry_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_entry")),
        sa.UniqueConstraint("slug", name=op.f("uq_eco_entry_slug")),
    )
    op.create_index(op.f("ix_eco_entry_type"), "eco_entry", ["type"])
    op.create_index(op.f("ix_eco_entry_status"), "eco_entry", ["status"])
    op.create_index(op.f("ix_eco_entry_region"), "eco_entry", ["region"])
    op.create_table(
        "eco_need",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["staff_account.id"],
            name=op.f("fk_eco_need_requester_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_need")),
    )
    op.create_index(op.f("ix_eco_need_requester_id"), "eco_need", ["requester_id"])
    op.create_table(
        "eco_inquiry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("milestones", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"], ["eco_need.id"], name=op.f("fk_eco_inquiry_need_id_eco_need")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["staff_account.id"],
            name=op.f("fk_eco_inquiry_requester_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_inquiry")),
    )
    op.create_index(op.f("ix_eco_inquiry_need_id"), "eco_inquiry", ["need_id"])
    op.create_index(op.f("ix_eco_inquiry_requester_id"), "eco_inquiry", ["requester_id"])
    op.create_table(
        "eco_inquiry_recipient",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["eco_inquiry.id"],
            name=op.f("fk_eco_inquiry_recipient_inquiry_id_eco_inquiry"),
        ),
        sa.ForeignKeyConstraint(
            ["need_id"], ["eco_need.id"], name=op.f("fk_eco_inquiry_recipient_need_id_eco_need")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["eco_entry.id"],
            name=op.f("fk_eco_inquiry_recipient_entry_id_eco_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["answered_by"],
            ["staff_account.id"],
            name=op.f("fk_eco_inquiry_recipient_answered_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_inquiry_recipient")),
        sa.UniqueConstraint("need_id", "entry_id", name=op.f("uq_eco_inquiry_recipient_need_id")),
    )
    op.create_index(
        op.f("ix_eco_inquiry_recipient_inquiry_id"), "eco_inquiry_recipient", ["inquiry_id"]
    )
    op.create_index(
        op.f("ix_eco_inquiry_recipient_entry_id"), "eco_inquiry_recipient", ["entry_id"]
    )
    op.create_index(op.f("ix_eco_inquiry_recipient_status"), "eco_inquiry_recipient", ["status"])
    op.create_table(
        "eco_notification",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("to_kind", sa.String(20), nullable=False),
        sa.Column("to_id", sa.Integer(), nullable=True),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_notification")),
    )
    op.create_index(op.f("ix_eco_notification_sent_at"), "eco_notification", ["sent_at"])
    op.create_table(
        "eco_slot",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("note", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["eco_entry.id"], name=op.f("fk_eco_slot_entry_id_eco_entry")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_slot")),
    )
    op.create_index(op.f("ix_eco_slot_entry_id"), "eco_slot", ["entry_id"])
    op.create_table(
        "eco_booking",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["eco_slot.id"], name=op.f("fk_eco_booking_slot_id_eco_slot")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["staff_account.id"],
            name=op.f("fk_eco_booking_requester_id_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["answered_by"],
            ["staff_account.id"],
            name=op.f("fk_eco_booking_answered_by_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_booking")),
        sa.UniqueConstraint("slot_id", "requester_id", name=op.f("uq_eco_booking_slot_id")),
    )
    op.create_index(op.f("ix_eco_booking_requester_id"), "eco_booking", ["requester_id"])


def downgrade() -> None:
    op.drop_table("eco_booking")
    op.drop_table("eco_slot")
    op.drop_table("eco_notification")
    op.drop_table("eco_inquiry_recipient")
    op.drop_table("eco_inquiry")
    op.drop_table("eco_need")
    op.drop_table("eco_entry")
