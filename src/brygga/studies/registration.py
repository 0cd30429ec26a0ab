"""Study registration and review: draft -> submitted -> approved / rejected (with reason), or
returned for changes -> submitted again.

Researchers of the study's organization edit drafts and returned studies (and resubmit them);
the research office reviews (``studies.review``: checklist, documents, comments). Every
submission and decision is kept in the study's history (``StudyDecision``) and audited. Validation errors name the field (``FormError``); nothing here ever
raises for bad input with anything but a ``BryggaError``.
"""

from __future__ import annotations

__all__ = [
    "EDITABLE",
    "MAX_SUMMARY",
    "NCT",
    "SiteInput",
    "StudyInput",
    "can_view",
    "check_submit",
    "create_study",
    "criteria_from_yaml",
    "editable_study",
    "from_ctgov",
    "get_study",
    "is_team",
    "record_decision",
    "review",
    "studies_for",
    "study_criteria",
    "study_form_data",
    "submit",
    "update_criteria",
    "update_study",
    "visible_study",
]

import re
from datetime import date
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, clock, identifiers
from brygga.clock import now
from brygga.cohort.criteria import Criteria, criteria_from_text
from brygga.errors import BryggaError, InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError, validate
from brygga.registry import geography
from brygga.registry.areas import AREAS
from brygga.studies.models import StaffAccount, Study, StudyDecision, StudySite

MAX_SUMMARY = 2000
# The states in which the study's researchers may edit and (re)submit it.
EDITABLE = ("draft", "returned")
NCT = re.compile(r"NCT[0-9]{8}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[0-9][0-9 \-]{4,28}")


class SiteInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=200)
    municipality_code: str = Field(max_length=10)

    @field_validator("municipality_code")
    @classmethod
    def _known(cls, value: str) -> str:
        if not geography.known(value):
            raise ValueError("unknown municipality (SCB kommunkod of Skåne or Stockholm)")
        return value


class StudyInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title_sv: str = Field(min_length=3, max_length=300)
    title_en: str = Field(min_length=3, max_length=300)
    summary_sv: str = Field(min_length=10, max_length=MAX_SUMMARY)
    summary_en: str = Field(min_length=10, max_length=MAX_SUMMARY)
    sponsor: str = Field(min_length=2, max_length=200)
    phase: Literal["1", "1/2", "2", "2/3", "3", "4", "not_applicable"]
    area: str = Field(max_length=100)
    drug_trial: bool = False
    healthy_volunteers: bool = False
    ethics_number: str | None = Field(default=None, max_length=100)
    eu_ct_number: str | None = Field(default=None, max_length=100)
    nct_id: str | None = Field(default=None, max_length=100)
    target_enrolment: int = Field(ge=1, le=1_000_000)
    recruitment_start: date
    recruitment_end: date
    sites: list[SiteInput] = Field(min_length=1, max_length=50)
    criteria_yaml: str = Field(min_length=1, max_length=50_000)
    # What taking part means and whom to ask (the public study page); optional, in plain words.
    visits: int | None = Field(default=None, ge=0, le=1000)
    duration_weeks: int | None = Field(default=None, ge=0, le=5200)
    participation_sv: str | None = Field(default=None, max_length=MAX_SUMMARY)
    participation_en: str | None = Field(default=None, max_length=MAX_SUMMARY)
    compensation_sv: str | None = Field(default=None, max_length=500)
    compensation_en: str | None = Field(default=None, max_length=500)
    contact_role: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=30)

    @field_validator("area")
    @classmethod
    def _area(cls, value: str) -> str:
        if value not in AREAS:
            raise ValueError("unknown research area (choose from the list)")
        return value

    @field_validator(
        "ethics_number", "eu_ct_number", "nct_id", "visits", "duration_weeks",
        "participation_sv", "participation_en", "compensation_sv", "compensation_en",
        "contact_role", "contact_email", "contact_phone", mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ethics_number")
    @classmethod
    def _ethics(cls, value: str | None) -> str | None:
        return None if value is None else _plain(identifiers.ethics_number, value)

    @field_validator("eu_ct_number")
    @classmethod
    def _eu_ct(cls, value: str | None) -> str | None:
        return None if value is None else _plain(identifiers.eu_ct_number, value)

    @field_validator("nct_id")
    @classmethod
    def _nct(cls, value: str | None) -> str | None:
        if value is not None and not NCT.fullmatch(value):
            raise ValueError("write the ClinicalTrials.gov id as NCT followed by 8 digits")
        return value

    @field_validator("contact_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.fullmatch(value):
            raise ValueError("write an e-mail address such as studie@region.se")
        return value

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not PHONE.fullmatch(value):
            raise ValueError("write a phone number with digits, spaces, + and - only")
        return value

    @field_validator("criteria_yaml")
    @classmethod
    def _criteria(cls, value: str) -> str:
        criteria_from_yaml(value)
        return value

    @model_validator(mode="after")
    def _dates(self) -> StudyInput:
        if self.recruitment_end <= self.recruitment_start:
            raise FormError({"recruitment_end": "must be after the start of recruitment"})
        return self


def _plain(check: Any, value: str) -> str:
    """Run an identifiers validator, keeping only the part of its message after the field."""
    try:
        return check(value)
    except InputError as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None


ENTRY_NOT_FOR_STUDIES = (
    "a study recruits people as they are today: criteria with an entry event (each person's "
    "own index date) are for data requests and applications, not for studies"
)


def criteria_from_yaml(text: str) -> Criteria:
    """The study's criteria; a ValueError (for the form's criteria field) names the problem."""
    try:
        criteria = criteria_from_text(text, "criteria")
    except BryggaError as exc:
        raise ValueError(exc.message.removeprefix("criteria: ")) from None
    if criteria.entry is not None:
        # Matching and feasibility for recruitment ask who qualifies now; an entry event gives
        # each person a date in the past (a historical cohort: data requests, not recruitment).
        raise ValueError(ENTRY_NOT_FOR_STUDIES)
    return criteria


def _validate_study(data: dict[str, Any]) -> StudyInput:
    try:
        return validate(StudyInput, data)
    except FormError as exc:
        # Errors raised by the whole-model validator arrive as a nested FormError message.
        raise FormError({_field(k): v for k, v in exc.fields.items()}) from None


def _field(name: str) -> str:
    return "criteria" if name == "criteria_yaml" else name


def _apply(study: Study, values: StudyInput) -> None:
    for key, value in values.model_dump(exclude={"sites"}).items():
        setattr(study, key, value)
    study.sites = [StudySite(**s.model_dump()) for s in values.sites]


def create_study(session: Session, staff: StaffAccount, data: dict[str, Any]) -> Study:
    if staff.role != "researcher" or staff.organization_id is None:
        raise PermissionDenied("only researchers and sponsors of an organization register studies")
    values = _validate_study(data)
    study = Study(organization_id=staff.organization_id, created_by=staff.id, created_at=now())
    _apply(study, values)
    session.add(study)
    session.flush()
    audit.append("study.create", actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def get_study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFoundError(f"study {study_id} does not exist")
    return study


def can_view(staff: StaffAccount, study: Study) -> bool:
    if staff.role == "admin":
        return True
    if staff.role == "research_office":  # as in its list (studies_for): drafts stay private
        return study.status != "draft"
    return staff.organization_id == study.organization_id


def is_team(staff: StaffAccount, study: Study) -> bool:
    """The study team: researchers and care providers of the study's organization."""
    return (
        staff.role in ("researcher", "care_provider")
        and staff.organization_id == study.organization_id
    )


def visible_study(session: Session, staff: StaffAccount, study_id: int) -> Study:
    study = get_study(session, study_id)
    if not can_view(staff, study):
        raise NotFoundError(f"study {study_id} does not exist")  # do not reveal it exists
    return study


def editable_study(session: Session, staff: StaffAccount, study_id: int) -> Study:
    """A study its researcher may edit now (draft or returned), or the error saying why not."""
    study = visible_study(session, staff, study_id)
    if not (is_team(staff, study) and staff.role == "researcher"):
        raise PermissionDenied("only the study's researchers edit it")
    if study.status not in EDITABLE:
        raise InputError(f"a {study.status} study cannot be edited")
    return study


def update_criteria(session: Session, staff: StaffAccount, study: Study, text: str) -> Study:
    """Replace the study's criteria (from the builder); the same rules as ``update_study``."""
    if not (is_team(staff, study) and staff.role == "researcher"):
        raise PermissionDenied("only the study's researchers edit it")
    if study.status not in EDITABLE:
        raise InputError(f"a {study.status} study cannot be edited")
    criteria_from_yaml(text)  # raises ValueError naming the problem
    study.criteria_yaml = text
    session.flush()
    audit.append("study.criteria", actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def update_study(
    session: Session, staff: StaffAccount, study: Study, data: dict[str, Any]
) -> Study:
    if not (is_team(staff, study) and staff.role == "researcher"):
        raise PermissionDenied("only the study's researchers edit it")
    if study.status not in EDITABLE:
        raise InputError(f"a {study.status} study cannot be edited")
    _apply(study, _validate_study(data))  # a returned study stays returned until resubmitted
    session.flush()
    audit.append("study.update", actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def submit(session: Session, staff: StaffAccount, study: Study) -> Study:
    """Submit for review: the ethics number is needed now, and the EU CT number for drugs."""
    check_submit(staff, study)
    study.status, study.submitted_at = "submitted", now()
    study.review_reason = None
    record_decision(session, staff, study, "submit")
    audit.append("study.submit", actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def check_submit(staff: StaffAccount, study: Study) -> None:
    """Raise what ``submit`` would refuse, without writing (the web checks before its
    feasibility question, which runs before the submission is written)."""
    if not (is_team(staff, study) and staff.role == "researcher"):
        raise PermissionDenied("only the study's researchers submit it")
    if study.status not in EDITABLE:
        raise InputError(f"a {study.status} study cannot be submitted")
    missing = {}
    if study.ethics_number is None:
        missing["ethics_number"] = "is required to submit (the ethics approval number)"
    if study.drug_trial and study.eu_ct_number is None:
        missing["eu_ct_number"] = "is required to submit a drug trial"
    if missing:
        raise FormError(missing)


def review(
    session: Session, staff: StaffAccount, study: Study, *, approve: bool, reason: str = ""
) -> Study:
    if staff.role != "research_office":
        raise PermissionDenied("only the research office reviews studies")
    if study.status != "submitted":
        raise InputError(f"a {study.status} study cannot be reviewed")
    reason = reason.strip()
    if not approve and not reason:
        raise FormError({"reason": "give a reason for the rejection"})
    if len(reason) > 2000:
        raise FormError({"reason": "is too long (at most 2000 characters)"})
    study.status = "approved" if approve else "rejected"
    study.review_reason = reason or None
    study.reviewed_by, study.reviewed_at = staff.id, now()
    record_decision(session, staff, study, "approve" if approve else "reject", reason or None)
    action = "study.approve" if approve else "study.reject"
    audit.append(action, actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def record_decision(
    session: Session, staff: StaffAccount, study: Study, action: str, reason: str | None = None
) -> StudyDecision:
    """One entry of the study's history (who, when, what, why); the caller audits it."""
    entry = StudyDecision(
        study_id=study.id, actor_id=staff.id, at=now(), action=action, reason=reason
    )
    session.add(entry)
    session.flush()
    return entry


def studies_for(session: Session, staff: StaffAccount) -> list[Study]:
    query = select(Study).order_by(Study.id.desc())
    if staff.role == "research_office":
        query = query.where(Study.status != "draft")
    elif staff.role != "admin":
        query = query.where(Study.organization_id == staff.organization_id)
    return list(session.scalars(query))


def study_criteria(study: Study) -> Criteria:
    try:
        return criteria_from_yaml(study.criteria_yaml)
    except ValueError as exc:
        raise InputError(f"study {study.id}: criteria: {exc}") from None


def study_form_data(study: Study) -> dict[str, Any]:
    """The stored study as form data (for editing)."""
    data = {k: getattr(study, k) for k in StudyInput.model_fields if k != "sites"}
    data["sites"] = [
        {"name": s.name, "municipality_code": s.municipality_code} for s in study.sites
    ]
    return data


def from_ctgov(
    imported: Any, *, title_sv: str | None = None, summary_sv: str | None = None
) -> dict[str, Any]:
    """Form data prefilled from a ClinicalTrials.gov import (``studies/ctgov.Imported``).

    The Swedish texts are the English ones until a researcher translates them.
    """
    start = imported.recruitment_start or clock.today()
    end = (
        imported.recruitment_end
        if imported.recruitment_end and imported.recruitment_end > start
        else date(start.year + 2, start.month, 1)
    )
    return {
        "title_sv": title_sv or imported.title_en,
        "title_en": imported.title_en,
        "summary_sv": summary_sv or imported.lay_summary_en,
        "summary_en": imported.lay_summary_en,
        "sponsor": imported.sponsor,
        "phase": imported.phase
        if imported.phase in {"1", "1/2", "2", "2/3", "3", "4"}
        else "not_applicable",
        "area": imported.area or "oncology",
        "drug_trial": False,
        "healthy_volunteers": imported.healthy_volunteers,
        "nct_id": imported.nct_id,
        "target_enrolment": imported.target_enrolment or 1,
        "recruitment_start": start,
        "recruitment_end": end,
        "criteria_yaml": yaml.safe_dump(
            imported.criteria.model_dump(mode="json", exclude_defaults=True),
            sort_keys=False,
            allow_unicode=True,
        ),
    }
