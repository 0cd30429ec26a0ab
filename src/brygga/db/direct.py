"""The operational SQLite database through the standard library, for a new process's fast path.

A ``brygga feasibility`` process that answers from the bitmaps kept on disk spends a few
milliseconds counting; importing SQLAlchemy and Alembic to write its question's record cost it
about 300 ms more (issue 18). This module lets that path do without them, with the same rules
as ``session.py``:

* ``database_url`` - the configured URL (the one definition; ``session.py`` re-exports it);
* ``is_current(url)`` - whether a SQLite database is at the newest migration: its
  ``alembic_version`` compared with ``head_revision()``, read from the migration files
  themselves (so there is no second list of revisions to keep in step). Anything else (a new
  database, an older one, PostgreSQL) goes through ``migrate.ensure_current`` and Alembic;
* ``writer_lock(url)`` - the writers' queue of a SQLite database (a mutex per process and a
  file lock between processes), shared with ``session.write_session``;
* ``write_transaction(url)`` - a ``sqlite3`` connection in ``BEGIN IMMEDIATE`` under that lock,
  with the pragmas ``session.py`` sets (WAL, ``synchronous=FULL``: a commit returns only after
  the WAL is fsynced, busy timeout, foreign keys). Committed on success, rolled back on error.
"""

from __future__ import annotations

__all__ = [
    "BUSY_TIMEOUT_MS",
    "checkpointed",
    "database_url",
    "head_revision",
    "is_current",
    "mark_checkpointed",
    "sqlite_file",
    "write_transaction",
    "writer_lock",
]

import fcntl
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from brygga.config import Settings, get_settings

BUSY_TIMEOUT_MS = 30_000
VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")

_lock = threading.Lock()
_writer_locks: dict[tuple[int, str], tuple[threading.Lock, int | None]] = {}
_no_autocheckpoint: set[tuple[int, str]] = set()


def mark_checkpointed(url: str) -> None:
    """From now on this process's connections to ``url`` leave checkpoints to ``checkpoint.py``."""
    _no_autocheckpoint.add((os.getpid(), url))


def checkpointed(url: str) -> bool:
    """Whether a background thread of this process checkpoints ``url`` (``checkpoint.py``)."""
    return (os.getpid(), url) in _no_autocheckpoint


def database_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{Path(settings.data_dir).resolve() / 'brygga.db'}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None: another database, or one in memory)."""
    path = url.removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or path in ("", ":memory:"):
        return None
    return Path(path)


@cache
def head_revision() -> str | None:
    """The newest migration: the one revision no other migration names as its predecessor
    (None when the files do not say it plainly: several heads; Alembic decides then)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(text)
        if down is not None:
            downs.update(_QUOTED.findall(down.group(1)))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def is_current(url: str) -> bool:
    """Whether the SQLite database at ``url`` exists and is at ``head_revision()``."""
    path, head = sqlite_file(url), head_revision()
    if path is None or head is None or not path.is_file():
        return False
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        return False  # no version table yet: a database Alembic has not set up
    finally:
        connection.close()
    return rows == [(head,)]


@contextmanager
def writer_lock(url: str) -> Iterator[None]:
    """Hold the write turn of the SQLite database at ``url`` (nothing for other databases).

    Per process a mutex (a forked child must not inherit a lock held by its parent's threads;
    a plain lock: FastAPI may leave a dependency in another thread than it entered it), then
    between processes a file lock beside the database, which wakes the next writer as soon as
    the holder commits where SQLite's busy handler would poll with sleeps of up to 100 ms.
    Waiting is bounded like SQLite's busy timeout (``TimeoutError``), so a nested write fails
    instead of hanging."""
    if not url.startswith("sqlite"):
        yield  # PostgreSQL: row locks (SELECT ... FOR UPDATE) where needed
        return
    with _lock:
        key = (os.getpid(), url)
        if key not in _writer_locks:
            _writer_locks[key] = (threading.Lock(), _lock_file(url))
        lock, fd = _writer_locks[key]
    if not lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
        raise TimeoutError("database is locked")
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        lock.release()


def _lock_file(url: str) -> int | None:
    """A file beside a SQLite database for its writers to queue on (None: in memory)."""
    path = sqlite_file(url)
    if path is None:
        return None
    return os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextmanager
def write_transaction(url: str) -> Iterator[sqlite3.Connection]:
    """A write transaction on the SQLite database file at ``url`` (see the module's text)."""
    path = sqlite_file(url)
    if path is None:
        raise ValueError(f"not a SQLite database file: {url}")
    with writer_lock(url):
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA foreign_keys=ON")
            if checkpointed(url):  # a server's checkpoint thread does it, not the committer
                connection.execute("PRAGMA wal_autocheckpoint=0")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()
