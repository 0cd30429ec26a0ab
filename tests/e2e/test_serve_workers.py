"""``brygga serve --workers 2``: both workers register residents, nothing acknowledged is lost
when the parent is killed (SIGKILL), and the workers die with it (the port is free again)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from brygga import audit
from brygga.db import engine as db_engine
from brygga.db import session as db_session
from brygga.registry.models import Resident
from brygga.web.security import Principal, session_tokens
from tests.e2e.serving import free_port, start_server

# slow: `brygga serve --workers 2` in a subprocess, killed
pytestmark = pytest.mark.slow

SECRET = "workers-test-secret"
CSRF = "workers-csrf-token"


def join(base: str, refs: list[str], tokens: dict[str, str], acked: set[str]) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        for ref in refs:
            token = tokens[ref]
            headers = {"X-CSRF-Token": CSRF,
                       "Cookie": f"brygga_session={token}; brygga_csrf={CSRF}"}  # fmt: skip
            try:
                if http.post("/portal/join", headers=headers).status_code == 303:
                    acked.add(ref)
            except httpx.TransportError:
                return  # the server is gone


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_two_workers_lose_nothing_acknowledged_and_die_with_the_parent(fresh_db, tmp_path) -> None:
    with db_session(fresh_db) as s:
        s.add_all([Resident(person_id=i) for i in range(800)])
        s.flush()
        refs = list(s.scalars(select(Resident.ref).order_by(Resident.id)))
    who = [Principal("resident", ref) for ref in refs]
    tokens = dict(zip(refs, session_tokens(who, SECRET, fresh_db), strict=True))
    db_engine(fresh_db).dispose()
    port = free_port()
    server = start_server(fresh_db, tmp_path, port, secret=SECRET, workers=2)
    acked: set[str] = set()
    base = f"http://127.0.0.1:{port}"
    workers = [
        threading.Thread(target=join, args=(base, refs[i::8], tokens, acked)) for i in range(8)
    ]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 30
        while len(acked) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = children(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        for w in workers:
            w.join(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert 100 <= len(acked) < len(refs), "the kill did not come mid-load"
    assert len(pids) == 2
    deadline = time.monotonic() + 20
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, pids)), "a worker outlived its parent"
    assert port_is_free(port)
    with db_session(fresh_db) as s:
        joined = set(s.scalars(select(Resident.ref).where(Resident.registered_at.is_not(None))))
    db_engine(fresh_db).dispose()
    assert acked <= joined
    path = tmp_path / "audit" / "audit.jsonl"
    log = audit.verify(path)
    assert log.ok and log.records >= len(acked)  # acknowledged after their audit records
    # Written after the commit, so no record claims a registration the kill took back.
    records = [json.loads(line) for line in path.read_text().splitlines()]
    claimed = {
        r["actor"].removeprefix("resident:") for r in records if r["action"] == "resident.register"
    }
    assert acked <= claimed <= joined
