"""The data access application (EHDS art. 67): record-level data for an approved purpose.

An application states the purpose (and its EHDS category), the legal basis, the ethics
approval number, the cohort in the criteria language and the variables wanted, whether the
data must be pseudonymised or can be anonymised and why, the safeguards, the period and the
people who will have access. A researcher drafts it, sees a disclosed feasibility count of the
cohort (the platform asks it through the question guard), and submits it; the data steward
decides (``review``).

Staff accounts belong to ``studies``; this package sees them as an ``Actor`` the platform or
the web builds (id, role, e-mail, organization), so ``access`` does not import ``studies``.
"""

from __future__ import annotations

__all__ = [
    "DATA_FORMS",
    "LEGAL_BASES",
    "OUTPUT_FORMATS",
    "PURPOSES",
    "STEWARDS",
    "Actor",
    "ApplicationInput",
    "application_criteria",
    "applications_for",
    "can_view",
    "check_submit",
    "create_application",
    "form_data",
    "get_application",
    "submit",
    "update_application",
    "visible_application",
]

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, identifiers
from brygga.access.models import AccessApplication
from brygga.access.variables import check_variables
from brygga.clock import now
from brygga.cohort.criteria import Criteria, criteria_from_text
from brygga.errors import BryggaError, InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError, validate

# EHDS art. 53: the purposes for which health data may be made available for secondary use.
PURPOSES = (
    "scientific_research",
    "public_health",
    "official_statistics",
    "policy_making",
    "education",
    "innovation",
    "ai_training",
    "personalised_care",
)
# research_public_interest: GDPR art. 6(1)(e) and 9(2)(j) with an ethics approval (lag
# 2003:460); donation_consent: the residents' own donation (only donors' data is used);
# care_quality: quality registers and follow-up of care (patientdatalagen).
LEGAL_BASES = ("research_public_interest", "donation_consent", "care_quality")
DATA_FORMS = ("pseudonymised", "anonymised")
OUTPUT_FORMATS = ("parquet", "csv")
STEWARDS = ("data_steward", "admin")  # who reads every submitted application
MAX_TEXT = 4000


@dataclass(frozen=True)
class Actor:
    """A staff member acting on applications: account id, role, e-mail and organization."""

    id: int
    role: str
    email: str
    organization_id: int | None = None
    organization: str | None = None

    @property
    def ref(self) -> str:
        return f"staff:{self.id}"


class ApplicationInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=3, max_length=300)
    purpose: str = Field(min_length=20, max_length=MAX_TEXT)
    purpose_category: Literal[PURPOSES]  # type: ignore[valid-type]
    legal_basis: Literal[LEGAL_BASES]  # type: ignore[valid-type]
    ethics_number: str | None = Field(default=None, max_length=100)
    criteria_yaml: str = Field(min_length=1, max_length=50_000)
    variables: list[str] = Field(max_length=20)
    data_form: Literal[DATA_FORMS]  # type: ignore[valid-type]
    data_form_reason: str = Field(min_length=10, max_length=MAX_TEXT)
    safeguards: str = Field(min_length=10, max_length=MAX_TEXT)
    period_start: date
    period_end: date
    people: list[str] = Field(min_length=1, max_length=50)
    statistics: bool = False
    output_format: Literal[OUTPUT_FORMATS] = "parquet"  # type: ignore[valid-type]

    @field_validator("ethics_number", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ethics_number")
    @classmethod
    def _ethics(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return identifiers.ethics_number(value)
        except InputError as exc:
            raise ValueError(exc.message.split(": ", 1)[-1]) from None

    @field_validator("variables", "people", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        """A form sends one text (one item per line or comma); the API a list."""
        if isinstance(value, str):
            return [v.strip() for v in value.replace(",", "\n").splitlines() if v.strip()]
        return value

    @field_validator("people")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if "@" not in email or len(email) > 200 or " " in email:
                raise ValueError("write one e-mail address per line")
        return [e.lower() for e in value]

    @field_validator("criteria_yaml")
    @classmethod
    def _criteria(cls, value: str) -> str:
        try:
            criteria_from_text(value, "criteria")
        except BryggaError as exc:
            raise ValueError(exc.message.removeprefix("criteria: ")) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ApplicationInput:
        problems = {}
        if (why := check_variables(self.variables, self.data_form)) is not None:
            problems["variables"] = why
        if self.period_end <= self.period_start:
            problems["period_end"] = "must be after the start of the period"
        elif (self.period_end - self.period_start).days > 10 * 366:
            problems["period_end"] = "a permit lasts at most ten years"
        if problems:
            raise FormError(problems)
        return self


def _validate(data: dict[str, Any]) -> ApplicationInput:
    # The whole-model validator raises FormError itself (pydantic lets it through): both the
    # field errors and the cross-field ones name their field.
    return validate(ApplicationInput, data)


def _apply(application: AccessApplication, values: ApplicationInput) -> None:
    for key, value in values.model_dump().items():
        setattr(application, key, value)


def create_application(session: Session, actor: Actor, data: dict[str, Any]) -> AccessApplication:
    """A draft application by a researcher of an organization."""
    if actor.role != "researcher" or actor.organization_id is None:
        raise PermissionDenied("only researchers of an organization apply for data access")
    values = _validate(data)
    application = AccessApplication(
        applicant_id=actor.id,
        organization=actor.organization or "",
        created_at=now(),
        status="draft",
    )
    _apply(application, values)
    session.add(application)
    session.flush()
    audit.append(
        "access.application.create", actor=actor.ref, details={"application": application.id}
    )
    return application


def get_application(session: Session, application_id: int) -> AccessApplication:
    application = session.get(AccessApplication, application_id)
    if application is None:
        raise NotFoundError(f"application {application_id} does not exist")
    return application


def can_view(actor: Actor, application: AccessApplication) -> bool:
    """The applicant sees their own; stewards every application that was submitted."""
    if actor.role in STEWARDS:
        return application.status != "draft" or actor.role == "admin"
    return actor.role == "researcher" and application.applicant_id == actor.id


def visible_application(session: Session, actor: Actor, application_id: int) -> AccessApplication:
    application = get_application(session, application_id)
    if not can_view(actor, application):
        raise NotFoundError(f"application {application_id} does not exist")  # not "forbidden"
    return application


def applications_for(session: Session, actor: Actor) -> list[AccessApplication]:
    query = select(AccessApplication).order_by(AccessApplication.id.desc())
    if actor.role == "data_steward":
        query = query.where(AccessApplication.status != "draft")
    elif actor.role != "admin":
        query = query.where(AccessApplication.applicant_id == actor.id)
    return list(session.scalars(query))


def update_application(
    session: Session, actor: Actor, application: AccessApplication, data: dict[str, Any]
) -> AccessApplication:
    if application.applicant_id != actor.id:
        raise PermissionDenied("only the applicant edits an application")
    if application.status not in ("draft", "rejected"):
        raise InputError(f"a {application.status} application cannot be edited")
    _apply(application, _validate(data))
    application.status, application.feasibility = "draft", None
    session.flush()
    audit.append(
        "access.application.update", actor=actor.ref, details={"application": application.id}
    )
    return application


def check_submit(actor: Actor, application: AccessApplication) -> None:
    """Raise what ``submit`` would refuse, without writing (the platform asks the
    feasibility question only for an application that can be submitted)."""
    if application.applicant_id != actor.id:
        raise PermissionDenied("only the applicant submits an application")
    if application.status not in ("draft", "rejected"):
        raise InputError(f"a {application.status} application cannot be submitted")
    if application.legal_basis == "research_public_interest" and not application.ethics_number:
        raise FormError(
            {"ethics_number": "is required for research in the public interest (the ethics "
                              "approval number)"}
        )  # fmt: skip


def submit(
    session: Session,
    actor: Actor,
    application: AccessApplication,
    feasibility: dict[str, Any] | None,
) -> AccessApplication:
    """Submit for the steward's decision, with the disclosed feasibility count the applicant
    saw (``feasibility``: a document that already passed the release gate)."""
    check_submit(actor, application)
    application.status, application.submitted_at = "submitted", now()
    application.feasibility = feasibility
    application.decided_at = application.decided_by = None
    application.checklist = application.decision_reasons = application.conditions = None
    session.flush()
    audit.append(
        "access.application.submit", actor=actor.ref, details={"application": application.id}
    )
    return application


def application_criteria(criteria_yaml: str, where: str = "criteria") -> Criteria:
    return criteria_from_text(criteria_yaml, where)


def form_data(application: AccessApplication) -> dict[str, Any]:
    """The stored application as form data (for editing)."""
    return {k: getattr(application, k) for k in ApplicationInput.model_fields}
