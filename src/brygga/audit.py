"""Append-only, hash-chained audit log (security property 4).

Every read of identifiable data (and, later, every consent change) appends one record to a
JSON-lines file, by default ``<data_dir>/audit/audit.jsonl`` (``config.Settings.data_dir``).
Each record holds the SHA-256 of the previous record and its own hash over its canonical
JSON, so ``verify()`` (``brygga audit verify``) detects any edited, inserted, reordered or
deleted record. Removing records at the *end* leaves a shorter valid chain; to detect that,
keep the head hash that ``verify()`` reports somewhere else (a ticket, a signed e-mail) and
pass it later as ``anchor``: verification then also fails if that record is gone.

Records must not contain personal data: name the action, actor, purpose and counts, never a
personnummer, name or contact detail (security property 1).
"""

from __future__ import annotations

__all__ = [
    "FIELDS",
    "GENESIS",
    "TAIL_BLOCK",
    "AuditLogBroken",
    "Batch",
    "Verification",
    "append",
    "append_async",
    "batch",
    "current_batch",
    "default_path",
    "recent",
    "record_hash",
    "verify",
]

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brygga import clock
from brygga.errors import BryggaError, InputError

GENESIS = "0" * 64
TAIL_BLOCK = 8192


class AuditLogBroken(BryggaError):
    """Verification failed: the log was changed (exit code 1, as for a failed check)."""

    exit_code = 1


FIELDS = ("seq", "time", "actor", "action", "details", "prev")


def default_path() -> Path:
    from brygga.config import get_settings

    return get_settings().data_dir / "audit" / "audit.jsonl"


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the record's fields (without ``hash``)."""
    body = {k: record.get(k) for k in FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _last_record(f: Any) -> dict[str, Any] | None:
    """The last record, read backwards from the end (appends must not cost O(log size))."""
    end = f.seek(0, os.SEEK_END)
    tail, pos = b"", end
    while pos > 0:
        step = min(TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        tail = f.read(step) + tail
        body = tail.rstrip()
        if b"\n" in body or (pos == 0 and body):
            return json.loads(body.rpartition(b"\n")[2])
    return None


def append(
    action: str, *, actor: str, details: dict[str, Any], path: str | Path | None = None
) -> dict[str, Any]:
    """Append one record under an exclusive lock; returns the record with its hash.

    Inside ``batch()`` (for the same log) the record is only queued: it gets its ``seq``,
    ``prev`` and ``hash`` when the batch is written, in the same dict.
    """
    if not action or not actor:
        raise InputError("an audit record needs an action and an actor")
    pending = _batch.get()
    if pending is not None and (path is None or Path(path) == pending.path):
        return pending.add(action, actor, details)
    path = Path(path) if path is not None else default_path()
    record = _new_record(action, actor, details)
    _group_write(path, record)
    return record


async def append_async(
    action: str, *, actor: str, details: dict[str, Any], path: str | Path | None = None
) -> dict[str, Any]:
    """``append`` for a coroutine on the event loop; returns once the record is durable.

    The record joins the same group commit, but the coroutine waits without holding a
    worker thread: a view of a resident's kept page (an identity read) is answered on the
    event loop, and through ``append`` every such view waiting for the log's fsync held one
    of the server's 40 pool threads, so that a slow disk and some dozens of residents would
    leave no thread for anything else. The writing runs in a worker thread once per group of
    records. (Measured with 50 residents on the demo: the same server CPU per view as
    through ``append``, 1.1 ms; the fsync itself is most of the record's cost.)
    Not for records inside ``batch()`` (a coroutine's batch is written by its owner).
    """
    if not action or not actor:
        raise InputError("an audit record needs an action and an actor")
    path = Path(path) if path is not None else default_path()
    loop = asyncio.get_running_loop()
    written = loop.create_future()
    entry = _Entry(_new_record(action, actor, details), notify=_notifier(loop, written))
    group = _group(path)
    with group.changed:
        group.queue.append(entry)
        start, group.writing = not group.writing, True
    if start:
        loop.run_in_executor(None, _drain, path, group)
    await written
    if entry.error is not None:
        raise entry.error
    return entry.record


def _notifier(loop: asyncio.AbstractEventLoop, written: asyncio.Future[None]) -> Callable[[], None]:
    def notify() -> None:  # called by the writing thread
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, written)

    return notify


def _settle(written: asyncio.Future[None]) -> None:
    if not written.done():  # not when the waiting request was cancelled meanwhile
        written.set_result(None)


class _Group:
    """Appends of one log from many threads, made durable together (a group commit).

    Every resident's portal view writes an ``identity.read`` record, and an fsync costs
    milliseconds; one at a time, 50 people viewing their pages queued behind each other's
    fsync (bench/web_public.py: /portal p95 1.7 s). Now a thread queues its record; if no
    write is under way it becomes the writer and writes every record queued so far with one
    lock and one fsync, else it waits, and the next writer takes its record along. Each
    ``append`` still returns only once its record is durable, records are chained in the
    order they were queued, and a failed write fails every append it carried.
    """

    def __init__(self) -> None:
        self.queue: list[_Entry] = []
        self.writing = False
        self.waiting = 0  # threads in ``_group_write`` waiting for their turn
        self.changed = threading.Condition()

    def finish(
        self, path: Path, batch: list[_Entry], error: BaseException | None, *, drainer: bool
    ) -> bool:
        """Settle a written batch (with ``changed`` held) and hand the writer's turn on;
        True when the caller (a ``_drain`` thread) keeps it for what is queued."""
        for e in batch:
            e.done, e.error = True, error
            if e.notify is not None:
                e.notify()
        keep = bool(self.queue) and not self.waiting
        if keep and not drainer:
            # Only coroutines' records wait (``append_async``): no thread will come to
            # write them, so a worker thread does, with the turn.
            threading.Thread(target=_drain, args=(path, self), daemon=True).start()
        elif not keep:
            self.writing = False  # a waiting thread takes the turn, or nobody needs it
        self.changed.notify_all()
        return keep and drainer


@dataclass
class _Entry:
    record: dict[str, Any]
    done: bool = False
    error: BaseException | None = None
    notify: Callable[[], None] | None = None  # a coroutine's: called once done


_groups: dict[Path, _Group] = {}
_groups_lock = threading.Lock()
# A forked worker starts with no writer of its own running.
os.register_at_fork(after_in_child=_groups.clear)


def _group(path: Path) -> _Group:
    with _groups_lock:
        return _groups.setdefault(path, _Group())


def _group_write(path: Path, record: dict[str, Any]) -> None:
    group = _group(path)
    entry = _Entry(record)
    with group.changed:
        group.queue.append(entry)
        group.waiting += 1
        while group.writing and not entry.done:
            group.changed.wait()
        group.waiting -= 1
        if entry.done:  # another thread's write carried it
            if entry.error is not None:
                raise entry.error
            return
        group.writing = True
        mine, group.queue = group.queue, []
    error: BaseException | None = None
    try:
        _write(path, [e.record for e in mine])
    except BaseException as exc:
        error = exc
    with group.changed:
        group.finish(path, mine, error, drainer=False)
    if error is not None:
        raise error


def _drain(path: Path, group: _Group) -> None:
    """Write what is queued, group after group, holding the writer's turn (``writing``),
    until nothing is left; threads waiting meanwhile take the turn over after a group."""
    while True:
        with group.changed:
            mine, group.queue = group.queue, []
            if not mine:  # started for records that a thread's write carried meanwhile
                group.writing = False
                group.changed.notify_all()
                return
        error: BaseException | None = None
        try:
            _write(path, [e.record for e in mine])
        except BaseException as exc:  # each append it carried fails with it
            error = exc
        with group.changed:
            if not group.finish(path, mine, error, drainer=True):
                return  # the turn was handed on, or nothing is left


def _new_record(action: str, actor: str, details: dict[str, Any]) -> dict[str, Any]:
    now = clock.now().isoformat(timespec="microseconds")
    return {"time": now, "actor": actor, "action": action, "details": details}


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    """Chain ``records`` onto the log and make them durable: one lock, one write, one fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time, so the chain never forks
        try:
            try:
                last = _last_record(f)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(
                    f"audit log {path} is damaged; run `brygga audit verify`"
                ) from None
            seq, prev = (0, GENESIS) if last is None else (int(last["seq"]) + 1, last["hash"])
            lines = []
            for record in records:
                record |= {"seq": seq, "prev": prev}
                record["hash"] = prev = record_hash(record)
                seq += 1
                lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            f.seek(0, os.SEEK_END)
            f.write("".join(lines).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Batch:
    """Records queued by ``append`` inside ``batch()``, written together by ``flush``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []

    def add(self, action: str, actor: str, details: dict[str, Any]) -> dict[str, Any]:
        record = _new_record(action, actor, details)
        self.records.append(record)
        return record

    def mark(self) -> int:
        return len(self.records)

    def discard_after(self, mark: int) -> None:
        """Drop the records queued after ``mark`` (their action was rolled back)."""
        del self.records[mark:]

    def flush(self) -> None:
        if self.records:
            records, self.records = self.records, []
            _write(self.path, records)


_batch: ContextVar[Batch | None] = ContextVar("audit_batch", default=None)


def current_batch() -> Batch | None:
    """The ``batch()`` this thread or task is in, if any."""
    return _batch.get()


@contextmanager
def batch(path: str | Path | None = None) -> Iterator[Batch]:
    """Queue the appends made inside (in this thread or task) and write them at the end.

    One lock and one fsync for many records: the group commit of the web server's writes
    (``db.group_commit``) uses it, flushing after the database commit so that no record
    claims an action that the commit (or a crash before it) took back. Records queued when
    an exception leaves the block are dropped with the action that failed.
    """
    pending = Batch(Path(path) if path is not None else default_path())
    token = _batch.set(pending)
    try:
        yield pending
    finally:
        _batch.reset(token)
    pending.flush()


@dataclass(frozen=True)
class Verification:
    path: str
    ok: bool
    records: int
    head: str  # hash of the last valid record (GENESIS for an empty log)
    problem: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "records": self.records,
            "head": self.head,
            "problem": self.problem,
            "line": self.line,
        }


def verify(path: str | Path | None = None, *, anchor: str | None = None) -> Verification:
    """Walk the chain; the first broken link is reported with its line number.

    ``anchor``: a record hash kept outside the log; the chain must still contain it.
    """
    path = Path(path) if path is not None else default_path()
    prev, count = GENESIS, 0
    seen_anchor = anchor in (None, GENESIS)
    if not path.exists():
        problem = None if seen_anchor else "the log does not exist"
        return Verification(str(path), seen_anchor, 0, GENESIS, problem)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                return _broken(path, count, prev, lineno, "empty line")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                return _broken(path, count, prev, lineno, "not valid JSON")
            if not isinstance(record, dict) or set(record) != {*FIELDS, "hash"}:
                return _broken(path, count, prev, lineno, "unexpected record fields")
            if record["seq"] != count:
                return _broken(path, count, prev, lineno, f"sequence number is not {count}")
            if record["prev"] != prev:
                return _broken(path, count, prev, lineno, "does not chain to the previous record")
            if record_hash(record) != record["hash"]:
                return _broken(path, count, prev, lineno, "content does not match its hash")
            prev, count = record["hash"], count + 1
            seen_anchor = seen_anchor or prev == anchor
    if not seen_anchor:
        return Verification(
            str(path), False, count, prev, "the anchored record is missing (truncated log?)"
        )
    return Verification(str(path), True, count, prev)


def _lines_backwards(f: Any) -> Iterator[bytes]:
    """The file's lines from the last to the first, read in blocks from the end."""
    pos, rest = f.seek(0, os.SEEK_END), b""
    while pos > 0:
        step = min(TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step) + rest
        lines = block.split(b"\n")
        rest = lines[0]  # may continue in the block before
        for line in reversed(lines[1:]):
            if line.strip():
                yield line
    if rest.strip():
        yield rest


def recent(
    path: str | Path | None = None,
    *,
    action: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    limit: int = 100,
    scan: int = 100_000,
) -> list[dict[str, Any]]:
    """The newest records first, filtered (``action`` and ``actor`` as substrings, ``since``
    an ISO date or time), at most ``limit`` of them, looking at no more than ``scan`` records
    from the end: a page shows the recent log without reading a log of millions of lines."""
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for seen, line in enumerate(_lines_backwards(f)):
            if seen >= scan or len(out) >= limit:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # verify() reports the damage; a listing shows what it can read
            if since and str(record.get("time", "")) < since:
                break  # older than asked: the log is in time order
            if action and action not in str(record.get("action", "")):
                continue
            if actor and actor not in str(record.get("actor", "")):
                continue
            out.append(record)
    return out


def _broken(path: Path, count: int, head: str, line: int, problem: str) -> Verification:
    return Verification(str(path), False, count, head, problem, line)
