"""Notifications through an outbox: messages are queued in the database in the same
transaction as the invitations, and a sender delivers them later (at-least-once).

A matching run queues one message per resident, a digest of that run's new invitations ("Du
har 3 nya studieinbjudningar"), however many studies invited them: a resident matched by five
studies gets one e-mail or SMS, not five, and a full run writes one row per resident instead
of one per invitation.

The message rows hold no personal data; the address is looked up when sending, so a resident
who deleted their account in between is never contacted. Texts say only how many new
invitations wait in the portal, with a link to it: no study or health details travel by e-mail
or SMS (the lay summaries are read after logging in).
"""

from __future__ import annotations

__all__ = [
    "DIGEST",
    "LANGUAGES",
    "PORTAL_URL",
    "FileSender",
    "Sender",
    "deliver",
    "digest_text",
    "invitations_notified",
    "message_text",
    "queue_digest",
]

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import DateTime, and_, delete, exists, func, insert, literal, null, or_, select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.clock import now
from brygga.registry.models import Profile, Resident
from brygga.studies.models import Invitation, OutboxMessage

DIGEST = "invitations"  # the template of a run's digest
# Where residents read and answer their invitations. The demo server's address: a deployment
# passes its public one to ``deliver`` (there is no setting for it yet).
PORTAL_URL = "http://127.0.0.1:8000/portal"
LANGUAGES = ("sv", "en")  # Swedish first: any other or missing language gets Swedish


def digest_text(count: int, lang: str, portal_url: str = PORTAL_URL) -> str:
    """The digest in the resident's language: only the number of new invitations and where
    to read them (no study, area or health detail: an e-mail or SMS may be read by others)."""
    if lang == "en":
        what = "a new study invitation" if count == 1 else f"{count} new study invitations"
        return f"You have {what} in Brygga. Log in to read and answer: {portal_url}"
    what = "en ny studieinbjudan" if count == 1 else f"{count} nya studieinbjudningar"
    return f"Du har {what} i Brygga. Logga in för att läsa och svara: {portal_url}"


def message_text(message: OutboxMessage, lang: str, portal_url: str = PORTAL_URL) -> str:
    lang = lang if lang in LANGUAGES else LANGUAGES[0]
    if message.template == DIGEST:
        return digest_text(int((message.payload or {}).get("count", 1)), lang, portal_url)
    # A per-invitation message queued before digests existed reads as a digest of one.
    return digest_text(1, lang, portal_url)


class Sender(Protocol):
    def send(self, channel: str, address: str, text: str) -> None: ...


class FileSender:
    """Demo sender: appends each message as one JSON line to a file (no real delivery)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, channel: str, address: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            line = {"channel": channel, "to": address, "text": text, "at": now().isoformat()}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


def queue_digest(
    session: Session,
    created_at: datetime,
    resident_ids: list[int] | None = None,
    *,
    after_id: int = 0,
) -> int:
    """Queue one digest per resident that one matching run invited (the invitations created
    at ``created_at``, with ids above ``after_id``), on the resident's chosen channel; its
    payload is the number of new invitations. Returns the messages queued.

    One INSERT ... SELECT ... GROUP BY in the matching transaction: a full run invites over a
    million times, which as ORM objects or per-invitation rows would cost minutes."""
    count = func.count(Invitation.id)
    build = func.json_build_object if session.get_bind().dialect.name == "postgresql" else None
    payload = (build or func.json_object)("count", count)
    made = (
        select(Invitation.resident_id, null(), Profile.contact_channel, literal(DIGEST), payload,
               literal(created_at, DateTime(timezone=True)), literal(0))
        .join(Profile, Profile.resident_id == Invitation.resident_id)
        .where(
            Invitation.id > after_id,
            Invitation.created_at == created_at,
            Invitation.status == "sent",
        )
        .group_by(Invitation.resident_id, Profile.contact_channel)
    )  # fmt: skip
    if resident_ids is not None:
        made = made.where(Invitation.resident_id.in_(resident_ids))
    columns = ["resident_id", "invitation_id", "channel", "template", "payload", "created_at",
               "attempts"]  # fmt: skip
    result = session.execute(insert(OutboxMessage.__table__).from_select(columns, made))
    return result.rowcount or 0


def discard_queued(session: Session, resident: Resident) -> int:
    """Drop the resident's undelivered messages (account deletion); returns how many."""
    result = session.execute(delete(OutboxMessage).where(OutboxMessage.resident_id == resident.id))
    return result.rowcount or 0


def invitations_notified(invitation: Any) -> Any:
    """SQL condition: ``invitation`` (the Invitation entity or an alias) was notified, i.e.
    the digest of the run that made it was delivered without error (for the funnel's
    "invited"). A digest and its invitations share the resident and the run's timestamp;
    messages queued per invitation before digests name it directly."""
    sent = and_(OutboxMessage.sent_at.is_not(None), OutboxMessage.error.is_(None))
    return exists().where(
        sent,
        or_(
            OutboxMessage.invitation_id == invitation.id,
            and_(
                OutboxMessage.template == DIGEST,
                OutboxMessage.resident_id == invitation.resident_id,
                OutboxMessage.created_at == invitation.created_at,
            ),
        ),
    )


def deliver(
    session: Session, sender: Sender, limit: int = 1000, *, portal_url: str = PORTAL_URL
) -> dict[str, int]:
    """Send up to ``limit`` queued messages; in-app messages need no sending. ``portal_url``:
    the link in the texts."""
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    counts = {"sent": 0, "in_app": 0, "failed": 0}
    read = 0
    for message in messages:
        resident = session.get(Resident, message.resident_id)
        message.attempts += 1
        if resident is None or resident.deleted_at is not None:
            message.error = "account deleted"
            message.sent_at = now()
            continue
        lang = resident.profile.language if resident.profile else "sv"
        address = {"email": resident.email, "sms": resident.phone}.get(message.channel)
        if message.channel == "in_app":
            message.sent_at = now()
            counts["in_app"] += 1
            continue
        if not address:
            message.error = f"no {message.channel} address"
            counts["failed"] += 1
            continue
        read += 1
        try:
            sender.send(message.channel, address, message_text(message, lang, portal_url))
        except Exception as exc:  # a failing gateway must not stop the queue
            message.error = type(exc).__name__
            counts["failed"] += 1
            continue
        message.sent_at, message.error = now(), None
        counts["sent"] += 1
    session.flush()
    if read:
        audit.append(
            "identity.read",
            actor="system:outbox",
            details={"purpose": "notification", "count": read},
        )
    return counts
