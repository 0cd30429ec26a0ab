"""What taking part in a study means and whom to contact, for the public study page.

Revision ID: 0007
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("visits", sa.Integer()),
    ("duration_weeks", sa.Integer()),
    ("participation_sv", sa.Text()),
    ("participation_en", sa.Text()),
    ("compensation_sv", sa.String(500)),
    ("compensation_en", sa.String(500)),
    ("contact_role", sa.String(200)),
    ("contact_email", sa.String(200)),
    ("contact_phone", sa.String(30)),
)


def upgrade() -> None:
    with op.batch_alter_table("study") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("study") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
