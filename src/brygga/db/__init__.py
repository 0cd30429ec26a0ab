"""The operational database: SQLAlchemy 2 models, sessions and Alembic migrations.

* ``Base`` - the declarative base every model derives from (``db/base.py``);
* ``database_url()``, ``engine()``, ``session()``, ``write_session()`` - connections from
  ``Settings.database_url`` (default: a SQLite file under ``Settings.data_dir``, WAL mode, busy
  timeout) (``db/session.py``);
* ``upgrade(url)`` - run the Alembic migrations in ``db/migrations`` up to the newest.

Public modules: ``base``, ``session``, ``direct`` (the SQLite fast path without SQLAlchemy:
the schema check and a write transaction through ``sqlite3``), ``group_commit`` (many requests'
writes in one transaction), ``checkpoint`` (WAL checkpoints in the background), ``migrate`` and
``models`` (the list of every package's models, for Alembic).

Models live beside the code that owns them (``privacy/models.py``, ...) and are listed in
``db/models.py`` so that Alembic sees them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.db.migrate import upgrade
from brygga.db.session import database_url, engine, session, write_session
from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.db.base import Base

__all__ = ["Base", "database_url", "engine", "session", "upgrade", "write_session"]

# ``Base`` (SQLAlchemy's declarative base) is imported on first use, for start-up time: the
# modules imported above load SQLAlchemy only when a session or an engine is opened.
__getattr__ = lazy_exports(__name__, {"Base": "base"})
