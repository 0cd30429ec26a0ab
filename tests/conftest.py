"""Shared fixtures: paths to the shared reference data and one small synthetic region."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"the shared folder is expected beside the checkout: {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def small_region(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic Skåne (scale 0.01, about 14,000 residents), generated once per run."""
    from brygga.synth import generate

    out = tmp_path_factory.mktemp("regions") / "skane-small"
    return generate(region="skane", out=out, scale=0.01, seed=7, workers=2)


@pytest.fixture(scope="session")
def omop_small(small_region, tmp_path_factory: pytest.TempPathFactory):
    """The small region's tables under a manifest that says omop-import (symlinks): outputs
    of a region that is not synthetic, whose true counts ``--raw`` gives on the original."""
    import json

    from brygga.records.store import Region

    source = small_region.region
    out = tmp_path_factory.mktemp("omop-small") / "region"
    out.mkdir()
    for table in source.tables():
        (out / table).symlink_to(source.path / table, target_is_directory=True)
    manifest = {k: v for k, v in source.manifest.items() if k != "identities"}
    (out / "manifest.json").write_text(json.dumps(manifest | {"source": "omop-import"}))
    region = Region.open(out)
    assert not region.synthetic
    return region


# --- Operational databases: every DB test runs on SQLite and, when a server is given, PostgreSQL.
# BRYGGA_TEST_POSTGRES_URL names a PostgreSQL database the tests may create databases from
# (.ci/run sets it). Without it only the SQLite parameter is generated: nothing is skipped.
POSTGRES_URL = os.environ.get("BRYGGA_TEST_POSTGRES_URL", "")
# The PostgreSQL parameter is ``slow``: ``make test-fast`` runs the database tests on SQLite only.
DATABASES = (
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)] if POSTGRES_URL else ["sqlite"]
)


class Databases:
    """Fresh migrated databases: a copied SQLite template, or one PostgreSQL database per
    test run whose tables are emptied before each test (cheaper than CREATE DATABASE)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite_template: Path | None = None
        self.postgres: str | None = None
        self.admin_url = ""

    def sqlite(self, folder: Path) -> str:
        from brygga.db import engine, upgrade

        if self.sqlite_template is None:
            self.sqlite_template = self.root / "template.db"
            upgrade(f"sqlite:///{self.sqlite_template}")
            engine(f"sqlite:///{self.sqlite_template}").dispose()  # checkpoints the WAL
        shutil.copy(self.sqlite_template, folder / "brygga.db")
        return f"sqlite:///{folder / 'brygga.db'}"

    def postgresql(self) -> str:
        from sqlalchemy import create_engine, inspect, make_url, text

        from brygga.db import engine, upgrade

        if self.postgres is None:
            admin = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
            name = f"brygga_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            eng = create_engine(admin, isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            eng.dispose()
            self.admin_url = admin.render_as_string(hide_password=False)
            self.postgres = admin.set(database=name).render_as_string(hide_password=False)
            upgrade(self.postgres)
            return self.postgres
        names = inspect(engine(self.postgres)).get_table_names()
        tables = ", ".join(f'"{t}"' for t in names if t != "alembic_version")
        with engine(self.postgres).begin() as c:
            c.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return self.postgres

    def drop(self) -> None:
        if self.postgres is None:
            return
        from sqlalchemy import create_engine, make_url, text

        from brygga.db import engine

        engine(self.postgres).dispose()
        name = make_url(self.postgres).database
        eng = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory):
    dbs = Databases(tmp_path_factory.mktemp("databases"))
    yield dbs
    dbs.drop()


@pytest.fixture(params=DATABASES)
def fresh_db(request: pytest.FixtureRequest, databases: Databases, tmp_path: Path) -> str:
    """The URL of an empty, migrated operational database (SQLite or PostgreSQL)."""
    if request.param == "sqlite":
        return databases.sqlite(tmp_path)
    return databases.postgresql()
