"""The server delivers the outbox on a schedule: a background task of the app's lifespan.

Every ``BRYGGA_NOTIFY_INTERVAL_SECONDS`` (default 30; 0 turns it off, e.g. when a timer runs
``brygga notify``) the task runs ``Brygga.notify`` in a worker thread, so the event loop keeps
answering requests while the mail server is slow. Every worker process of ``brygga serve
--workers N`` runs one; the outbox's claims give each message to one of them
(``studies/outbox.py``). Each flush that did something logs its counts, never an address, on
the ``brygga.notify`` logger (to stderr unless the process configured logging).

On shutdown the task stops between two messages (a send in progress finishes, bounded by
``BRYGGA_NOTIFY_SMTP_TIMEOUT``), so no claimed message is left half-done.
"""

from __future__ import annotations

__all__ = ["LOG", "Notifier", "lifespan"]

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from brygga.platform import Brygga

LOG = logging.getLogger("brygga.notify")


class Notifier:
    """Flushes the outbox of ``url`` every ``interval`` seconds until ``close``."""

    def __init__(self, brygga: Brygga, url: str, file: Path | None, interval: float) -> None:
        self.brygga = brygga
        self.url = url
        self.file = file
        self.interval = interval
        self._closing = asyncio.Event()
        self._stop = threading.Event()  # seen by the delivery thread between messages
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0  # completed flushes (tests and diagnostics)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="brygga-notify")

    async def close(self) -> None:
        self._closing.set()
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=self.interval)
                return  # closing
            except TimeoutError:
                pass
            await self.flush()

    async def flush(self) -> dict[str, int] | None:
        try:
            counts = await asyncio.to_thread(
                self.brygga.notify, self.url, file=self.file, stop=self._stop
            )
        except Exception:  # a broken database or sender must not end the schedule
            LOG.exception("outbox delivery failed; trying again in %s s", self.interval)
            return None
        finally:
            self.flushes += 1
        if any(counts.values()):
            LOG.info(
                "outbox: %d sent, %d in the app, %d to retry, %d given up",
                counts["sent"], counts["in_app"], counts["retrying"], counts["failed"],
            )  # fmt: skip
        return counts


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The app's lifespan: the outbox's schedule runs while the server does."""
    brygga: Brygga = app.state.brygga
    config = app.state.config
    interval = brygga.settings.notify.interval_seconds
    if not interval:
        app.state.notifier = None
        yield
        return
    _log_to_stderr()
    notifier = Notifier(brygga, config.database_url, config.outbox_path, interval)
    app.state.notifier = notifier
    notifier.start()
    try:
        yield
    finally:
        await notifier.close()


def _log_to_stderr() -> None:
    """Deliveries are logged at INFO; without a logging configuration Python would drop them."""
    if LOG.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
