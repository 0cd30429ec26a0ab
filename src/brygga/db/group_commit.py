"""Group commit: many requests' writes in one transaction, one fsync, each answered after it.

A transaction on SQLite costs an fsync of the WAL at commit, and the audit log another fsync
per record; with the write lock held meanwhile, one request at a time gets a few milliseconds
of CPU and then waits for the disk. ``GroupCommit`` runs write jobs (functions of a
``Session``) on one writer thread per process and database: it takes every job queued by then,
runs each in its own savepoint, writes all their audit records with one fsync
(``audit.batch``), commits once, and only then resolves each job's future. So a request that
awaits its job is answered only when its rows and audit records are durable (acknowledged =
durable), and one failing job (a 404, an invalid form) rolls back alone.

While one batch commits, the next one gathers: batches grow with the load, no timer needed.

    result = await group_commit(url).run(lambda s: service.register(s, ...))
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from brygga import audit
from brygga.db.session import write_session

T = TypeVar("T")
Job = tuple[Callable[[Session], Any], Future]
MAX_BATCH = 256  # bounds a batch's transaction; more waiting jobs go into the next one


class GroupCommit:
    """The writer thread of one database (start it with ``group_commit(url)``)."""

    def __init__(self, url: str, max_batch: int = MAX_BATCH) -> None:
        self.url = url
        self.max_batch = max_batch
        self.batches = 0  # committed batches, for tests and benchmarks
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="brygga-group-commit", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[Session], T]) -> Future[T]:
        """Queue ``job``; its future resolves after the batch holding it committed."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future

    async def run(self, job: Callable[[Session], T]) -> T:
        """``submit`` for async code: awaits the durable result (or raises the job's error)."""
        return await asyncio.wrap_future(self.submit(job))

    def _loop(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._commit(
                [(job, future) for job, future in jobs if future.set_running_or_notify_cancel()]
            )

    def _commit(self, jobs: list[Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with write_session(self.url) as s, audit.batch() as log:
                for job, _future in jobs:
                    mark = log.mark()
                    try:
                        with s.begin_nested():
                            outcomes.append((True, job(s)))
                    except Exception as exc:  # this job's error, reported to its caller alone
                        log.discard_after(mark)
                        outcomes.append((False, exc))
                log.flush()  # audit records are durable before the rows they describe
            self.batches += 1
        except BaseException as exc:  # the commit failed: nothing of this batch is durable
            for _job, future in jobs:
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_job, future), (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


_committers: dict[tuple[int, str], GroupCommit] = {}
_lock = threading.Lock()


def group_commit(url: str) -> GroupCommit:
    """The group committer of ``url`` in this process (started on first use)."""
    key = (os.getpid(), url)  # a forked worker starts its own thread
    with _lock:
        if key not in _committers:
            _committers[key] = GroupCommit(url)
        return _committers[key]
