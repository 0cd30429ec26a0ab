"""Notifications delivered through a real SMTP server (aiosmtpd on a free loopback port): what
arrives for residents (Swedish, English) and for a study team, refusals and retries, and
several senders at once never sending a message twice."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from brygga import clock
from brygga.config import NotifySettings, SettingsError, get_settings
from brygga.db import session as db_session
from brygga.platform import Brygga
from brygga.registry import service
from brygga.studies import invitations, matching, outbox, staff
from brygga.studies.models import Invitation, OutboxMessage
from brygga.studies.senders import ChannelSender, DeliveryError, FileSender, SmtpSender
from tests.mail import free_port, self_signed, smtp_server
from tests.unit.test_matching import join, studies, write_identities

FROM = "Brygga <noreply@brygga.example>"
NO_RECORDS = lambda _study: None  # noqa: E731 - self-reports only


def smtp(port: int, **kw: object) -> NotifySettings:
    return NotifySettings(
        sender="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
        smtp_from=FROM, public_url="https://brygga.example/", **kw,
    )  # fmt: skip


def deliver(db: dict, settings: NotifySettings) -> dict[str, int]:
    sender = Brygga(get_settings().model_copy(update={"notify": settings})).sender()
    return outbox.deliver(db["url"], sender, settings)


@pytest.fixture(autouse=True, scope="module")
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


@pytest.fixture
def db(tmp_path, monkeypatch, fresh_db):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    people = write_identities(tmp_path / "ids.parquet", 30)
    with db_session(fresh_db) as s:
        service.load_identities(s, tmp_path / "ids.parquet")
    return {"url": fresh_db, "people": people, "dir": tmp_path}


@pytest.fixture
def mail():
    with smtp_server() as (port, recorder):
        yield port, recorder


def rows(db: dict) -> list[OutboxMessage]:
    with db_session(db["url"]) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_digests_arrive_by_email_in_swedish_and_english(db, mail):
    port, recorder = mail
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 3)
        join(s, p[0]["personnummer"], contact_channel="email")
        join(s, p[1]["personnummer"], contact_channel="email", language="en")
        join(s, p[2]["personnummer"], contact_channel="sms")
        join(s, p[3]["personnummer"])  # in the app only
        matching.match_all(s, NO_RECORDS)
        invited = dict(
            s.execute(
                select(Invitation.resident_id, func.count()).group_by(Invitation.resident_id)
            ).all()
        )
    assert deliver(db, smtp(port)) == {"sent": 3, "in_app": 1, "retrying": 0, "failed": 0}
    by_to = {a.envelope_to[0]: a for a in recorder.arrived}
    assert set(by_to) == {p[0]["email"], p[1]["email"]}  # the SMS went to the file
    count = max(invited.values())
    assert count > 1 and set(invited.values()) == {count}
    sv, en = by_to[p[0]["email"]], by_to[p[1]["email"]]
    assert sv.message["Subject"] == "Nya studieinbjudningar i Brygga"
    assert sv.body.startswith(
        f"Du har {count} nya studieinbjudningar i Brygga. "
        "Logga in för att läsa och svara: https://brygga.example/portal\n"
    )
    assert "Mina sidor" in sv.body and "går inte att svara på" in sv.body
    assert en.message["Subject"] == "New study invitations in Brygga"
    assert en.body.startswith(f"You have {count} new study invitations in Brygga.")
    assert "My pages" in en.body and "https://brygga.example/portal" in en.body
    for arrived, person in ((sv, p[0]), (en, p[1])):
        m = arrived.message
        assert m["From"] == FROM and m["To"] == person["email"]
        assert m["Auto-Submitted"] == "auto-generated"
        assert m["Message-ID"].endswith("@brygga.example>") and m["Date"]
        assert m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8"
        # Nothing about the person, the studies or their health.
        text = (str(m["Subject"]) + arrived.body).lower()
        for leak in (person["given_name"], person["personnummer"], "studie 0", "study 1",
                     "diabet", "oncolog", "lunds"):  # fmt: skip
            assert leak.lower() not in text
    [sms] = [
        json.loads(x) for x in (db["dir"] / "outbox" / "messages.jsonl").read_text().splitlines()
    ]
    assert (sms["channel"], sms["to"]) == ("sms", p[2]["phone"])
    assert sms["text"] == (
        f"Du har {count} nya studieinbjudningar i Brygga. "
        "Logga in för att läsa och svara: https://brygga.example/portal"
    )
    assert all(m.sent_at and m.error is None and m.attempts == 1 for m in rows(db))
    audit = [json.loads(x) for x in (db["dir"] / "audit" / "audit.jsonl").read_text().splitlines()]
    reads = [x for x in audit if x["action"] == "identity.read" and x["actor"] == "system:outbox"]
    assert [x["details"] for x in reads] == [{"purpose": "notification", "count": 3}]
    assert deliver(db, smtp(port)) == dict.fromkeys(("sent", "in_app", "retrying", "failed"), 0)
    assert len(recorder.arrived) == 2


def test_the_study_team_is_told_when_a_volunteer_is_interested(db, mail):
    port, recorder = mail
    p = db["people"]
    with db_session(db["url"]) as s:
        (study,) = studies(s, 1)
        volunteers = [join(s, p[i]["personnummer"]) for i in range(4)]
        matching.match_all(s, NO_RECORDS)
        answers = dict(zip(volunteers, (True, True, False, True), strict=True))
        for resident, interested in list(answers.items())[:3]:
            [inv] = invitations.for_resident(s, resident)
            invitations.answer(s, resident, inv.id, interested)
        team = [m for m in s.scalars(select(OutboxMessage)) if m.template == outbox.TEAM_INTEREST]
        # Two answers while the first message waited: one message, counting both.
        assert [(m.staff_id, m.resident_id, m.channel, m.payload) for m in team] == [
            (study.created_by, None, "email", {"study": study.id, "count": 2})
        ]
    assert deliver(db, smtp(port))["sent"] == 1
    [arrived] = recorder.arrived
    assert arrived.envelope_to == ["f@example.com"]  # the researcher who registered it
    assert arrived.message["Subject"] == (
        "Intresseanmälan till er studie i Brygga / Interest in your study in Brygga"
    )
    link = f"https://brygga.example/studies/{study.id}/contacts"
    assert arrived.body.startswith(
        "2 volontärer har svarat att de är intresserade av att delta i studien ”Studie 0”.\n\n"
        f"Logga in i Brygga för att se kontaktuppgifterna och ta kontakt: {link}\n"
    )
    assert "2 volunteers have answered that they are interested in taking part in the study " \
           "“Study 0”." in arrived.body  # fmt: skip
    for person in p[:4]:  # no volunteer in the team's e-mail
        for leak in (person["given_name"], person["family_name"], person["email"],
                     person["phone"], person["personnummer"]):  # fmt: skip
            assert leak not in arrived.body
    # A later answer, after the message went: a new message, of one volunteer.
    with db_session(db["url"]) as s:
        [inv] = invitations.for_resident(s, volunteers[3])
        invitations.answer(s, volunteers[3], inv.id, True)
    assert deliver(db, smtp(port))["sent"] == 1
    assert recorder.arrived[1].body.startswith(
        "En volontär har svarat att hen är intresserad av att delta i studien ”Studie 0”."
    )
    assert "A volunteer has answered" in recorder.arrived[1].body


def test_a_claimed_team_message_is_not_counted_into(db):
    """An answer arriving while a sender holds the team's message queues a new one: the
    sender has already read the count."""
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 1)
        a, b = join(s, p[0]["personnummer"]), join(s, p[1]["personnummer"])
        matching.match_all(s, NO_RECORDS)
        [inv] = invitations.for_resident(s, a)
        invitations.answer(s, a, inv.id, True)
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.template == outbox.TEAM_INTEREST)
            .values(claimed_at=clock.now(), claimed_by="another")
        )
        [inv] = invitations.for_resident(s, b)
        invitations.answer(s, b, inv.id, True)
    team = [m.payload for m in rows(db) if m.template == outbox.TEAM_INTEREST]
    assert [x["count"] for x in team] == [1, 1]


def test_a_refused_message_is_retried_after_a_back_off_and_arrives_once(db, mail):
    port, recorder = mail
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 1)
        join(s, p[0]["personnummer"], contact_channel="email")
        matching.match_all(s, NO_RECORDS)
    recorder.refuse = ["451 4.3.0 Try again later"]
    start = clock.now()
    assert deliver(db, smtp(port)) == {"sent": 0, "in_app": 0, "retrying": 1, "failed": 0}
    assert recorder.arrived == []
    [m] = rows(db)
    assert (m.sent_at, m.attempts, m.error, m.claimed_by) == (None, 1, "SMTP 451", None)
    wait = m.next_attempt_at.replace(tzinfo=None) - start.replace(tzinfo=None)
    assert timedelta(seconds=59) < wait < timedelta(seconds=70)
    # Within the back-off nothing is tried.
    assert deliver(db, smtp(port))["retrying"] == 0 and recorder.arrived == []
    with clock.frozen(start + timedelta(seconds=90)):
        assert deliver(db, smtp(port)) == {"sent": 1, "in_app": 0, "retrying": 0, "failed": 0}
    assert deliver(db, smtp(port))["sent"] == 0
    assert [a.envelope_to for a in recorder.arrived] == [[p[0]["email"]]]
    [m] = rows(db)
    assert m.sent_at and m.error is None and m.attempts == 2 and m.claimed_at is None


def test_refusals_permanent_and_repeated_are_given_up(db, mail):
    port, recorder = mail
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 1)
        for i in range(3):
            join(s, p[i]["personnummer"], contact_channel="email")
        matching.match_all(s, NO_RECORDS)
    recorder.refuse = ["550 5.1.1 <person0@example.com>: no such user", "452 4.2.2 Mailbox full"]
    settings = smtp(port, max_attempts=2, retry_seconds=1)
    assert deliver(db, settings) == {"sent": 1, "in_app": 0, "retrying": 1, "failed": 1}
    first, second, third = rows(db)
    # The server's text may quote the address: only the code is kept.
    assert (first.error, first.attempts, first.sent_at is not None) == ("SMTP 550", 1, True)
    assert (second.error, second.sent_at, third.error) == ("SMTP 452", None, None)
    recorder.refuse = ["452 4.2.2 Mailbox full"]
    with clock.frozen(clock.now() + timedelta(seconds=5)):
        assert deliver(db, settings) == {"sent": 0, "in_app": 0, "retrying": 0, "failed": 1}
    second = rows(db)[1]
    assert (second.error, second.attempts, second.sent_at is not None) == ("SMTP 452", 2, True)
    assert len(recorder.arrived) == 1
    with db_session(db["url"]) as s:  # given up: not counted as notified
        notified = s.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(outbox.invitations_notified(Invitation))
        )
    assert notified == 1


def test_a_dead_server_stops_the_batch_and_loses_nothing(db):
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 1)
        for i in range(3):
            join(s, p[i]["personnummer"], contact_channel="email")
        matching.match_all(s, NO_RECORDS)
    port = free_port()  # nobody listens
    assert deliver(db, smtp(port)) == {"sent": 0, "in_app": 0, "retrying": 1, "failed": 0}
    states = [(m.attempts, m.error, m.sent_at, m.claimed_by) for m in rows(db)]
    assert states == [(1, "ConnectionRefusedError", None, None)] + [(0, None, None, None)] * 2
    with smtp_server() as (_port, recorder):
        settings = smtp(_port)
        with clock.frozen(clock.now() + timedelta(minutes=2)):
            assert deliver(db, settings)["sent"] == 3
    assert sorted(a.envelope_to[0] for a in recorder.arrived) == sorted(x["email"] for x in p[:3])


def test_a_stale_claim_is_taken_over_and_a_live_one_is_not(db, mail):
    port, recorder = mail
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 2)
        for i in range(2):
            join(s, p[i]["personnummer"], contact_channel="email")
        matching.match_all(s, NO_RECORDS)
        first, second = s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).all()
        at = clock.now()
        for mid, claimed in ((first, at - timedelta(minutes=11)), (second, at)):
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == mid)
                .values(claimed_at=claimed, claimed_by="elsewhere")
            )
    assert deliver(db, smtp(port))["sent"] == 1  # the lease is 10 minutes
    assert [a.envelope_to for a in recorder.arrived] == [[p[0]["email"]]]
    assert [m.sent_at is not None for m in rows(db)] == [True, False]


def test_two_senders_at_once_never_send_a_message_twice(db, mail):
    port, recorder = mail
    recorder.delay = 0.005  # the server takes a little while, so the senders overlap
    p = db["people"]
    with db_session(db["url"]) as s:
        ids = [join(s, x["personnummer"], contact_channel="email").id for x in p[:20]]
        at = clock.now()
        s.add_all(
            OutboxMessage(resident_id=rid, channel="email", template=outbox.DIGEST,
                          payload={"count": 100 + 3 * i + k}, created_at=at, attempts=0)
            for i, rid in enumerate(ids) for k in range(3)
        )  # fmt: skip
    settings = smtp(port, batch=4)
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def flusher() -> None:
        barrier.wait()
        results.append(outbox.deliver(db["url"], SmtpSender(settings), settings))

    threads = [threading.Thread(target=flusher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = [int(re.match(r"Du har (\d+) nya", a.body).group(1)) for a in recorder.arrived]
    assert sorted(counts) == list(range(100, 160))  # each of the 60 exactly once
    assert sum(r["sent"] for r in results) == 60 and all(r["sent"] for r in results)
    assert all(m.sent_at and m.attempts == 1 and m.claimed_by is None for m in rows(db))


def test_starttls_and_log_in(tmp_path):
    cert, key = self_signed(tmp_path)
    with smtp_server(tls=(cert, key), login=("brygga", "s3cret")) as (port, recorder):
        settings = NotifySettings(
            sender="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="starttls",
            smtp_ca_file=cert, smtp_username="brygga", smtp_password="s3cret", smtp_from=FROM,
        )  # fmt: skip
        sender = SmtpSender(settings)
        sender.send("email", "anna@example.com", "Ämne åäö", "Hej Åsa – välkommen\n")
        sender.send("email", "bo@example.com", "Två", "Andra\n")  # on the same connection
        sender.close()
        assert [a.envelope_to for a in recorder.arrived] == [
            ["anna@example.com"],
            ["bo@example.com"],
        ]
        assert recorder.arrived[0].message["Subject"] == "Ämne åäö"
        assert recorder.arrived[0].body == "Hej Åsa – välkommen\n"
        wrong = SmtpSender(settings.model_copy(update={"smtp_password": SecretStr("nope")}))
        with pytest.raises(DeliveryError) as refused:
            wrong.send("email", "anna@example.com", "x", "y")
        assert (refused.value.reason, refused.value.stop) == ("SMTP 535", True)
        # The relay's certificate is checked: without the CA the connection is refused.
        untrusted = SmtpSender(settings.model_copy(update={"smtp_ca_file": None}))
        with pytest.raises(DeliveryError) as bad_tls:
            untrusted.send("email", "anna@example.com", "x", "y")
        assert bad_tls.value.reason == "SSLCertVerificationError" and bad_tls.value.stop
    with smtp_server() as (port, _recorder):  # a relay without STARTTLS is not used in clear
        plain = SmtpSender(settings.model_copy(update={"smtp_port": port}))
        with pytest.raises(DeliveryError, match="SMTPNotSupportedError"):
            plain.send("email", "anna@example.com", "x", "y")


def test_settings_choose_the_sender(monkeypatch, tmp_path):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    sender = Brygga(get_settings()).sender()
    assert isinstance(sender, ChannelSender)
    assert isinstance(sender.by_channel["email"], FileSender)
    assert sender.by_channel["email"].path == tmp_path / "outbox" / "messages.jsonl"
    monkeypatch.setenv("BRYGGA_NOTIFY_SENDER", "smtp")
    with pytest.raises(SettingsError, match="BRYGGA_NOTIFY_"):
        get_settings()  # no From address
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_FROM", FROM)
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_HOST", "relay.region.example")
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_PASSWORD", "hemligt")
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_USERNAME", "brygga")
    monkeypatch.setenv("BRYGGA_NOTIFY_PUBLIC_URL", "https://brygga.region.example/")
    settings = get_settings()
    assert "hemligt" not in repr(settings)
    assert settings.notify.public_url == "https://brygga.region.example"
    sender = Brygga(settings).sender()
    assert isinstance(sender.by_channel["email"], SmtpSender)
    assert sender.by_channel["email"].port == 587  # STARTTLS by default
    assert isinstance(sender.by_channel["sms"], FileSender)  # no SMS gateway
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_SECURITY", "none")  # no password in clear
    with pytest.raises(SettingsError, match="smtp_username needs"):
        get_settings()
    monkeypatch.setenv("BRYGGA_NOTIFY_SMTP_SECURITY", "ssl")
    assert Brygga(get_settings()).sender().by_channel["email"].port == 465


def test_a_slow_relay_does_not_outlast_the_claim(db, mail):
    """Past half the lease the rest of the batch is given back and claimed afresh, so no
    other sender takes over a message this one still means to send."""
    port, recorder = mail
    recorder.delay = 0.3
    p = db["people"]
    with db_session(db["url"]) as s:
        studies(s, 1)
        for i in range(3):
            join(s, p[i]["personnummer"], contact_channel="email")
        matching.match_all(s, NO_RECORDS)
    claims: list[list[int]] = []
    claim = outbox._claim

    def counted(*args: object) -> list[int]:
        claims.append(claim(*args))
        return claims[-1]

    settings = smtp(port, lease_seconds=1)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(outbox, "_claim", counted)
        assert deliver(db, settings)["sent"] == 3
    assert len(recorder.arrived) == 3
    assert len([c for c in claims if c]) >= 2  # claimed again after half a second
    assert all(m.sent_at and m.attempts == 1 for m in rows(db))
