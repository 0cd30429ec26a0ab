"""Engines and sessions for the operational database.

The URL comes from ``Settings.database_url`` (``BRYGGA_DATABASE_URL``); by default a SQLite file
``brygga.db`` under ``Settings.data_dir``. SQLite connections use WAL (readers never block the
writer), a busy timeout (writers wait for each other instead of failing) and foreign keys.

``write_session()`` is for read-modify-write transactions that must not interleave (spending a
privacy budget): on SQLite it starts with ``BEGIN IMMEDIATE``, taking the write lock before
the first read; on PostgreSQL callers lock the rows they read with ``SELECT ... FOR UPDATE``
(``select(...).with_for_update()``, which SQLite ignores). Async code (the web server) first
awaits ``writer_turn()`` on its event loop, so that waiting writers do not hold threads.

Durability: ``synchronous=FULL``, so a commit returns only after the WAL is fsynced. A server
process calls ``background_checkpoints(url)``: its connections then stop checkpointing at
commit (``wal_autocheckpoint=0``; such a checkpoint fsyncs the whole database file while the
committing request waits) and a background thread checkpoints instead (``checkpoint.py``).
Checkpoints only copy already durable WAL frames into the database file, so when they run
does not change what survives a crash.
"""

from __future__ import annotations

__all__ = [
    "BUSY_TIMEOUT_MS",
    "database_url",
    "engine",
    "mark_checkpointed",
    "session",
    "write_session",
    "writer_turn",
]

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brygga.db.direct import (
    BUSY_TIMEOUT_MS,
    checkpointed,
    database_url,
    mark_checkpointed,
    writer_lock,
)
from brygga.util import lazy_module

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

# Imported on first use, for start-up time: ``import brygga.db`` (which imports this module, so
# that ``from brygga.db import session`` names the function) must not load SQLAlchemy.
sa = lazy_module("sqlalchemy")
sa_exc = lazy_module("sqlalchemy.exc")
sa_orm = lazy_module("sqlalchemy.orm")

_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}


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
        return sa.create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    eng = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(eng, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # the default, stated: commit = WAL fsynced
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(eng, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Connections opened before the checkpointer started are switched on their next use.
        if not record.info.get("no_autocheckpoint") and checkpointed(url):
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
            record.info["no_autocheckpoint"] = True

    @sa.event.listens_for(eng, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng


@contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with sa_orm.Session(engine(url), expire_on_commit=False) as s, s.begin():
        yield s


@contextmanager
def write_session(url: str | None = None) -> Iterator[Session]:
    """``session`` that holds the database's write lock from its first statement (SQLite).

    On SQLite, writers of one process also queue on a mutex first: SQLite's own busy handler
    polls with sleeps of up to 100 ms, which under concurrent requests (the web server's thread
    pool) turns a few milliseconds of work into seconds of waiting.
    """
    url = url or database_url()
    with _writer_lock(url), sa_orm.Session(engine(url), expire_on_commit=False) as s:
        s.connection(execution_options={"sqlite_immediate": True})  # begins the transaction
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def writer_turn(url: str | None = None) -> AsyncIterator[None]:
    """Wait on the event loop until no other task of this loop is in a write session of ``url``.

    A coroutine that then enters ``write_session`` in a worker thread waits there only for
    writers outside this loop (the group-commit thread, other processes), which need no thread
    of this loop's pool. Without it a burst of writers larger than the thread pool filled every
    thread with waiting for the mutex while its holder needed a thread to finish its request:
    all of them stalled until the timeout.
    """
    from brygga.db.checkpoint import background_checkpoints  # it imports this module

    url = url or database_url()
    if not url.startswith("sqlite"):
        yield  # PostgreSQL: concurrent transactions, row locks where needed
        return
    background_checkpoints(url)  # a web server's writers leave checkpoints to a thread
    loop = asyncio.get_running_loop()
    with _lock:
        turn = _turns.setdefault(loop, {}).setdefault(url, asyncio.Lock())
    try:
        async with asyncio.timeout(BUSY_TIMEOUT_MS / 1000):
            await turn.acquire()
    except TimeoutError:
        raise sa_exc.OperationalError(
            "BEGIN IMMEDIATE", None, TimeoutError("database is locked")
        ) from None
    try:
        yield
    finally:
        turn.release()


@contextmanager
def _writer_lock(url: str) -> Iterator[None]:
    # The one writers' queue (``direct.writer_lock``), shared with the stdlib fast path; a
    # timeout waiting for it becomes the error SQLite itself gives for a locked database.
    entered = False
    try:
        with writer_lock(url):
            entered = True
            yield
    except TimeoutError:
        if entered:
            raise  # the body's own error
        raise sa_exc.OperationalError(
            "BEGIN IMMEDIATE", None, TimeoutError("database is locked")
        ) from None
