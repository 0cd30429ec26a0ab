"""Invitation lifecycle: sent -> seen -> interested / declined / expired (or withdrawn).

The resident sees the study's lay summary and answers in the portal. The study team sees a
volunteer's name and contact details only once the volunteer has answered "interested" to that
study (security property 3), and every such view writes an audit record. An "interested"
queues an e-mail to the team (``outbox.queue_team_interest``) saying so, without the name. The team then records
the outcome: screened, enrolled or not eligible.
"""

from __future__ import annotations

__all__ = [
    "OPEN",
    "PortalInvitation",
    "answer",
    "expire_due",
    "express_interest",
    "for_resident",
    "mark_seen",
    "portal_list",
    "record_outcome",
    "team_view",
]

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from brygga import audit, clock
from brygga.clock import now
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.registry.models import Resident
from brygga.studies import outbox
from brygga.studies.models import OUTCOMES, Invitation, StaffAccount, Study
from brygga.studies.registration import is_team

OPEN = ("sent", "seen")
# How long an interest a resident registered on their own stays open for the team (as an
# invitation made by matching: studies/matching.py INVITATION_DAYS).
INTEREST_DAYS = 30


def for_resident(session: Session, resident: Resident) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.resident_id == resident.id)
            .order_by(Invitation.id.desc())
            .options(selectinload(Invitation.study))  # the portal shows each one's study
        )
    )


@dataclass(frozen=True)
class PortalInvitation:
    """An invitation as the resident's portal lists it."""

    id: int
    study_id: int
    status: str
    title_sv: str
    title_en: str
    summary_sv: str
    summary_en: str


def portal_list(session: Session, resident: Resident) -> list[PortalInvitation]:
    """The resident's invitations, newest first, with the study columns the portal shows: one
    query for the columns (loading each invitation and its study as objects cost about 1 ms
    of a portal view, the page every resident opens most)."""
    rows = session.execute(
        select(
            Invitation.id,
            Invitation.study_id,
            Invitation.status,
            Study.title_sv,
            Study.title_en,
            Study.summary_sv,
            Study.summary_en,
        )
        .join(Study, Study.id == Invitation.study_id)
        .where(Invitation.resident_id == resident.id)
        .order_by(Invitation.id.desc())
    )
    return [PortalInvitation(*row) for row in rows]


def _own(session: Session, resident: Resident, invitation_id: int) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.resident_id != resident.id:
        raise NotFoundError("no such invitation")
    return invitation


def mark_seen(session: Session, resident: Resident, invitation_id: int) -> Invitation:
    invitation = _own(session, resident, invitation_id)
    if invitation.status == "sent":
        invitation.status, invitation.seen_at = "seen", now()
        session.flush()
    return invitation


def answer(
    session: Session, resident: Resident, invitation_id: int, interested: bool
) -> Invitation:
    invitation = _own(session, resident, invitation_id)
    if invitation.status not in OPEN:
        raise InputError(f"this invitation is {invitation.status} and can no longer be answered")
    if invitation.expires_at.replace(tzinfo=None) < now().replace(tzinfo=None):
        invitation.status = "expired"
        session.flush()
        raise InputError("this invitation has expired")
    at = now()
    invitation.seen_at = invitation.seen_at or at
    invitation.status = "interested" if interested else "declined"
    invitation.answered_at = at
    session.flush()
    if interested:  # the team hears of it in the same transaction (no volunteer named)
        outbox.queue_team_interest(session, invitation.study)
    audit.append(
        "invitation.answer",
        actor=f"resident:{resident.ref}",
        details={
            "invitation": invitation.id,
            "study": invitation.study_id,
            "answer": invitation.status,
        },
    )
    return invitation


def express_interest(session: Session, resident: Resident, study: Study) -> Invitation:
    """The resident says "interested" to a study from its public page.

    An invitation they already have is answered; without one, an invitation is made on their
    own initiative (basis ``own_initiative``) and answered at once, so the study team sees the
    volunteer exactly as after an answered invitation - and only then (security property 3).
    Registering interest is being contacted: the ``contact`` consent is required, and a paused
    or deleted account, or a study outside its recruitment period, is refused. A resident who
    declined or whose invitation expired may change their mind while the study recruits.
    """
    if resident.deleted_at is not None or resident.registered_at is None:
        raise InputError("join Brygga before registering interest in a study")
    if resident.consent("contact") is None:
        raise InputError("registering interest needs your consent to be contacted")
    if resident.paused_at is not None:
        raise InputError("your participation is paused; resume it to register interest")
    today = clock.today()
    if not (
        study.status == "approved" and study.recruitment_start <= today <= study.recruitment_end
    ):
        raise InputError("this study is not recruiting")
    invitation = session.scalar(
        select(Invitation).where(
            Invitation.study_id == study.id, Invitation.resident_id == resident.id
        )
    )
    if invitation is not None and invitation.status == "interested":
        return invitation
    at = now()
    if invitation is None:
        invitation = Invitation(
            study_id=study.id, resident_id=resident.id, basis="own_initiative", status="seen",
            created_at=at, seen_at=at, expires_at=at + timedelta(days=INTEREST_DAYS),
        )  # fmt: skip
        session.add(invitation)
        session.flush()
    elif invitation.status not in OPEN or _expired(invitation):
        # Declined, expired or withdrawn before: open again, for the resident's own answer.
        invitation.status, invitation.outcome = "seen", None
        invitation.expires_at = at + timedelta(days=INTEREST_DAYS)
        session.flush()
    # The one way to "interested": the same audit record and the team's notification.
    return answer(session, resident, invitation.id, True)


def _expired(invitation: Invitation) -> bool:
    return invitation.expires_at.replace(tzinfo=None) < now().replace(tzinfo=None)


def withdraw_open(session: Session, resident: Resident) -> int:
    """Withdraw every invitation the resident has not closed (sent, seen or interested), so the
    study team never sees it (withdrawal of contact and deletion: security property 5).
    """
    result = session.execute(
        update(Invitation)
        .where(
            Invitation.resident_id == resident.id,
            Invitation.status.in_(("sent", "seen", "interested")),
        )
        .values(status="withdrawn", answered_at=now())
    )
    return result.rowcount or 0


def export(session: Session, resident: Resident) -> list[dict[str, Any]]:
    """The resident's invitations as "download my data" lists them."""
    rows = session.scalars(
        select(Invitation).where(Invitation.resident_id == resident.id).order_by(Invitation.id)
    )
    return [
        {
            "study": i.study.title_sv,
            "status": i.status,
            "basis": i.basis,
            "created_at": i.created_at,
            "answered_at": i.answered_at,
            "outcome": i.outcome,
        }
        for i in rows
    ]


def expire_due(session: Session) -> int:
    """Close open invitations past their expiry (run on the matching schedule)."""
    result = session.execute(
        update(Invitation)
        .where(Invitation.status.in_(OPEN), Invitation.expires_at < now())
        .values(status="expired")
    )
    return result.rowcount or 0


def team_view(session: Session, staff: StaffAccount, study: Study) -> list[dict[str, Any]]:
    """The study team's list of volunteers who answered "interested", with contact details.

    Identity is read only for those invitations; one audit record names them (by invitation
    id, never by person).
    """
    if not is_team(staff, study):
        raise PermissionDenied("only the study team sees interested volunteers")
    rows = session.execute(
        select(Invitation, Resident)
        .join(Resident, Resident.id == Invitation.resident_id)
        .where(Invitation.study_id == study.id, Invitation.status == "interested")
        .order_by(Invitation.answered_at)
    ).all()
    out = [
        {
            "invitation": inv.id,
            "answered_at": inv.answered_at,
            "outcome": inv.outcome,
            "name": f"{res.given_name} {res.family_name}",
            "phone": res.phone,
            "email": res.email,
            "municipality_code": res.municipality_code,
            "basis": inv.basis,
        }
        for inv, res in rows
    ]
    if out:
        audit.append(
            "identity.read",
            actor=f"staff:{staff.id}",
            details={
                "purpose": "study contact",
                "study": study.id,
                "invitations": [r["invitation"] for r in out],
            },
        )
    return out


def record_outcome(
    session: Session, staff: StaffAccount, invitation_id: int, outcome: str
) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or not is_team(staff, invitation.study):
        raise NotFoundError("no such invitation")
    if outcome not in OUTCOMES:
        raise InputError(f"outcome: one of {', '.join(OUTCOMES)}")
    if invitation.status != "interested":
        raise InputError("only volunteers who answered interested can be screened or enrolled")
    invitation.outcome, invitation.outcome_at = outcome, now()
    session.flush()
    audit.append(
        "invitation.outcome",
        actor=f"staff:{staff.id}",
        details={"invitation": invitation.id, "outcome": outcome},
    )
    return invitation
