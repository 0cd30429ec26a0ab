"""Background WAL checkpoints: no checkpoint at commit, a bounded WAL, nothing lost."""

from __future__ import annotations

import sqlite3

from sqlalchemy import text

from brygga.db import engine, session, write_session
from brygga.db.checkpoint import Checkpointer, background_checkpoints
from brygga.db.session import mark_checkpointed


def _setup(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with write_session(url) as s:
        s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    return url


def _wal_frames(url: str) -> int:
    """Frames in the WAL since it last started over (a checkpoint that copies nothing new)."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def _write(url: str, rows: int, start: int = 0) -> None:
    for i in range(start, start + rows):
        with write_session(url) as s:
            s.execute(text("INSERT INTO t (id, body) VALUES (:i, :b)"), {"i": i, "b": "x" * 20_000})


def test_a_checkpointed_database_commits_without_checkpointing(tmp_path) -> None:
    url = _setup(tmp_path)
    with session(url) as s:  # a connection from before the checkpointer started
        assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
    checkpointer = background_checkpoints(url)
    assert checkpointer is background_checkpoints(url)  # one per process and database
    with session(url) as s:
        assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine(url).dispose()


def test_the_wal_restarts_after_a_checkpoint_and_keeps_every_row(tmp_path) -> None:
    url = _setup(tmp_path)
    mark_checkpointed(url)  # as background_checkpoints does, without its thread's timing
    _write(url, 250)  # 5 pages each: past the 1,000 at which a commit would have checkpointed
    assert _wal_frames(url) > 1250  # no commit checkpointed
    checkpointer = Checkpointer(url, limit_frames=100)  # past the limit: under the writer lock
    frames, copied = checkpointer.checkpoint()
    assert frames == copied and checkpointer.forced == 1 and checkpointer.runs == 1
    _write(url, 1, start=250)
    assert _wal_frames(url) < 20  # the next writer started the WAL over
    with session(url) as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 251
    engine(url).dispose()
