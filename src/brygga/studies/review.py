"""The research office's review of a study: a queue with waiting times, a checklist, uploaded
documents kept with their SHA-256, "return for changes", a comment thread between the study's
researchers and the office, and the decision history. Every change is audited (``audit``),
with ids only: never a comment's text or a document's content.

The study's own states and its approve/reject decision are in ``studies.registration``; this
module adds what the office works with around them.
"""

from __future__ import annotations

__all__ = [
    "MAX_COMMENT",
    "MAX_DOCUMENT",
    "MAX_DOCUMENTS",
    "ChecklistInput",
    "QueueRow",
    "add_comment",
    "add_document",
    "checklist",
    "comments",
    "document",
    "documents",
    "history",
    "queue",
    "return_for_changes",
    "save_checklist",
    "waiting_days",
]

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga import audit, clock
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FieldMessage, FormError, validate
from brygga.studies import registration
from brygga.studies.models import (
    DOCUMENT_KINDS,
    STUDY_STATES,
    StaffAccount,
    Study,
    StudyChecklist,
    StudyComment,
    StudyDecision,
    StudyDocument,
)

MAX_COMMENT = 4000  # characters
MAX_DOCUMENT = 2_500_000  # bytes: within the web's upload body limit (3 MB)
MAX_DOCUMENTS = 30  # per study
# A stored file name: letters, digits and a few marks; anything else becomes "_".
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def _office(staff: StaffAccount) -> None:
    if staff.role != "research_office":
        raise PermissionDenied("only the research office reviews studies")


def _researcher(staff: StaffAccount, study: Study) -> bool:
    return staff.role == "researcher" and registration.is_team(staff, study)


def _participant(staff: StaffAccount, study: Study) -> None:
    """The study's researchers and the research office take part in its review."""
    if not (staff.role == "research_office" or _researcher(staff, study)):
        raise PermissionDenied("only the study's researchers and the research office take part")


# --- The queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    study: Study
    waiting_days: int | None  # since (re)submission; None when not waiting for the office


def waiting_days(study: Study, today: date | None = None) -> int | None:
    """Whole days a submitted study has waited for the office (None: not waiting)."""
    if study.status != "submitted" or study.submitted_at is None:
        return None
    today = today or clock.today()
    return max(0, (today - _day(study.submitted_at)).days)


def _day(at: datetime) -> date:
    """The Swedish calendar day of a stored moment (SQLite gives back naive UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(clock.SWEDEN).date()


def queue(
    session: Session,
    staff: StaffAccount,
    *,
    status: str | None = "submitted",
    area: str | None = None,
    min_days: int | None = None,
) -> list[QueueRow]:
    """The office's studies (drafts never), oldest submission first; filtered by status,
    research area and at least ``min_days`` of waiting."""
    _office(staff)
    if status is not None and status not in STUDY_STATES:
        raise FormError({"status": "unknown status"})
    query = select(Study).where(Study.status != "draft")
    if status:
        query = query.where(Study.status == status)
    if area:
        query = query.where(Study.area == area)
    query = query.order_by(Study.submitted_at.is_(None), Study.submitted_at, Study.id)
    today = clock.today()
    rows = [QueueRow(s, waiting_days(s, today)) for s in session.scalars(query)]
    if min_days:
        rows = [r for r in rows if r.waiting_days is not None and r.waiting_days >= min_days]
    return rows


# --- The checklist -----------------------------------------------------------------------------


class ChecklistInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ethics_checked: bool = False
    ethics_decision_date: date | None = None
    eu_ct_checked: bool = False
    insurance: str | None = Field(default=None, max_length=200)
    protocol_version: str | None = Field(default=None, max_length=50)

    @field_validator("ethics_decision_date", "insurance", "protocol_version", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ethics_decision_date")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value is not None and value > clock.today():
            raise ValueError("cannot be in the future")
        return value


def checklist(session: Session, study: Study) -> StudyChecklist | None:
    return session.get(StudyChecklist, study.id)


def save_checklist(
    session: Session, staff: StaffAccount, study: Study, data: dict[str, Any]
) -> StudyChecklist:
    """The office's checklist for ``study``; ticking the ethics approval needs its number and
    decision date, ticking the EU CT number needs the number (drug trials)."""
    _office(staff)
    values = validate(ChecklistInput, data)
    problems = {}
    if values.ethics_checked and study.ethics_number is None:
        problems["ethics_checked"] = "the study has no ethics approval number to check"
    if values.ethics_checked and values.ethics_decision_date is None:
        problems["ethics_decision_date"] = "is required when the ethics approval is checked"
    if values.eu_ct_checked and study.eu_ct_number is None:
        problems["eu_ct_checked"] = "the study has no EU CT number to check"
    if problems:
        raise FormError(problems)
    row = session.get(StudyChecklist, study.id) or StudyChecklist(study_id=study.id)
    for key, value in values.model_dump().items():
        setattr(row, key, value)
    row.updated_by, row.updated_at = staff.id, clock.now()
    session.add(row)
    session.flush()
    audit.append("study.checklist", actor=f"staff:{staff.id}", details={"study": study.id})
    return row


# --- Documents ---------------------------------------------------------------------------------


def _safe_name(filename: str) -> str:
    name = _UNSAFE.sub("_", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return (name or "document")[:200]


def add_document(
    session: Session,
    staff: StaffAccount,
    study: Study,
    *,
    kind: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> StudyDocument:
    """Store an uploaded file with its size and SHA-256 (at most ``MAX_DOCUMENT`` bytes and
    ``MAX_DOCUMENTS`` per study)."""
    _participant(staff, study)
    if kind not in DOCUMENT_KINDS:
        raise FormError({"kind": "choose the kind of document"})
    if not content:
        raise FormError({"document": "choose a file (it is empty)"})
    if len(content) > MAX_DOCUMENT:
        raise FormError({"document": "the file is too large (at most 2.5 MB)"})
    count = session.scalar(
        select(func.count()).select_from(StudyDocument).where(StudyDocument.study_id == study.id)
    )
    if (count or 0) >= MAX_DOCUMENTS:
        raise FormError({"document": "a study has at most 30 documents (the limit)"})
    digest = hashlib.sha256(content).hexdigest()
    row = StudyDocument(
        study_id=study.id,
        kind=kind,
        filename=_safe_name(filename),
        content_type=(content_type or "application/octet-stream")[:100],
        size=len(content),
        sha256=digest,
        content=content,
        uploaded_by=staff.id,
        uploaded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.append(
        "study.document",
        actor=f"staff:{staff.id}",
        details={"study": study.id, "document": row.id, "sha256": digest},
    )
    return row


def documents(session: Session, study: Study) -> list[StudyDocument]:
    """The study's documents, without loading their content."""
    query = select(StudyDocument).where(StudyDocument.study_id == study.id)
    return list(session.scalars(query.order_by(StudyDocument.id)))


def document(
    session: Session, staff: StaffAccount, study: Study, document_id: int
) -> StudyDocument:
    """One document for download, by a participant of the review (audited)."""
    _participant(staff, study)
    row = session.get(StudyDocument, document_id)
    if row is None or row.study_id != study.id:
        raise NotFoundError(f"document {document_id} does not exist")
    audit.append(
        "study.document.read",
        actor=f"staff:{staff.id}",
        details={"study": study.id, "document": row.id},
    )
    return row


# --- Comments, returning, history ----------------------------------------------------------------


def _too_long(limit: int) -> FieldMessage:
    return FieldMessage("is too long (at most {max_length} characters)", {"max_length": limit})


def _comment_text(body: str, field: str) -> str:
    body = body.strip()
    if not body:
        raise FormError({field: "write a comment"})
    if len(body) > MAX_COMMENT:
        raise FormError({field: _too_long(MAX_COMMENT)})
    return body


def add_comment(session: Session, staff: StaffAccount, study: Study, body: str) -> StudyComment:
    """A message in the study's thread, from one of its researchers or the office."""
    _participant(staff, study)
    if study.status == "draft":
        raise InputError("a draft study has no review thread yet")
    row = StudyComment(
        study_id=study.id, author_id=staff.id, at=clock.now(), body=_comment_text(body, "comment")
    )
    session.add(row)
    session.flush()
    audit.append(
        "study.comment", actor=f"staff:{staff.id}", details={"study": study.id, "comment": row.id}
    )
    return row


def comments(session: Session, study: Study) -> list[StudyComment]:
    query = select(StudyComment).where(StudyComment.study_id == study.id)
    return list(session.scalars(query.order_by(StudyComment.at, StudyComment.id)))


def return_for_changes(session: Session, staff: StaffAccount, study: Study, comment: str) -> Study:
    """Send a submitted study back to its researchers with a comment (in the thread and the
    history); they can edit it and submit it again."""
    _office(staff)
    if study.status != "submitted":
        raise InputError(f"a {study.status} study cannot be returned")
    text = _comment_text(comment, "reason")
    study.status = "returned"
    study.review_reason = text
    study.reviewed_by, study.reviewed_at = staff.id, clock.now()
    session.add(StudyComment(study_id=study.id, author_id=staff.id, at=clock.now(), body=text))
    registration.record_decision(session, staff, study, "return", text)
    audit.append("study.return", actor=f"staff:{staff.id}", details={"study": study.id})
    return study


def history(session: Session, study: Study) -> list[StudyDecision]:
    query = select(StudyDecision).where(StudyDecision.study_id == study.id)
    return list(session.scalars(query.order_by(StudyDecision.at, StudyDecision.id)))
