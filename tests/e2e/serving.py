"""``brygga serve`` in a subprocess for the tests that kill it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


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
