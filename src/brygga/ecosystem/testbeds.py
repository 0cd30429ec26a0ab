"""Testbeds' capacity as bookable slots, and booking requests with confirmation.

A provider (the entry's organization's staff, or the coordinating office for an entry without
one) publishes periods when its testbed or infrastructure can take a project. A requester asks
to book an open slot with a message; the provider confirms (at most one booking per slot: the
slot is then taken) or declines with a reason. Each step is audited and tells the other side by
e-mail (the inquiries' notification queue).
"""

from __future__ import annotations

__all__ = [
    "BOOKABLE_TYPES",
    "MAX_SLOT_DAYS",
    "add_slot",
    "answer_booking",
    "my_bookings",
    "open_slots",
    "provider_bookings",
    "request_booking",
]

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.clock import now, today
from brygga.ecosystem.directory import get_entry, is_visible
from brygga.ecosystem.inquiries import OFFICE_ROLE, Actor, may_answer, provider_of, queue
from brygga.ecosystem.models import Booking, Entry, Slot
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError

BOOKABLE_TYPES = ("testbed", "infrastructure")
MAX_SLOT_DAYS = 366


def add_slot(
    s: Session, actor: Actor, key: int | str, starts_on: date, ends_on: date, note: str = ""
) -> Slot:
    entry = get_entry(s, key)
    if not may_answer(actor, entry):
        raise PermissionDenied("only the provider's staff publish its slots")
    if entry.type not in BOOKABLE_TYPES:
        raise InputError("only testbeds and infrastructures have bookable slots")
    if ends_on < starts_on:
        raise FormError({"ends_on": "must not be before the start"})
    if starts_on < today():
        raise FormError({"starts_on": "must not be in the past"})
    if (ends_on - starts_on).days > MAX_SLOT_DAYS:
        raise FormError({"ends_on": f"a slot is at most {MAX_SLOT_DAYS} days"})
    slot = Slot(
        entry_id=entry.id, starts_on=starts_on, ends_on=ends_on, note=note.strip()[:300],
        created_at=now(),
    )  # fmt: skip
    s.add(slot)
    s.flush()
    audit.append("ecosystem.slot", actor=actor.name, details={"slot": slot.id, "entry": entry.id})
    return slot


def _taken(s: Session, slot_ids: list[int]) -> set[int]:
    if not slot_ids:
        return set()
    return set(
        s.scalars(
            select(Booking.slot_id).where(
                Booking.slot_id.in_(slot_ids), Booking.status == "confirmed"
            )
        )
    )


def open_slots(s: Session, key: int | str) -> list[dict[str, Any]]:
    """A visible entry's slots that have not ended, each with whether it is taken."""
    entry = get_entry(s, key)
    if not is_visible(entry):
        raise NotFoundError(f"no directory entry {key!r}")
    slots = s.scalars(
        select(Slot)
        .where(Slot.entry_id == entry.id, Slot.ends_on >= today())
        .order_by(Slot.starts_on, Slot.id)
    ).all()
    taken = _taken(s, [x.id for x in slots])
    return [
        {"slot": x.id, "starts_on": x.starts_on.isoformat(), "ends_on": x.ends_on.isoformat(),
         "note": x.note, "taken": x.id in taken}
        for x in slots
    ]  # fmt: skip


def request_booking(s: Session, actor: Actor, slot_id: int, message: str) -> Booking:
    slot = s.get(Slot, slot_id)
    if slot is None or not is_visible(slot.entry) or slot.ends_on < today():
        raise NotFoundError(f"no open slot {slot_id}")
    if not message.strip():
        raise FormError({"message": "is required"})
    if _taken(s, [slot.id]):
        raise InputError("this slot is already booked")
    mine = s.scalar(
        select(Booking).where(Booking.slot_id == slot.id, Booking.requester_id == actor.staff_id)
    )
    if mine is not None:
        raise InputError("you have already asked to book this slot")
    booking = Booking(
        slot_id=slot.id, requester_id=actor.staff_id, message=message.strip()[:4000],
        status="requested", created_at=now(),
    )  # fmt: skip
    s.add(booking)
    s.flush()
    to_kind, to_id = provider_of(slot.entry)
    queue(s, to_kind, to_id, "eco_mail_booking", {"booking": booking.id, "entry": slot.entry_id})
    audit.append(
        "ecosystem.booking", actor=actor.name, details={"booking": booking.id, "slot": slot.id}
    )
    return booking


def answer_booking(
    s: Session, actor: Actor, booking_id: int, decision: str, reason: str = ""
) -> Booking:
    """The provider confirms (the slot is then taken) or declines with a reason."""
    booking = s.get(Booking, booking_id)
    if booking is None:
        raise NotFoundError(f"no booking {booking_id}")
    if not may_answer(actor, booking.slot.entry):
        raise PermissionDenied("only the provider's staff answer its bookings")
    if decision not in ("confirmed", "declined"):
        raise FormError({"decision": "must be confirmed or declined"})
    if decision == "declined" and not reason.strip():
        raise FormError({"reason": "say why you decline"})
    if booking.status != "requested":
        raise InputError("this booking has already been answered")
    if decision == "confirmed" and _taken(s, [booking.slot_id]):
        raise InputError("this slot is already booked")
    booking.status = decision
    booking.reason = reason.strip() or None
    booking.answered_at = now()
    booking.answered_by = actor.staff_id
    queue(s, "staff", booking.requester_id, "eco_mail_booking_answer", {"booking": booking.id})
    audit.append("ecosystem.booking_answer", actor=actor.name,
                 details={"booking": booking.id, "decision": decision})  # fmt: skip
    return booking


def _view(b: Booking, lang: str) -> dict[str, Any]:
    entry = b.slot.entry
    return {
        "booking": b.id,
        "entry": entry.slug,
        "name": entry.name_en if lang == "en" else entry.name_sv,
        "starts_on": b.slot.starts_on.isoformat(),
        "ends_on": b.slot.ends_on.isoformat(),
        "message": b.message,
        "status": b.status,
        "reason": b.reason,
    }


def my_bookings(s: Session, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
    rows = s.scalars(
        select(Booking).where(Booking.requester_id == actor.staff_id).order_by(Booking.id.desc())
    ).all()
    return [_view(b, lang) for b in rows]


def provider_bookings(s: Session, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
    """Bookings of the entries the actor answers for, the requested ones first."""
    query = (
        select(Booking)
        .join(Slot, Booking.slot_id == Slot.id)
        .join(Entry, Slot.entry_id == Entry.id)
    )
    if actor.role == OFFICE_ROLE:
        query = query.where(Entry.organization_id.is_(None))
    elif actor.organization_id is not None:
        query = query.where(Entry.organization_id == actor.organization_id)
    else:
        return []
    rows = s.scalars(query.order_by(Booking.id.desc())).all()
    views = [_view(b, lang) | {"may_answer": b.status == "requested"} for b in rows]
    return sorted(views, key=lambda v: v["status"] != "requested")
