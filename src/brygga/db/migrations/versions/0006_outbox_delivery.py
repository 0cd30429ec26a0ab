"""Outbox delivery: messages to staff (a study team), claims, retries with back-off.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column or add a foreign key in place (the table is
    # copied); PostgreSQL gets plain ALTER TABLE statements.
    with op.batch_alter_table("outbox_message") as batch:
        batch.alter_column("resident_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_outbox_message_staff_id_staff_account"),
            "staff_account",
            ["staff_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_outbox_message_staff_id"), ["staff_id"])
        batch.create_index(op.f("ix_outbox_message_sent_at"), ["sent_at"])


def downgrade() -> None:
    op.execute("DELETE FROM outbox_message WHERE resident_id IS NULL")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_index(op.f("ix_outbox_message_sent_at"))
        batch.drop_index(op.f("ix_outbox_message_staff_id"))
        batch.drop_constraint(op.f("fk_outbox_message_staff_id_staff_account"), type_="foreignkey")
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("staff_id")
        batch.alter_column("resident_id", existing_type=sa.Integer(), nullable=False)
