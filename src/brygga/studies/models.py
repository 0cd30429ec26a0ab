"""Organizations, staff, studies, sites, invitations and the notification outbox."""

from __future__ import annotations

__all__ = [
    "DECISIONS",
    "DOCUMENT_KINDS",
    "INVITATION_STATES",
    "ORGANIZATION_KINDS",
    "OUTCOMES",
    "PHASES",
    "ROLES",
    "STUDY_STATES",
    "Invitation",
    "Organization",
    "OutboxMessage",
    "StaffAccount",
    "Study",
    "StudyChecklist",
    "StudyComment",
    "StudyDecision",
    "StudyDocument",
    "StudySite",
]

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from brygga.db import Base

# data_steward: the region's health-data stewards (audit, privacy budgets, data access);
# strategy: the strategy group following up the life-science agendas.
ROLES = ("researcher", "research_office", "care_provider", "data_steward", "strategy", "admin")
ORGANIZATION_KINDS = ("company", "university", "care_unit", "region")
# returned: the research office sent it back for changes; editable and resubmittable like a
# draft. rejected is final.
STUDY_STATES = ("draft", "submitted", "returned", "approved", "rejected", "closed")
# The entries of a study's decision history (StudyDecision.action).
DECISIONS = ("submit", "return", "approve", "reject")
DOCUMENT_KINDS = ("protocol", "ethics_decision", "insurance", "other")
PHASES = ("1", "1/2", "2", "2/3", "3", "4", "not_applicable")
INVITATION_STATES = ("sent", "seen", "interested", "declined", "expired", "withdrawn")
OUTCOMES = ("screened", "enrolled", "not_eligible")


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    municipality_code: Mapped[str | None] = mapped_column(String(4))
    # A care unit's primary-care unit in the region's records (care_site_id): whose prevention
    # worklist its staff may read.
    care_site_id: Mapped[int | None] = mapped_column(Integer)


class StaffAccount(Base):
    __tablename__ = "staff_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: OIDC only
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    organization: Mapped[Organization | None] = relationship()


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    title_sv: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300))
    summary_sv: Mapped[str] = mapped_column(Text)
    summary_en: Mapped[str] = mapped_column(Text)
    sponsor: Mapped[str] = mapped_column(String(200))
    phase: Mapped[str] = mapped_column(String(20))
    area: Mapped[str] = mapped_column(String(30))
    drug_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    healthy_volunteers: Mapped[bool] = mapped_column(Boolean, default=False)
    ethics_number: Mapped[str | None] = mapped_column(String(20))
    eu_ct_number: Mapped[str | None] = mapped_column(String(20))
    nct_id: Mapped[str | None] = mapped_column(String(20))
    target_enrolment: Mapped[int] = mapped_column(Integer)
    recruitment_start: Mapped[date] = mapped_column(Date)
    recruitment_end: Mapped[date] = mapped_column(Date)
    criteria_yaml: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The disclosed feasibility at submission (already through the disclosure policy).
    feasibility: Mapped[dict | None] = mapped_column(JSON)
    # What taking part means, for the public study page (migration 0007): in plain words,
    # as the researchers write them; None where they have not said.
    visits: Mapped[int | None] = mapped_column(Integer)
    duration_weeks: Mapped[int | None] = mapped_column(Integer)
    participation_sv: Mapped[str | None] = mapped_column(Text)
    participation_en: Mapped[str | None] = mapped_column(Text)
    compensation_sv: Mapped[str | None] = mapped_column(String(500))
    compensation_en: Mapped[str | None] = mapped_column(String(500))
    # The study's public contact (a role, not a named person: the page is public).
    contact_role: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(30))

    organization: Mapped[Organization] = relationship()
    sites: Mapped[list[StudySite]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="StudySite.id"
    )


class StudySite(Base):
    __tablename__ = "study_site"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    municipality_code: Mapped[str] = mapped_column(String(4))

    study: Mapped[Study] = relationship(back_populates="sites")


class Invitation(Base):
    """One resident invited to one study: never two (the unique constraint makes matching
    idempotent even when two matching runs race)."""

    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("study_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: the unique (study_id, resident_id) index serves lookups by study, and
    # another B-tree would be updated for every row of a matching run's bulk insert (0003).
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    basis: Mapped[str] = mapped_column(String(20))  # records | self_report | own_initiative
    status: Mapped[str] = mapped_column(String(20), default="sent", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    study: Mapped[Study] = relationship()


class OutboxMessage(Base):
    """A notification waiting to be sent. Holds no personal data: the sender looks up the
    address when it sends, so a deleted resident's queued messages cannot go out.

    The recipient is a resident (digests of invitations) or a staff account (a study team told
    that a volunteer is interested). ``sent_at`` set means done: delivered when ``error`` is
    None, given up with the reason in ``error`` otherwise. A sender claims a message
    (``claimed_by``, ``claimed_at``) before talking to the mail server, so that of several
    workers only one sends it; a claim older than the lease is taken over (a worker died). A
    failed attempt sets ``error`` and ``next_attempt_at`` (back-off) and releases the claim.
    """

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitation.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    template: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Indexed: the senders look for the rows not yet done (sent_at IS NULL) among all history.
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(200))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(32))


class StudyChecklist(Base):
    """The research office's checklist for one study: what it verified, and when.

    The ethics approval number and EU CT number are the study's own (the researcher enters
    them); the office records that it checked them, the ethics decision date, the insurance
    and the protocol version it reviewed."""

    __tablename__ = "study_checklist"

    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), primary_key=True)
    ethics_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    ethics_decision_date: Mapped[date | None] = mapped_column(Date)
    eu_ct_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    insurance: Mapped[str | None] = mapped_column(String(200))
    protocol_version: Mapped[str | None] = mapped_column(String(50))
    updated_by: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudyDocument(Base):
    """A file uploaded for a study's review (protocol, ethics decision ...), kept in the
    database with its SHA-256, so what was reviewed can be shown to be what was uploaded."""

    __tablename__ = "study_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # read on download
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudyComment(Base):
    """One message in a study's thread between its researchers and the research office."""

    __tablename__ = "study_comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text)

    author: Mapped[StaffAccount] = relationship()


class StudyDecision(Base):
    """One step of a study's review history: who, when, what (``DECISIONS``) and why."""

    __tablename__ = "study_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)

    actor: Mapped[StaffAccount] = relationship()
