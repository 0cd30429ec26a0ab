"""Engines and sessions for the operational database.

The URL comes from ``Settings.database_url`` (``BRYGGA_DATABASE_URL``); by default a SQLite file
``brygga.db`` under ``Settings.data_dir``. SQLite connections use WAL (readers never block the
writer), a busy timeout (writers wait for each other instead of failing) and foreign keys.

``write_session()`` is for read-modify-write transactions that must not interleave (spending a
privacy budget): on SQLite it starts with ``BEGIN IMMEDIATE``, taking the write lock before
the first read; on PostgreSQL callers lock the rows they read with ``SELECT ... FOR UPDATE``
(``select(...).with_for_update()``, which SQLite ignores).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from brygga.config import Settings, get_settings

BUSY_TIMEOUT_MS = 30_000
_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}


def database_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{Path(settings.data_dir).resolve() / 'brygga.db'}"


def engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured database), one per process."""
    url = url or database_url()
    key = (os.getpid(), url)  # a forked worker must not reuse its parent's connections
    with _lock:
        if key not in _engines:
            _engines[key] = _create(url)
        return _engines[key]


def _create(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(eng, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(eng, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng


@contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(engine(url), expire_on_commit=False) as s, s.begin():
        yield s


@contextmanager
def write_session(url: str | None = None) -> Iterator[Session]:
    """``session`` that holds the database's write lock from its first statement (SQLite).

    On SQLite, writers of one process also queue on a mutex first: SQLite's own busy handler
    polls with sleeps of up to 100 ms, which under concurrent requests (the web server's thread
    pool) turns a few milliseconds of work into seconds of waiting.
    """
    url = url or database_url()
    with _writer_lock(url), Session(engine(url), expire_on_commit=False) as s:
        s.connection(execution_options={"sqlite_immediate": True})  # begins the transaction
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


_writer_locks: dict[tuple[int, str], tuple[threading.Lock, int | None]] = {}


@contextmanager
def _writer_lock(url: str) -> Iterator[None]:
    if not url.startswith("sqlite"):
        yield  # PostgreSQL: row locks (SELECT ... FOR UPDATE) where needed
        return
    # Per process: a forked child must not inherit a lock held by its parent's threads. A plain
    # lock, not an RLock: FastAPI may leave a dependency in another thread than it entered it.
    # Waiting is bounded like SQLite's busy timeout, so a nested write session fails, not hangs.
    with _lock:
        key = (os.getpid(), url)
        if key not in _writer_locks:
            _writer_locks[key] = (threading.Lock(), _lock_file(url))
        lock, fd = _writer_locks[key]
    if not lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
        raise OperationalError("BEGIN IMMEDIATE", None, TimeoutError("database is locked"))
    try:
        # Between processes (``brygga serve --workers``), the writer that holds the lock held
        # by this process's threads queues on a file lock, which wakes it as soon as the other
        # commits, where SQLite's busy handler would poll with sleeps of up to 100 ms.
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
    path = url.removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or path in ("", ":memory:"):
        return None
    return os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
