"""Residents in the operational database: identity, profile, consents and their history.

Identity lives only here (never in a region). A resident is referred to elsewhere (audit log,
outbox) by ``ref``, a random token that says nothing about the person; after deletion the row
keeps only ``ref`` and ``deleted_at``, so audit entries stay but no longer point at anyone.
"""

from __future__ import annotations

__all__ = [
    "CONSENT_KINDS",
    "CONTACT_CHANNELS",
    "SMOKING",
    "Consent",
    "ConsentEvent",
    "Profile",
    "Resident",
    "new_ref",
]

import secrets
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from brygga.db import Base

# prevention_invite: invitations to the region's prevention programmes (the self-check's opt-in).
CONSENT_KINDS = ("contact", "match_records", "donate_data", "prevention_invite")
CONTACT_CHANNELS = ("in_app", "email", "sms")
SMOKING = ("never", "former", "current")


def new_ref() -> str:
    return secrets.token_hex(8)


class Resident(Base):
    __tablename__ = "resident"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True, default=new_ref)
    # Identity: all nullable because deletion erases it.
    person_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    personnummer: Mapped[str | None] = mapped_column(String(13), unique=True)
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    street_address: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    post_town: Mapped[str | None] = mapped_column(String(100))
    municipality_code: Mapped[str | None] = mapped_column(String(4))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    # Lifecycle: loaded (identity known) -> registered (logged in and joined) -> deleted.
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Raised by the database's triggers (migration 0013) whenever this row, the profile, a
    # consent or an invitation of the resident changes: the resident's pages are kept
    # rendered under it. Never written by the application.
    page_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    profile: Mapped[Profile | None] = relationship(
        back_populates="resident", uselist=False, cascade="all, delete-orphan"
    )
    consents: Mapped[list[Consent]] = relationship(
        back_populates="resident", cascade="all, delete-orphan"
    )

    def consent(self, kind: str) -> Consent | None:
        return next((c for c in self.consents if c.kind == kind and c.granted), None)


class Profile(Base):
    __tablename__ = "resident_profile"

    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), primary_key=True)
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)  # catalogue keys
    medicines: Mapped[list[str]] = mapped_column(JSON, default=list)
    height_cm: Mapped[int | None] = mapped_column(Integer)
    weight_kg: Mapped[int | None] = mapped_column(Integer)
    smoking: Mapped[str | None] = mapped_column(String(10))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every area
    healthy_volunteer: Mapped[bool] = mapped_column(Boolean, default=False)
    max_travel_km: Mapped[int | None] = mapped_column(Integer)  # None: any distance
    contact_channel: Mapped[str] = mapped_column(String(10), default="in_app")
    language: Mapped[str] = mapped_column(String(2), default="sv")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    resident: Mapped[Resident] = relationship(back_populates="profile")


class Consent(Base):
    """The current state of one consent (the history is in ``ConsentEvent``)."""

    __tablename__ = "resident_consent"
    __table_args__ = (UniqueConstraint("resident_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)
    text_version: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    resident: Mapped[Resident] = relationship(back_populates="consents")


class ConsentEvent(Base):
    """Append-only history: every grant and withdrawal with the text version shown."""

    __tablename__ = "resident_consent_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))  # grant | withdraw
    text_version: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
