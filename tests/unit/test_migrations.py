"""The migrations and ``brygga.db.models`` describe the same schema.

The comparison runs in a fresh interpreter that imports only ``brygga.db.models``: in the
test process other tests have already imported every model module, which would hide a model
that ``db/models.py`` forgets (Alembic's ``env.py`` sees only what ``db/models.py`` imports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

import brygga
from brygga.db import direct, upgrade
from brygga.db.migrate import alembic_config

SRC = Path(brygga.__file__).resolve().parents[1]

COMPARE = """
import json, sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import brygga.db.models
from brygga.db import Base

engine = create_engine(sys.argv[1])
with engine.connect() as connection:
    diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
engine.dispose()
print(json.dumps({
    "diff": [repr(d) for d in diff],
    "tables": sorted(Base.metadata.tables),
    "modules": sorted(m for m in sys.modules if m == "brygga" or m.startswith("brygga.")),
}))
"""


def fresh_interpreter(url: str) -> dict:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", COMPARE, url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_autogenerate_finds_no_difference_between_head_and_db_models(fresh_db: str) -> None:
    result = fresh_interpreter(fresh_db)
    assert result["diff"] == []
    # Every package's models are there (the diff alone would also be empty on two empty schemas).
    assert {
        "privacy_budget",
        "resident",
        "resident_consent",
        "study",
        "invitation",
        "web_session",
    } <= set(result["tables"])
    # Importing ``brygga.db.models`` first loads the model modules and ``db``, nothing of the
    # packages' logic: a model module that imported its package's services would start the
    # cycles (``db -> privacy -> db``) that the layer contract forbids.
    modules = set(result["modules"])
    models = {m for m in modules if m.endswith(".models")}
    allowed = (
        models
        | {m.rsplit(".", 1)[0] for m in models}
        | {m for m in modules if m.startswith("brygga.db.")}
        | {"brygga", "brygga.config", "brygga.errors"}
        # The one clock: the timestamp columns' default (``db.base.utcnow``) asks it.
        | {"brygga.clock"}
        # The packages' lazy re-exports (``util.lazy_exports``); util imports nothing of Brygga.
        | {"brygga.util"}
        # Sessions and log-in limits: a module of models and their queries over ``db`` only
        # (the layer contract keeps it so).
        | {"brygga.logins"}
    )
    assert {"brygga.privacy.models", "brygga.registry.models", "brygga.studies.models"} <= models
    assert modules - allowed == set()


def test_the_stdlib_schema_check_knows_the_head_alembic_knows(tmp_path: Path) -> None:
    """``db.direct`` reads the newest revision from the migration files (no second list): it is
    Alembic's head, and a database is current only once it has been upgraded to it."""
    url = f"sqlite:///{tmp_path / 'brygga.db'}"
    assert (
        direct.head_revision()
        == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    )
    assert not direct.is_current(url)  # no database yet
    upgrade(url, "0001")
    assert not direct.is_current(url)  # an older schema: ``ensure_current`` runs Alembic
    upgrade(url)
    assert direct.is_current(url)
    assert not direct.is_current("postgresql+psycopg://localhost/brygga")  # Alembic decides
