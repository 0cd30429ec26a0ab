"""Many concurrent writing requests do not exhaust the thread pool (issue 6).

Each write request holds the process's writer mutex from its dependency until its commit. If
waiting for the mutex took a pool thread, a burst of more writers than pool threads would
leave the holder's endpoint without a thread to run in, and every request would wait for the
writer timeout.
"""

from __future__ import annotations

import asyncio
import importlib

import anyio.to_thread

# brygga.db re-exports the function session(), which hides the module of the same name
sessions = importlib.import_module("brygga.db.session")

POOL = 3
WRITERS = 4 * POOL


def test_a_burst_of_writers_larger_than_the_thread_pool_completes(site, monkeypatch) -> None:
    monkeypatch.setattr(sessions, "BUSY_TIMEOUT_MS", 3_000)  # a stall fails fast
    c = site["client"]("resident")
    c.get("/healthz")
    token = c.http.cookies["brygga_csrf"]
    form = {"csrf_token": token, "action": "withdraw", "text_version": "1"}

    async def burst() -> list[int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL
        requests = [c.http.post("/portal/consent/contact", data=form) for _ in range(WRITERS)]
        return [r.status_code for r in await asyncio.gather(*requests)]

    statuses = c.loop.run_until_complete(burst())
    assert statuses == [303] * WRITERS  # a stall ends in "database is locked" errors (500)
