"""The ecosystem's tables: directory entries, needs, routed inquiries and their notifications.

Foreign keys to ``organization`` and ``staff_account`` name the tables, not the classes: the
ecosystem sits beside ``studies`` in the layers and must not import it (``db/models.py``
imports both, so the metadata knows every table).
"""

from __future__ import annotations

__all__ = [
    "ANSWERS",
    "BOOKING_STATES",
    "ENTRY_STATES",
    "ENTRY_TYPES",
    "INQUIRY_KINDS",
    "MILESTONES",
    "OUTCOMES",
    "PRICE_MODELS",
    "RECIPIENT_STATES",
    "Booking",
    "Entry",
    "Inquiry",
    "InquiryRecipient",
    "Need",
    "Notification",
    "Slot",
]

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from brygga.db import Base

# actor: an organisation (university, region, cluster, science park ...); infrastructure: a
# research infrastructure (MERIL's sense); testbed: a test and demonstration environment;
# support: an offering (incubation, tech transfer, regulatory guidance, funding, investors);
# programme: a competence or education programme.
ENTRY_TYPES = ("actor", "infrastructure", "testbed", "support", "programme")
# draft -> published (by a reviewer) -> withdrawn; "expired" is not a state but a date passed
# (``expires_at``), so renewing is one date change and nothing has to run at midnight.
ENTRY_STATES = ("draft", "published", "withdrawn")
PRICE_MODELS = ("free", "subsidised", "cost_based", "commercial", "on_request")
# site_feasibility: a sponsor's trial asked of clinical sites (the Early Feedback Form's
# questions in ``Inquiry.details``, each site's estimate in ``InquiryRecipient.details``).
INQUIRY_KINDS = ("general", "site_feasibility")
MILESTONES = ("approval", "site_opened", "first_participant", "target_reached")
RECIPIENT_STATES = ("sent", "interested", "declined")
BOOKING_STATES = ("requested", "confirmed", "declined", "cancelled")
# What came of an inquiry, as its requester reports it (the agenda's follow-up counts them).
OUTCOMES = ("study_started", "collaboration", "none")
ANSWERS = ("interested", "declined")


class Entry(Base):
    """One profile in the directory, Swedish and English."""

    __tablename__ = "eco_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    type: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    name_sv: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_sv: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    services_sv: Mapped[list] = mapped_column(JSON, default=list)
    services_en: Mapped[list] = mapped_column(JSON, default=list)
    support_kinds: Mapped[list] = mapped_column(JSON, default=list)
    access_sv: Mapped[str] = mapped_column(Text, default="")
    access_en: Mapped[str] = mapped_column(Text, default="")
    price_model: Mapped[str] = mapped_column(String(20))
    languages: Mapped[list] = mapped_column(JSON, default=list)
    trl_min: Mapped[int | None] = mapped_column(Integer)
    trl_max: Mapped[int | None] = mapped_column(Integer)
    therapy_areas: Mapped[list] = mapped_column(JSON, default=list)
    technology_areas: Mapped[list] = mapped_column(JSON, default=list)
    sme_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    region: Mapped[str] = mapped_column(String(20), index=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_role_sv: Mapped[str] = mapped_column(String(200))
    contact_role_en: Mapped[str] = mapped_column(String(200))
    contact_channel: Mapped[str] = mapped_column(String(300), default="")
    response_days: Mapped[int] = mapped_column(Integer, default=5)  # promised, working days
    source: Mapped[dict] = mapped_column(JSON, default=dict)  # document, section, quote
    # The organization whose staff answer inquiries (their inbox); None: the coordinating
    # office answers on the provider's behalf.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[date | None] = mapped_column(Date)


class Need(Base):
    """What a company, researcher or care unit is looking for, in free text."""

    __tablename__ = "eco_need"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # areas, types, trl, languages ...
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Inquiry(Base):
    """One inquiry about a need, fanned out to the chosen providers."""

    __tablename__ = "eco_inquiry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("eco_need.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="general")
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # the feasibility form
    # Figures from the region's records attached when sent (already disclosed).
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    milestones: Mapped[dict] = mapped_column(JSON, default=dict)  # name -> ISO date
    outcome: Mapped[str | None] = mapped_column(String(20))  # OUTCOMES, set by the requester
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    need: Mapped[Need] = relationship()
    recipients: Mapped[list[InquiryRecipient]] = relationship(
        back_populates="inquiry", order_by="InquiryRecipient.id"
    )


class InquiryRecipient(Base):
    """One provider asked about one need: never twice (the unique constraint holds it even
    when two inquiries about the same need race)."""

    __tablename__ = "eco_inquiry_recipient"
    __table_args__ = (UniqueConstraint("need_id", "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("eco_inquiry.id"), index=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("eco_need.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("eco_entry.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="sent", index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # a site's feasibility estimate
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_on: Mapped[date] = mapped_column(Date)  # sent day + the promised working days
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    inquiry: Mapped[Inquiry] = relationship(back_populates="recipients")
    entry: Mapped[Entry] = relationship()


class Notification(Base):
    """An e-mail waiting to be sent. Holds no address: the sender looks it up when sending
    (a staff account, an organization's staff, or the coordinating office)."""

    __tablename__ = "eco_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_kind: Mapped[str] = mapped_column(String(20))  # staff | organization | office
    to_id: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class Slot(Base):
    """A testbed's (or infrastructure's) capacity: one bookable period."""

    __tablename__ = "eco_slot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("eco_entry.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    entry: Mapped[Entry] = relationship()


class Booking(Base):
    """A request to book a slot; the provider confirms (at most one per slot) or declines."""

    __tablename__ = "eco_booking"
    __table_args__ = (UniqueConstraint("slot_id", "requester_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("eco_slot.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))

    slot: Mapped[Slot] = relationship()
