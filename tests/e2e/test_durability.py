"""Killing the server (SIGKILL) during registration load loses no acknowledged registration or
consent: a request is answered only after its transaction committed."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from brygga.db import engine as db_engine
from brygga.db import session as db_session
from brygga.registry import consent, service
from brygga.registry.models import Consent, Resident
from brygga.web.security import Principal, session_tokens
from tests.e2e.serving import free_port, start_server

# slow: `brygga serve` in a subprocess under load, killed and restarted
pytestmark = pytest.mark.slow

SECRET = "durability-test-secret"
CSRF = "durability-csrf-token"


def register(
    base: str, refs: list[str], tokens: dict[str, str], acked: dict[str, set[str]]
) -> None:
    """Join and give the contact consent for each resident; note what the server acknowledged."""
    version = consent.TEXTS["contact"].version
    with httpx.Client(base_url=base, timeout=10) as http:
        for ref in refs:
            token = tokens[ref]
            headers = {"X-CSRF-Token": CSRF,
                       "Cookie": f"brygga_session={token}; brygga_csrf={CSRF}"}  # fmt: skip
            try:
                r = http.post("/portal/join", headers=headers)
                if r.status_code == 303:
                    acked["join"].add(ref)
                data = {"action": "grant", "text_version": version}
                r = http.post("/portal/consent/contact", data=data, headers=headers)
                if r.status_code == 303:
                    acked["consent"].add(ref)
            except httpx.TransportError:
                return  # the server is gone


def test_sigkill_during_registration_loses_nothing_acknowledged(
    fresh_db, tmp_path, make_identities
) -> None:
    make_identities(tmp_path / "ids.parquet", 600)
    with db_session(fresh_db) as s:
        service.load_identities(s, tmp_path / "ids.parquet")
        refs = list(s.scalars(select(Resident.ref).order_by(Resident.id)))
    who = [Principal("resident", ref) for ref in refs]
    tokens = dict(zip(refs, session_tokens(who, SECRET, fresh_db), strict=True))
    db_engine(fresh_db).dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(fresh_db, tmp_path, port, secret=SECRET)
    acked: dict[str, set[str]] = {"join": set(), "consent": set()}
    workers = [
        threading.Thread(target=register, args=(base, refs[i::8], tokens, acked)) for i in range(8)
    ]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 20
        while len(acked["consent"]) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait(10)
        for w in workers:
            w.join(20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acked["consent"]) >= 40, "the load did not get going before the kill"
    assert len(acked["join"]) < len(refs), "the kill came after the load had finished"

    server = start_server(fresh_db, tmp_path, port, secret=SECRET)  # restarts on the same database
    try:
        with db_session(fresh_db) as s:
            joined = set(s.scalars(select(Resident.ref).where(Resident.registered_at.is_not(None))))
            consented = set(
                s.scalars(
                    select(Resident.ref)
                    .join(Consent, Consent.resident_id == Resident.id)
                    .where(Consent.kind == "contact", Consent.granted)
                )
            )
        assert acked["join"] <= joined
        assert acked["consent"] <= consented
        # The restarted server takes registrations again.
        last: dict[str, set[str]] = {"join": set(), "consent": set()}
        register(base, [r for r in refs if r not in joined][:1], tokens, last)
        assert len(last["consent"]) == 1
    finally:
        server.kill()
        server.wait()
        db_engine(fresh_db).dispose()
