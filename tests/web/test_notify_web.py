"""The server delivers the outbox on its schedule (the app's lifespan, web/notifier.py): a
volunteer's "interested" on the web reaches the study team's mailbox through a real SMTP
server, and several server processes never send a message twice."""

from __future__ import annotations

import logging
import re
import time

import pytest
from sqlalchemy import select

from brygga import clock
from brygga.db import session as db_session
from brygga.registry.models import Resident
from brygga.studies import matching, outbox
from brygga.studies.models import Invitation, OutboxMessage
from brygga.web.app import WebConfig, create_app
from tests.e2e.serving import free_port, serve_in_thread, start_server
from tests.mail import smtp_server


def use_smtp(monkeypatch: pytest.MonkeyPatch, port: int, interval: str) -> None:
    for name, value in {
        "SENDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none", "SMTP_FROM": "Brygga <noreply@brygga.example>",
        "PUBLIC_URL": "https://brygga.example", "INTERVAL_SECONDS": interval,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"BRYGGA_NOTIFY_{name}", value)


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "nothing arrived in time"
        time.sleep(0.05)


def test_the_server_delivers_the_outbox_on_its_schedule(site, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="brygga.notify")
    with db_session(site["url"]) as s:
        matching.match_all(s, lambda _study: None)
        [inv] = s.scalars(select(Invitation.id)).all()
    resident = site["client"]("resident")
    r = resident.post(f"/portal/invitations/{inv}", data={"answer": "interested"})
    assert r.status_code == 303
    with db_session(site["url"]) as s:
        [team] = s.scalars(select(OutboxMessage).where(OutboxMessage.staff_id.is_not(None)))
        assert team.sent_at is None  # queued with the answer, not sent by the request
    with smtp_server() as (port, recorder):
        use_smtp(monkeypatch, port, "0.1")
        app = create_app(WebConfig(database_url=site["url"], demo=True))
        with serve_in_thread(app, lifespan="on"):
            wait_for(lambda: recorder.arrived)
            # The flush counts itself when it returns, just after the mail server has the mail.
            wait_for(lambda: app.state.notifier.flushes >= 1)
        [arrived] = recorder.arrived
    assert arrived.envelope_to == ["researcher@example.com"]
    assert f"https://brygga.example/studies/{site['ids']['study']}/contacts" in arrived.body
    assert "Förnamn0" not in arrived.body and "person0@example.com" not in arrived.body
    with db_session(site["url"]) as s:
        assert all(m.sent_at is not None for m in s.scalars(select(OutboxMessage)))
    logged = [r.getMessage() for r in caplog.records if r.name == "brygga.notify"]
    assert "outbox: 1 sent, 1 in the app, 0 to retry, 0 given up" in logged
    assert not any("@" in line for line in logged)  # counts, never addresses


def test_no_schedule_when_the_interval_is_zero(site, monkeypatch):
    monkeypatch.setenv("BRYGGA_NOTIFY_INTERVAL_SECONDS", "0")
    app = create_app(WebConfig(database_url=site["url"], demo=True))
    with serve_in_thread(app, lifespan="on"):
        assert app.state.notifier is None


@pytest.mark.slow
def test_several_server_processes_send_each_message_once(site, monkeypatch):
    """``brygga serve --workers 2``: each process flushes on its schedule; the claims give
    each message to one of them."""
    with db_session(site["url"]) as s:
        resident = s.scalar(select(Resident).where(Resident.ref == site["ids"]["resident_ref"]))
        resident.profile.contact_channel = "email"
        resident_id = resident.id
        at = clock.now()
        s.add_all(
            OutboxMessage(resident_id=resident_id, channel="email", template=outbox.DIGEST,
                          payload={"count": 100 + i}, created_at=at, attempts=0)
            for i in range(40)
        )  # fmt: skip
    with smtp_server() as (port, recorder):
        recorder.delay = 0.01  # the processes' flushes overlap
        use_smtp(monkeypatch, port, "0.2")
        monkeypatch.setenv("BRYGGA_NOTIFY_BATCH", "3")
        server = start_server(site["url"], site["dir"], free_port(), secret="x" * 32, workers=2)
        try:
            wait_for(lambda: len(recorder.arrived) >= 40, seconds=60)
            time.sleep(1.0)  # a second send would arrive by now
        finally:
            server.terminate()
            server.wait(10)
    counts = [int(re.match(r"Du har (\d+) nya", a.body).group(1)) for a in recorder.arrived]
    assert sorted(counts) == list(range(100, 140))
