"""Health-data access in the operational database: applications, permits and their outputs.

The lifecycle (EHDS: a data access application, a permit, data made available in a secure
form; OpenSAFELY: outputs leave only after checking):

* ``AccessApplication``: draft -> submitted -> approved | rejected (the data steward's
  checklist, reasons and conditions);
* ``Permit``: made when an application is approved; binds a differential-privacy budget
  (``privacy.budget``, project ``permit-<id>``) and/or extracts, with its own pseudonym key;
* ``AccessOutput``: an extract or a table of statistics made under a permit: checked
  (automatic checks run) -> released (a second person approved) | rejected | void (a donor
  withdrew before it left).

Staff are referred to by ``staff_account.id``; this package does not import ``studies``
(the platform resolves accounts into ``access.applications.Actor``).
"""

from __future__ import annotations

__all__ = [
    "APPLICATION_STATES",
    "OUTPUT_KINDS",
    "OUTPUT_STATES",
    "AccessApplication",
    "AccessOutput",
    "Permit",
]

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from brygga.db import Base

APPLICATION_STATES = ("draft", "submitted", "approved", "rejected")
OUTPUT_KINDS = ("extract", "statistics")
OUTPUT_STATES = ("checked", "released", "rejected", "void")


class AccessApplication(Base):
    __tablename__ = "access_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    organization: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    purpose_category: Mapped[str] = mapped_column(String(40))
    legal_basis: Mapped[str] = mapped_column(String(40))
    ethics_number: Mapped[str | None] = mapped_column(String(20))
    criteria_yaml: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    data_form: Mapped[str] = mapped_column(String(20))  # pseudonymised | anonymised
    data_form_reason: Mapped[str] = mapped_column(Text)
    safeguards: Mapped[str] = mapped_column(Text)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    people: Mapped[list[str]] = mapped_column(JSON, default=list)  # e-mails with access
    statistics: Mapped[bool] = mapped_column(Boolean, default=False)  # wants a DP budget too
    output_format: Mapped[str] = mapped_column(String(10), default="parquet")
    # The disclosed feasibility count the applicant saw (a gate document), and where.
    feasibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    checklist: Mapped[dict[str, bool] | None] = mapped_column(JSON)
    decision_reasons: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[str | None] = mapped_column(Text)

    @property
    def donation_based(self) -> bool:
        return self.legal_basis == "donation_consent"


class Permit(Base):
    __tablename__ = "access_permit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("access_application.id"), unique=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    organization: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    criteria_yaml: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    data_form: Mapped[str] = mapped_column(String(20))
    output_format: Mapped[str] = mapped_column(String(10))
    donation_based: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    people: Mapped[list[str]] = mapped_column(JSON, default=list)
    conditions: Mapped[str | None] = mapped_column(Text)
    extracts: Mapped[bool] = mapped_column(Boolean, default=True)
    # The DP budget of statistics under the permit (privacy.budget project), if any.
    budget_project: Mapped[str | None] = mapped_column(String(100))
    budget_epsilon: Mapped[float | None] = mapped_column(Float)
    # The permit's own pseudonym key (hex of 32 random bytes): the same person gets a
    # different id under every permit, so two recipients cannot link their extracts. It stays
    # in the operational database, beside the identities it protects, never in an output.
    pseudonym_key: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    deliver_by: Mapped[date] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class AccessOutput(Base):
    __tablename__ = "access_output"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("access_permit.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="checked", index=True)
    region: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(10))
    # Who made it and asked for its release (``staff:<id>``); the reviewer must be another.
    requested_by: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
