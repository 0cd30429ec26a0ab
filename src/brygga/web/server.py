"""Run the web app under uvicorn, in one process or several sharing one listening socket.

``brygga serve --workers N``: the parent binds the socket, then forks N worker processes that
each build their own app (database engines, the group-commit writer thread) and serve the
socket; the kernel spreads connections over them. Python runs one thread at a time per
process, so on a machine with several cores this is how the server uses more than one.
Forking (rather than uvicorn's own ``workers``, which starts fresh interpreters) hands every
worker the same ``WebConfig`` object, secret key and identity provider included, without
writing them anywhere. Workers die with the parent, even when it is killed (SIGKILL).

Durability does not depend on the number of workers: every worker answers a write only after
it committed, and on SQLite the workers' writers queue on one lock (``db.session``).
"""

from __future__ import annotations

__all__ = ["PR_SET_PDEATHSIG", "UVICORN", "run"]

import contextlib
import ctypes
import os
import signal
import socket
import sys
from typing import Any

import uvicorn

from brygga.web.app import WebConfig, create_app, freeze_heap

PR_SET_PDEATHSIG = 1
# uvicorn would by default believe X-Forwarded-For from 127.0.0.1 and rewrite the client's
# address before the app sees it: a local client could then forge any address. The app reads
# the header itself, and only from the proxies it is told to trust (security.client_address).
UVICORN = {"log_level": "warning", "access_log": False, "proxy_headers": False}


def run(config: WebConfig, host: str, port: int, workers: int = 1) -> None:
    if workers <= 1:
        uvicorn.run(_app(config), host=host, port=port, **UVICORN)
        return
    from brygga.db import engine

    engine(config.database_url).dispose()  # no pooled connection may cross the fork
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    children = [_fork_worker(config, sock) for _ in range(workers)]

    def stop(signum: int, _frame: Any) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(code)
    sys.exit(max(status, 0))


def _app(config: WebConfig) -> Any:
    """The app, with everything alive by then left out of garbage collections
    (``app.freeze_heap``; before the workers fork, so they share those pages)."""
    app = create_app(config)
    freeze_heap()
    return app


def _fork_worker(config: WebConfig, sock: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    with contextlib.suppress(OSError, AttributeError):  # Linux: die with the parent
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    server = uvicorn.Server(uvicorn.Config(_app(config), **UVICORN))
    server.run(sockets=[sock])
    os._exit(0)
