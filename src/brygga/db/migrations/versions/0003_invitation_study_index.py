"""Drop the invitation table's index on study_id alone.

The unique constraint on (study_id, resident_id) already gives an index whose prefix serves
every lookup by study; the extra index only slowed the bulk inserts of a matching run.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_invitation_study_id"), table_name="invitation")


def downgrade() -> None:
    op.create_index(op.f("ix_invitation_study_id"), "invitation", ["study_id"], unique=False)
