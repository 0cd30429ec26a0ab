"""Group commit: many requests' writes in one transaction, one fsync, each answered after it.

A transaction on SQLite costs an fsync of the WAL at commit, and the audit log another fsync
per record; with the write lock held meanwhile, one request at a time gets a few milliseconds
of CPU and then waits for the disk. ``GroupCommit`` runs write jobs on one writer thread per
process and database: it takes every job queued by then, runs them, commits once, then writes
all their audit records with one fsync (``audit.batch``), and only then resolves each job's
future. So a request that awaits its job is answered only when its rows and audit records are
durable (acknowledged = durable). While one batch commits, the next one gathers: batches grow
with the load, no timer needed.

The audit records follow the commit, not precede it: a record then never claims an action
that a failed commit or a crash took back (a registration the database does not have). The
price is the opposite window: a crash between the commit and the audit fsync leaves that
batch's committed rows without their records; none of them was acknowledged, and the rows
themselves say what happened (``registered_at``). Still one audit fsync per batch, as before,
and it is made after the write lock is released, so other writers no longer wait for it.

Two kinds of job:

* ``run(job)``: ``job(session)``, in its own savepoint, so a failing job rolls back alone;
* ``run_bulk(bulk, item)``: the batch's items of the same ``bulk`` function go to one call
  ``bulk(session, items)``, which returns one outcome per item (an exception is raised to that
  item's caller). A few statements for a whole batch instead of a few per request: the ORM's
  per-object work, not the disk, is what limits a single writer once commits are grouped.

    await group_commit(url).run_bulk(service.register_refs, ref)
"""

from __future__ import annotations

__all__ = ["MAX_BATCH", "Bulk", "GroupCommit", "group_commit"]

import asyncio
import contextlib
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from brygga import audit
from brygga.config import get_settings
from brygga.db.checkpoint import background_checkpoints
from brygga.db.session import write_session

T = TypeVar("T")
Bulk = Callable[[Session, Sequence[Any]], Sequence[Any]]
MAX_BATCH = 256  # bounds a batch's transaction; more waiting jobs go into the next one


def _single(session: Session, jobs: Sequence[Callable[[Session], Any]]) -> list[Any]:
    """The bulk function of plain jobs: each in a savepoint, its error its own outcome."""
    outcomes: list[Any] = []
    log = audit.current_batch()
    for job in jobs:
        mark = log.mark() if log else 0
        try:
            with session.begin_nested():
                outcomes.append(job(session))
        except Exception as exc:
            if log:
                log.discard_after(mark)  # the action was rolled back, so is its record
            outcomes.append(exc)
    return outcomes


class GroupCommit:
    """The writer thread of one database (get it with ``group_commit(url)``)."""

    def __init__(self, url: str, max_batch: int = MAX_BATCH) -> None:
        self.url = url
        self.max_batch = max_batch
        self.batches = 0  # committed batches, for tests and benchmarks
        # One JSON line per batch (jobs; ms waiting for the lock, in statements, committing,
        # writing the audit records), for finding where a slow request's time went.
        self.trace = get_settings().group_commit_trace
        background_checkpoints(url)  # no checkpoint inside a batch's commit
        self._jobs: queue.SimpleQueue[tuple[Bulk, Any, Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="brygga-group-commit", daemon=True)
        self._thread.start()

    def submit(self, bulk: Bulk, item: Any) -> Future:
        """Queue ``item`` for ``bulk``; the future resolves after its batch committed."""
        future: Future = Future()
        self._jobs.put((bulk, item, future))
        return future

    async def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job(session)`` in the next batch; the durable result (or the job's error)."""
        return await self.run_bulk(_single, job)

    async def run_bulk(self, bulk: Bulk, item: Any) -> Any:
        """Pass ``item`` to ``bulk`` with the batch's other items; its durable outcome."""
        # An asyncio future, settled on its loop once per batch: cheaper per request than a
        # thread-safe Future wrapped for asyncio.
        future = asyncio.get_running_loop().create_future()
        self._jobs.put((bulk, item, future))
        return await future

    def _loop(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._commit([job for job in jobs if _still_wanted(job[2])])

    def _commit(self, jobs: list[tuple[Bulk, Any, Any]]) -> None:
        groups: dict[Bulk, list[tuple[Any, Any]]] = {}
        for bulk, item, future in jobs:
            groups.setdefault(bulk, []).append((item, future))
        outcomes: list[tuple[Any, Any]] = []
        times = [time.perf_counter()]
        try:
            # The batch's audit records are queued (audit.batch) while its jobs run, and
            # written only once the transaction has committed: a failed commit drops them.
            with audit.batch() as log:
                with write_session(self.url) as s:
                    times.append(time.perf_counter())
                    for bulk, entries in groups.items():
                        items = [item for item, _future in entries]
                        mark = log.mark()
                        try:
                            with s.begin_nested():
                                results = list(bulk(s, items))
                            assert len(results) == len(items), (
                                f"{bulk.__name__}: one outcome per item"
                            )
                        except Exception as exc:  # this group's error, to its callers alone
                            log.discard_after(mark)
                            results = [exc] * len(items)
                        outcomes += [(f, r) for (_item, f), r in zip(entries, results, strict=True)]
                    s.flush()
                    times.append(time.perf_counter())
                times.append(time.perf_counter())  # committed: the rows are durable
                log.flush()  # then their audit records (one fsync, outside the write lock)
                times.append(time.perf_counter())
            self.batches += 1
        except BaseException as exc:
            # The commit failed (nothing of the batch is durable, and no record was written),
            # or the audit write after it did: the callers get the error, not a success.
            _settle_all([(future, exc) for _bulk, _item, future in jobs])
            if not isinstance(exc, Exception):
                raise
            return
        _settle_all(outcomes)
        if self.trace:
            self._trace(len(jobs), times)

    def _trace(self, jobs: int, times: list[float]) -> None:
        ms = [round((b - a) * 1000, 2) for a, b in itertools.pairwise(times)]
        line = {"time": time.time(), "jobs": jobs} | dict(
            zip(("lock_ms", "statements_ms", "commit_ms", "audit_ms"), ms, strict=True)
        )
        with open(self.trace, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def _still_wanted(future: Any) -> bool:
    if isinstance(future, Future):
        return future.set_running_or_notify_cancel()
    return not future.cancelled()  # a request that went away (the job would still commit)


def _settle(outcomes: list[tuple[Any, Any]]) -> None:
    for future, outcome in outcomes:
        if future.done():  # cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _settle_all(outcomes: list[tuple[Any, Any]]) -> None:
    """Resolve thread-safe futures here, asyncio ones on their loops (one call per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    for future, outcome in outcomes:
        if isinstance(future, Future):
            _settle([(future, outcome)])
        else:
            by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, mine)


_committers: dict[tuple[int, str], GroupCommit] = {}
_lock = threading.Lock()


def group_commit(url: str) -> GroupCommit:
    """The group committer of ``url`` in this process (started on first use)."""
    key = (os.getpid(), url)  # a forked worker starts its own thread
    with _lock:
        if key not in _committers:
            _committers[key] = GroupCommit(url)
        return _committers[key]
