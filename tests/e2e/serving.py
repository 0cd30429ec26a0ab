"""Servers for the tests: ``brygga serve`` in a subprocess (for the tests that kill it), and an
app under uvicorn in a thread of the test process (``serve_in_thread``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    url: str, data_dir: Path, port: int, *, secret: str, workers: int = 1
) -> subprocess.Popen:
    """Start ``brygga serve`` on ``url``'s database and wait until ``/healthz`` answers."""
    env = os.environ | {"BRYGGA_DATABASE_URL": url, "BRYGGA_DATA_DIR": str(data_dir),
                        "BRYGGA_SECRET_KEY": secret}  # fmt: skip
    argv = ["serve", "--port", str(port), "--workers", str(workers)]
    code = f"from brygga.cli import main; main({argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "the server exited while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.1)


@contextmanager
def serve_in_thread(app: Any, lifespan: str = "off") -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields its base URL.
    ``lifespan="on"`` runs the app's lifespan (the outbox's schedule, web/notifier.py)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan=lifespan, ws="none", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start within 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
