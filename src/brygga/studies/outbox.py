"""Notifications through an outbox: messages are queued in the database in the same
transaction as the invitation, and a sender delivers them later (at-least-once).

The message rows hold no personal data; the address is looked up when sending, so a resident
who deleted their account in between is never contacted. Texts say only that there is a new
invitation in the portal: no study or health details travel by e-mail or SMS.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import DateTime, func, insert, literal, select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.registry.consent import now
from brygga.registry.models import Profile, Resident
from brygga.studies.models import Invitation, OutboxMessage

TEXTS = {
    (
        "invitation",
        "sv",
    ): "Du har fått en ny inbjudan till en studie. Logga in i Brygga för att läsa mer.",
    ("invitation", "en"): "You have a new invitation to a study. Log in to Brygga to read more.",
}


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


def queue_invitations(
    session: Session,
    created_at: datetime,
    resident_ids: list[int] | None = None,
    *,
    after_id: int = 0,
) -> int:
    """Queue an "invitation" message for every invitation one matching run made (those
    created at ``created_at``, with ids above ``after_id``), on the resident's chosen channel.

    One INSERT ... SELECT in the matching transaction: a full run queues over a million
    messages, which would cost minutes as ORM objects."""
    build = func.json_build_object if session.get_bind().dialect.name == "postgresql" else None
    payload = (build or func.json_object)("invitation", Invitation.id, "study", Invitation.study_id)
    made = (
        select(Invitation.resident_id, Invitation.id, Profile.contact_channel,
               literal("invitation"), payload, literal(created_at, DateTime(timezone=True)),
               literal(0))
        .join(Profile, Profile.resident_id == Invitation.resident_id)
        .where(
            Invitation.id > after_id,
            Invitation.created_at == created_at,
            Invitation.status == "sent",
        )
    )  # fmt: skip
    if resident_ids is not None:
        made = made.where(Invitation.resident_id.in_(resident_ids))
    columns = ["resident_id", "invitation_id", "channel", "template", "payload", "created_at",
               "attempts"]  # fmt: skip
    result = session.execute(insert(OutboxMessage.__table__).from_select(columns, made))
    return result.rowcount or 0


def deliver(session: Session, sender: Sender, limit: int = 1000) -> dict[str, int]:
    """Send up to ``limit`` queued messages; in-app messages need no sending."""
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
            sender.send(message.channel, address, TEXTS[(message.template, lang)])
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
