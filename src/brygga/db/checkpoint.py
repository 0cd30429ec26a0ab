"""WAL checkpoints of a SQLite database in a background thread instead of at commit.

By default SQLite checkpoints at the commit that takes the WAL past 1,000 pages: that commit
copies the WAL into the database file and fsyncs it before it returns, and the requests whose
rows it commits wait meanwhile (every few seconds under load, tens to hundreds of
milliseconds). A server process calls ``background_checkpoints(url)``: its connections then
commit without checkpointing (``wal_autocheckpoint=0``, set by ``session.py`` on checkout)
and one thread per process and database runs a ``PASSIVE`` checkpoint every
``INTERVAL_S``, on its own connection, concurrently with the writers (a passive checkpoint
takes no lock that a writer needs).

Bound: SQLite starts the WAL over when a writer begins after a checkpoint copied all of it.
Under a steady stream of commits a passive checkpoint may never quite catch up, so when the
WAL holds more than ``LIMIT_FRAMES`` the checkpointer takes the writer lock (the process's
writers and other processes' queue on it for one checkpoint of the frames written since the
last one) and the next writer starts the WAL over.

Durability is unchanged: a commit returns after its WAL frames are fsynced (synchronous=FULL);
a checkpoint only copies durable frames into the database file, and recovery after a crash
replays whatever WAL it finds, however long.
"""

from __future__ import annotations

__all__ = ["INTERVAL_S", "LIMIT_FRAMES", "Checkpointer", "background_checkpoints"]

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from brygga.config import get_settings
from brygga.db.session import BUSY_TIMEOUT_MS, _writer_lock, mark_checkpointed

INTERVAL_S = 1.0
LIMIT_FRAMES = 4_096  # 16 MiB of 4 KiB pages


@dataclass
class Checkpointer:
    """The checkpoint thread of one SQLite database file in this process."""

    url: str
    interval_s: float = INTERVAL_S
    limit_frames: int = LIMIT_FRAMES
    runs: int = 0  # checkpoints that copied frames, for tests and benchmarks
    forced: int = 0  # of them, under the writer lock (the WAL had passed the limit)
    seconds: list[float] = field(default_factory=list)  # duration of each run that copied
    # The trace file (``BRYGGA_GROUP_COMMIT_TRACE``), read once when the thread starts: the
    # thread never reads the settings itself, so a setting changed or broken later cannot
    # raise inside it.
    trace: Path | None = None
    _thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self.url.removeprefix("sqlite:///")

    def start(self) -> None:
        self.trace = get_settings().group_commit_trace
        name = "brygga-checkpoint"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while os.path.exists(self.path):  # a deleted database (a test's) ends the thread
            time.sleep(self.interval_s)
            try:
                self.checkpoint()
            except (sqlite3.Error, SQLAlchemyError):
                continue  # a busy or vanished file, a writer lock timeout: try next round

    def checkpoint(self) -> tuple[int, int]:
        """One passive checkpoint (forced under the writer lock past the limit); (frames in
        the WAL, frames copied so far)."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            started = time.perf_counter()
            frames, copied = self._passive(conn)
            if frames >= self.limit_frames:
                with _writer_lock(self.url):
                    frames, copied = self._passive(conn)
                self.forced += 1
            if frames and copied:
                self.runs += 1
                self.seconds.append(time.perf_counter() - started)
                del self.seconds[:-1000]
                self._trace(frames, copied)
            return frames, copied
        finally:
            conn.close()

    def _trace(self, frames: int, copied: int) -> None:
        """A line in the group commit's trace (``BRYGGA_GROUP_COMMIT_TRACE``), if it is on."""
        if trace := self.trace:
            line = {"time": time.time(), "checkpoint_ms": round(self.seconds[-1] * 1000, 2),
                    "frames": frames, "copied": copied, "forced": self.forced}  # fmt: skip
            with open(trace, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")

    @staticmethod
    def _passive(conn: sqlite3.Connection) -> tuple[int, int]:
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, copied


_checkpointers: dict[tuple[int, str], Checkpointer] = {}
_lock = threading.Lock()


def background_checkpoints(url: str) -> Checkpointer | None:
    """Checkpoint ``url`` in a thread of this process from now on (None: not a SQLite file)."""
    path = url.removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or path in ("", ":memory:"):
        return None
    key = (os.getpid(), url)  # a forked worker starts its own
    with _lock:
        if key not in _checkpointers:
            checkpointer = Checkpointer(url)
            checkpointer.start()
            _checkpointers[key] = checkpointer
            mark_checkpointed(url)
        return _checkpointers[key]
