"""A version number on each resident, raised by the database whenever their page's data changes.

The resident's own pages (``/portal``, ``/portal/profil``) are kept rendered per resident
(``web/page_cache.py``) under this number: one primary-key read tells whether the kept page
still holds. Triggers raise it, not the application, so that every writer counts: the web's
ORM sessions, the matching run's batched inserts, another process's CLI command.

What the pages show: the resident's own row, their profile, their consents and their
invitations. A study's title and summary also appear, but only approved studies invite and
an approved study cannot be edited.

Revision ID: 0013
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0007"
branch_labels = None
depends_on = None

# The tables whose rows hold ``resident_id`` and appear on the resident's pages.
CHILDREN = ("resident_profile", "resident_consent", "invitation")

SQLITE = [
    # A change of the resident's own row: raised once (the WHEN clause stops the trigger's own
    # update from raising it again, and a child trigger's raise from counting twice).
    """CREATE TRIGGER resident_page_version AFTER UPDATE ON resident
       WHEN NEW.page_version = OLD.page_version
       BEGIN UPDATE resident SET page_version = OLD.page_version + 1 WHERE id = NEW.id; END""",
]
for _table in CHILDREN:
    SQLITE += [
        f"""CREATE TRIGGER {_table}_page_version_insert AFTER INSERT ON {_table}
            BEGIN UPDATE resident SET page_version = page_version + 1
                  WHERE id = NEW.resident_id; END""",
        f"""CREATE TRIGGER {_table}_page_version_update AFTER UPDATE ON {_table}
            BEGIN UPDATE resident SET page_version = page_version + 1
                  WHERE id IN (OLD.resident_id, NEW.resident_id); END""",
        f"""CREATE TRIGGER {_table}_page_version_delete AFTER DELETE ON {_table}
            BEGIN UPDATE resident SET page_version = page_version + 1
                  WHERE id = OLD.resident_id; END""",
    ]

POSTGRESQL = [
    """CREATE FUNCTION resident_page_version() RETURNS trigger AS $$
       BEGIN
         IF NEW.page_version = OLD.page_version THEN
           NEW.page_version := OLD.page_version + 1;
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER resident_page_version BEFORE UPDATE ON resident
       FOR EACH ROW EXECUTE FUNCTION resident_page_version()""",
    """CREATE FUNCTION resident_child_page_version() RETURNS trigger AS $$
       BEGIN
         IF TG_OP <> 'INSERT' THEN
           UPDATE resident SET page_version = page_version + 1 WHERE id = OLD.resident_id;
         END IF;
         IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
                                 AND NEW.resident_id IS DISTINCT FROM OLD.resident_id) THEN
           UPDATE resident SET page_version = page_version + 1 WHERE id = NEW.resident_id;
         END IF;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
] + [
    f"""CREATE TRIGGER {_table}_page_version AFTER INSERT OR UPDATE OR DELETE ON {_table}
        FOR EACH ROW EXECUTE FUNCTION resident_child_page_version()"""
    for _table in CHILDREN
]


def upgrade() -> None:
    with op.batch_alter_table("resident") as batch:
        batch.add_column(
            sa.Column("page_version", sa.Integer(), nullable=False, server_default="0")
        )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS resident_page_version")
        for table in CHILDREN:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_page_version_{event}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS resident_page_version ON resident")
        for table in CHILDREN:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_page_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS resident_page_version()")
        op.execute("DROP FUNCTION IF EXISTS resident_child_page_version()")
    with op.batch_alter_table("resident") as batch:
        batch.drop_column("page_version")
