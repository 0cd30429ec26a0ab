"""Needs and routed inquiries: one inquiry fans out to the chosen providers, each answers
interested or declined (with a reason), the requester follows them on "Mina ärenden".

* **No provider asked twice for one need**: checked before sending (a clear error naming the
  providers already asked) and held by the unique (need, entry) constraint when two
  inquiries race.
* **Response clocks in Swedish working days** (``workdays``): each recipient is due the
  entry's promised number of working days after the day it was sent. An unanswered one past
  its day is overdue; ``escalate_overdue`` (run on a schedule: ``brygga ecosystem escalate``)
  flags it once and tells the coordinating office (the research office).
* **Notifications** are queued here in the same transaction (``Notification``: no address, no
  need text) and sent by ``deliver``, which asks the caller for the addresses (the platform
  looks up staff accounts; this package does not import ``studies``).
* **Audited**: every need, inquiry, answer and escalation writes an audit record.

Who may do what: a requester sees and sends only their own needs; a provider's staff (of the
entry's organization) answer its inquiries; the coordinating office answers for entries that
have no organization in Brygga yet and sees every escalation.
"""

from __future__ import annotations

__all__ = [
    "MAX_RECIPIENTS",
    "OFFICE_ROLE",
    "Actor",
    "Addresses",
    "Sender",
    "answer",
    "asked_entries",
    "bilingual_text",
    "case_view",
    "collate",
    "create_need",
    "deliver",
    "escalate_overdue",
    "figures",
    "inbox",
    "may_answer",
    "my_cases",
    "notification_text",
    "own_inquiry",
    "own_need",
    "provider_of",
    "queue",
    "send_inquiry",
    "set_outcome",
]

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from brygga import audit
from brygga.clock import SWEDEN, now, today
from brygga.ecosystem.directory import get_entry, is_visible
from brygga.ecosystem.match import NeedDocument
from brygga.ecosystem.models import (
    ANSWERS,
    OUTCOMES,
    Entry,
    Inquiry,
    InquiryRecipient,
    Need,
    Notification,
)
from brygga.ecosystem.workdays import add_working_days, working_days_between
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError
from brygga.messages import translate

OFFICE_ROLE = "research_office"  # the coordinating office: escalations, unowned entries
MAX_RECIPIENTS = 20  # one inquiry to at most this many providers (a fan-out, not a mailing)


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff account, its role and organization (from the web session)."""

    staff_id: int
    role: str
    organization_id: int | None = None

    @property
    def name(self) -> str:
        return f"staff:{self.staff_id}"


def create_need(s: Session, actor: Actor, need: NeedDocument) -> Need:
    row = Need(
        requester_id=actor.staff_id,
        title=need.title,
        description=need.description,
        details=need.model_dump(exclude={"title", "description"}, exclude_defaults=True),
        created_at=now(),
    )
    s.add(row)
    s.flush()
    audit.append("ecosystem.need", actor=actor.name, details={"need": row.id})
    return row


def asked_entries(s: Session, need_id: int) -> set[int]:
    """The entries already asked about a need (each is asked once)."""
    return set(
        s.scalars(select(InquiryRecipient.entry_id).where(InquiryRecipient.need_id == need_id))
    )


def own_need(s: Session, actor: Actor, need_id: int) -> Need:
    need = s.get(Need, need_id)
    if need is None or need.requester_id != actor.staff_id:
        raise NotFoundError(f"no need {need_id} of yours")
    return need


def own_inquiry(s: Session, actor: Actor, inquiry_id: int) -> Inquiry:
    inquiry = s.get(Inquiry, inquiry_id)
    if inquiry is None or inquiry.requester_id != actor.staff_id:
        raise NotFoundError(f"no inquiry {inquiry_id} of yours")
    return inquiry


def send_inquiry(
    s: Session,
    actor: Actor,
    need_id: int,
    entries: list[int | str],
    message: str,
    *,
    kind: str = "general",
    details: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Inquiry:
    """Fan one inquiry about ``need_id`` out to ``entries`` (visible directory entries).

    ``kind`` "site_feasibility" carries the feasibility form in ``details`` and the disclosed
    figures from the region's records in ``data`` (``ecosystem.feasibility``)."""
    need = own_need(s, actor, need_id)
    message = message.strip()
    if not message:
        raise FormError({"message": "is required"})
    if not entries:
        raise FormError({"entries": "choose at least one provider"})
    if len(entries) > MAX_RECIPIENTS:
        raise FormError({"entries": f"at most {MAX_RECIPIENTS} providers per inquiry"})
    chosen: dict[int, Entry] = {}
    for key in entries:
        entry = get_entry(s, key)
        if not is_visible(entry):
            raise NotFoundError(f"no directory entry {key!r}")
        chosen[entry.id] = entry
    asked = set(
        s.scalars(
            select(InquiryRecipient.entry_id).where(
                InquiryRecipient.need_id == need.id, InquiryRecipient.entry_id.in_(chosen)
            )
        )
    )
    if asked:
        names = ", ".join(sorted(chosen[i].slug for i in asked))
        raise InputError(f"already asked about this need: {names} (a provider is asked once)")
    stamp, day = now(), today()
    inquiry = Inquiry(
        need_id=need.id,
        requester_id=actor.staff_id,
        kind=kind,
        message=message,
        details=details or {},
        data=data or {},
        milestones={},
        created_at=stamp,
    )
    s.add(inquiry)
    s.flush()
    for entry in chosen.values():
        s.add(
            InquiryRecipient(
                inquiry_id=inquiry.id,
                need_id=need.id,
                entry_id=entry.id,
                sent_at=stamp,
                due_on=add_working_days(day, entry.response_days),
                details={},
            )
        )
        to_kind, to_id = provider_of(entry)
        queue(s, to_kind, to_id, "eco_mail_inquiry", {"inquiry": inquiry.id, "entry": entry.id})
    try:
        s.flush()
    except IntegrityError:
        # Another inquiry about the same need asked one of these providers in between (the
        # unique constraint); this transaction is rolled back by the caller.
        raise InputError("already asked about this need (a provider is asked once)") from None
    audit.append(
        "ecosystem.inquiry",
        actor=actor.name,
        details={"inquiry": inquiry.id, "need": need.id, "kind": kind, "entries": sorted(chosen)},
    )
    return inquiry


def provider_of(entry: Entry) -> tuple[str, int | None]:
    """Who answers for an entry: its organization's staff, else the coordinating office."""
    if entry.organization_id is not None:
        return "organization", entry.organization_id
    return "office", None


def may_answer(actor: Actor, entry: Entry) -> bool:
    if entry.organization_id is not None:
        return actor.organization_id == entry.organization_id
    return actor.role == OFFICE_ROLE


def answer(
    s: Session, actor: Actor, recipient_id: int, decision: str, reason: str = ""
) -> InquiryRecipient:
    """A provider answers: interested, or declined with a reason (Feasibility Sweden's rule:
    a decline without a reason teaches the sponsor nothing)."""
    recipient = s.get(InquiryRecipient, recipient_id)
    if recipient is None:
        raise NotFoundError(f"no inquiry {recipient_id}")
    if not may_answer(actor, recipient.entry):
        raise PermissionDenied("only the provider's staff answer its inquiries")
    if decision not in ANSWERS:
        raise FormError({"decision": "must be interested or declined"})
    reason = reason.strip()
    if decision == "declined" and not reason:
        raise FormError({"reason": "say why you decline"})
    if recipient.status != "sent":
        raise InputError("this inquiry has already been answered")
    recipient.status = decision
    recipient.reason = reason or None
    recipient.answered_at = now()
    recipient.answered_by = actor.staff_id
    queue(
        s,
        "staff",
        recipient.inquiry.requester_id,
        "eco_mail_answer",
        {"inquiry": recipient.inquiry_id, "entry": recipient.entry_id, "decision": decision},
    )
    audit.append(
        "ecosystem.answer",
        actor=actor.name,
        details={"recipient": recipient.id, "inquiry": recipient.inquiry_id, "decision": decision},
    )
    return recipient


def _recipient_view(r: InquiryRecipient, day: date, lang: str) -> dict[str, Any]:
    overdue = r.status == "sent" and r.due_on < day
    answered_on = r.answered_at.astimezone(SWEDEN).date() if r.answered_at else None
    sent_on = r.sent_at.astimezone(SWEDEN).date()
    return {
        "recipient": r.id,
        "entry": r.entry.slug,
        "name": r.entry.name_en if lang == "en" else r.entry.name_sv,
        "status": r.status,
        "status_text": translate(f"eco_status_{'overdue' if overdue else r.status}", lang),
        "reason": r.reason,
        "estimate": r.details or None,
        "sent_on": sent_on.isoformat(),
        "due_on": r.due_on.isoformat(),
        "answered_on": answered_on.isoformat() if answered_on else None,
        "working_days": working_days_between(sent_on, answered_on or day),
        "overdue": overdue,
        "escalated": r.escalated_at is not None,
    }


def collate(inquiry: Inquiry, lang: str = "sv") -> dict[str, Any]:
    """The sponsor's one answer: who is interested with what estimate, who declined and why,
    who has not answered, and the sum of the interested sites' estimates."""
    interested, declined, pending = [], [], []
    for r in inquiry.recipients:
        name = r.entry.name_en if lang == "en" else r.entry.name_sv
        if r.status == "interested":
            interested.append({"site": name, **(r.details or {})})
        elif r.status == "declined":
            declined.append({"site": name, "reason": r.reason})
        else:
            pending.append({"site": name, "due_on": r.due_on.isoformat()})
    wanted = int((inquiry.details or {}).get("participants_sweden") or 0)
    estimated = sum(int(x.get("participants", 0)) for x in interested)
    return {
        "asked": len(inquiry.recipients),
        "interested": interested,
        "declined": declined,
        "pending": pending,
        "estimated_participants": estimated,
        "participants_wanted": wanted,
        "enough": bool(wanted) and estimated >= wanted,
    }


def case_view(inquiry: Inquiry, day: date, lang: str = "sv") -> dict[str, Any]:
    """One inquiry as the requester sees it."""
    return {
        "inquiry": inquiry.id,
        "need": inquiry.need_id,
        "title": inquiry.need.title,
        "message": inquiry.message,
        "sent_on": inquiry.created_at.astimezone(SWEDEN).date().isoformat(),
        "kind": inquiry.kind,
        "form": inquiry.details,
        "data": inquiry.data,
        "milestones": inquiry.milestones,
        "recipients": [_recipient_view(r, day, lang) for r in inquiry.recipients],
        "collated": collate(inquiry, lang) if inquiry.kind == "site_feasibility" else None,
        "outcome": inquiry.outcome,
    }


def my_cases(s: Session, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
    """ "Mina ärenden": the requester's inquiries, newest first, each provider's state."""
    rows = s.scalars(
        select(Inquiry)
        .where(Inquiry.requester_id == actor.staff_id)
        .options(selectinload(Inquiry.recipients).selectinload(InquiryRecipient.entry))
        .order_by(Inquiry.id.desc())
    ).all()
    day = today()
    return [case_view(i, day, lang) for i in rows]


def inbox(s: Session, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
    """A provider's inquiries (its organization's entries; the office: unowned entries and
    every escalated one), unanswered first."""
    query = select(InquiryRecipient).join(Entry, InquiryRecipient.entry_id == Entry.id)
    if actor.role == OFFICE_ROLE:
        query = query.where(
            (Entry.organization_id.is_(None)) | (InquiryRecipient.escalated_at.is_not(None))
        )
    elif actor.organization_id is not None:
        query = query.where(Entry.organization_id == actor.organization_id)
    else:
        return []
    rows = s.scalars(query.order_by(InquiryRecipient.id.desc())).all()
    day = today()
    out = []
    for r in rows:
        view = _recipient_view(r, day, lang)
        view |= {
            "inquiry": r.inquiry_id,
            "title": r.inquiry.need.title,
            "description": r.inquiry.need.description,
            "message": r.inquiry.message,
            "kind": r.inquiry.kind,
            "form": r.inquiry.details,
            "data": r.inquiry.data,
            "may_answer": may_answer(actor, r.entry) and r.status == "sent",
        }
        out.append(view)
    out.sort(key=lambda v: (v["status"] != "sent", not v["overdue"]))
    return out


def set_outcome(s: Session, actor: Actor, inquiry_id: int, outcome: str | None) -> Inquiry:
    """The requester reports what came of an inquiry (a started study, a collaboration, or
    neither); the agenda's follow-up counts them (``figures``)."""
    inquiry = own_inquiry(s, actor, inquiry_id)
    if outcome is not None and outcome not in OUTCOMES:
        raise FormError({"outcome": "must be study_started, collaboration or none"})
    inquiry.outcome = outcome
    audit.append("ecosystem.outcome", actor=actor.name,
                 details={"inquiry": inquiry.id, "outcome": outcome})  # fmt: skip
    return inquiry


def escalate_overdue(s: Session, *, actor: str = "brygga-scheduler") -> int:
    """Flag every unanswered recipient past its due day, once, and tell the coordinating
    office in one message per run. Returns how many were escalated."""
    day = today()
    due = s.scalars(
        select(InquiryRecipient).where(
            InquiryRecipient.status == "sent",
            InquiryRecipient.due_on < day,
            InquiryRecipient.escalated_at.is_(None),
        )
    ).all()
    if not due:
        return 0
    stamp = now()
    for r in due:
        r.escalated_at = stamp
    ids = sorted(r.id for r in due)
    queue(s, "office", None, "eco_mail_escalation", {"count": len(ids), "recipients": ids})
    audit.append("ecosystem.escalate", actor=actor, details={"recipients": ids})
    return len(ids)


def figures(s: Session, *, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """The agenda follow-up's figures (issue 15, item 8) over inquiries sent in [start, end]:
    counts of inquiries, not of people. The caller passes the counts through the release
    gate before they leave."""
    rows = s.scalars(select(Inquiry).options(selectinload(Inquiry.recipients))).all()
    chosen = []
    for inquiry in rows:
        sent = inquiry.created_at.astimezone(SWEDEN).date()
        if (start is None or sent >= start) and (end is None or sent <= end):
            chosen.append((sent, inquiry))
    first_answer_days: list[int] = []
    within_five = positive = studies = collaborations = 0
    for sent, inquiry in chosen:
        answered = [r.answered_at for r in inquiry.recipients if r.answered_at is not None]
        if answered:
            days = working_days_between(sent, min(answered).astimezone(SWEDEN).date())
            first_answer_days.append(days)
            within_five += days <= 5
        positive += any(r.status == "interested" for r in inquiry.recipients)
        studies += inquiry.outcome == "study_started"
        collaborations += inquiry.outcome == "collaboration"
    n = len(chosen)
    return {
        "inquiries": n,
        "answered": len(first_answer_days),
        "median_working_days_to_first_answer": (
            statistics.median(first_answer_days) if first_answer_days else None
        ),
        "answered_within_five_working_days": within_five,
        "with_positive_answer": positive,
        "became_studies": studies,
        "became_collaborations": collaborations,
        "share_answered_within_five_working_days": round(within_five / n, 3) if n else None,
        "share_with_positive_answer": round(positive / n, 3) if n else None,
    }


# --- Notifications ------------------------------------------------------------------------


def queue(s: Session, to_kind: str, to_id: int | None, template: str, payload: dict) -> None:
    s.add(
        Notification(
            to_kind=to_kind,
            to_id=to_id,
            template=template,
            payload=payload,
            created_at=now(),
            attempts=0,
        )
    )


# Where each message sends its reader (after the service's public address).
_PAGES = {
    "eco_mail_inquiry": "/ekosystem-inkorg",
    "eco_mail_booking": "/ekosystem-inkorg",
    "eco_mail_escalation": "/ekosystem-inkorg",
    "eco_mail_answer": "/ekosystem-arenden",
    "eco_mail_booking_answer": "/ekosystem-arenden",
}


def notification_text(n: Notification, lang: str, url: str) -> str:
    """The e-mail text: what happened and where to read it (no need text, no names)."""
    params = {**(n.payload or {}), "url": url.rstrip("/") + _PAGES.get(n.template, "/ekosystem")}
    return translate(f"{n.template}_body", lang).format(**params)


def bilingual_text(n: Notification, url: str) -> str:
    """Swedish, then English: staff accounts have no language preference, and many
    providers and requesters (Danish partners, international sponsors) read English."""
    return f"{notification_text(n, 'sv', url)}\n\n---\n\n{notification_text(n, 'en', url)}"


class Sender(Protocol):
    def send(self, channel: str, address: str, subject: str, text: str) -> None: ...


Addresses = Callable[[str, int | None], list[str]]


def deliver(
    s: Session,
    sender: Sender,
    addresses: Addresses,
    *,
    url: str,
    limit: int = 1000,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> dict[str, int]:
    """Send queued notifications; ``addresses(kind, id)`` gives the e-mail addresses of a
    staff account, an organization's staff or the coordinating office. ``errors``: the
    sender's delivery failures (the message stays queued for the next run); anything else
    is a bug. A message with no address left (an account closed in between) is marked sent
    to nobody."""
    queued = s.scalars(
        select(Notification).where(Notification.sent_at.is_(None)).order_by(Notification.id)
        .limit(limit)
    ).all()  # fmt: skip
    sent = failed = 0
    for n in queued:
        n.attempts += 1
        subject = f"{translate('eco_mail_subject', 'sv')} / {translate('eco_mail_subject', 'en')}"
        try:
            for address in addresses(n.to_kind, n.to_id):
                sender.send("email", address, subject, bilingual_text(n, url))
        except errors:
            failed += 1
            continue
        n.sent_at = now()
        sent += 1
    return {"sent": sent, "failed": failed}
