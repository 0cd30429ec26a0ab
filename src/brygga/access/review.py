"""The data steward's review: checklist, decision with reasons and conditions, the permit,
deadlines, and the public register of permits.

A submitted application is decided by a data steward (role ``data_steward``): every item of
the checklist must be ticked to approve, reasons are always given, conditions may be. An
approval makes a ``Permit`` that binds a differential-privacy budget (statistics charged to
it, project ``permit-<id>``), extracts, or both, with a pseudonym key of its own.

Deadlines (``AccessSettings``): a decision within ``decision_days`` of submission (EHDS art.
68: three months), the data within ``delivery_days`` of the permit. ``deadlines`` says when
each is due and flags the overdue ones on the Swedish calendar day (``clock.today``).
"""

from __future__ import annotations

__all__ = [
    "CHECKLIST",
    "Decision",
    "application_deadline",
    "budget_project",
    "decide",
    "decision_from",
    "get_permit",
    "holds",
    "permit_deadline",
    "permit_state",
    "permits_for",
    "register",
    "revoke",
    "visible_permit",
]

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, clock
from brygga.access.applications import STEWARDS, Actor
from brygga.access.models import AccessApplication, AccessOutput, Permit
from brygga.config import AccessSettings
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FieldMessage, FormError
from brygga.privacy.budget import create_budget

# What the steward confirms before approving (Findata's and the EHDS's assessment points).
CHECKLIST = (
    "purpose_permitted",  # the purpose is one the law allows (EHDS art. 53)
    "legal_basis_valid",  # the legal basis covers this use
    "ethics_approved",  # the ethics approval covers this cohort and these data
    "data_minimised",  # only the variables and people the purpose needs
    "form_justified",  # pseudonymised only where anonymised data would not do
    "safeguards_adequate",  # secure processing, no linkage, no re-identification
    "period_proportionate",  # the period fits the purpose
    "people_named",  # everyone with access is named and bound by the conditions
)
MAX_TEXT = 4000


@dataclass(frozen=True)
class Decision:
    approve: bool
    reasons: str
    checklist: dict[str, bool] = field(default_factory=dict)
    conditions: str = ""
    epsilon: float | None = None  # a DP budget for statistics under the permit
    extracts: bool = True


def _too_long() -> str:
    return FieldMessage("is too long (at most {max_length} characters)", {"max_length": MAX_TEXT})


def decision_from(data: dict[str, Any]) -> Decision:
    """A decision from a form or a JSON body: ``decision`` approve|reject (or ``approve``
    true/false), ``reasons``, ``checklist`` (the confirmed items: a list, or a mapping to
    booleans), ``conditions``, ``epsilon`` (empty: none) and ``extracts``."""
    errors: dict[str, str] = {}
    choice = data.get("decision")
    if choice in ("approve", "reject"):
        approve = choice == "approve"
    elif isinstance(data.get("approve"), bool):
        approve = data["approve"]
    else:
        approve = False
        errors["decision"] = "choose approve or reject"
    checklist = data.get("checklist") or []
    if isinstance(checklist, str):
        checklist = [checklist]
    if isinstance(checklist, dict):
        checklist = [k for k, v in checklist.items() if v is True]
    if not isinstance(checklist, list) or not all(isinstance(c, str) for c in checklist):
        errors["checklist"] = "a list of confirmed checklist items"
        checklist = []
    epsilon: float | None = None
    raw = data.get("epsilon")
    if raw not in (None, ""):
        try:
            epsilon = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            errors["epsilon"] = "must be a number, e.g. 1.0"
    texts = {}
    for name in ("reasons", "conditions"):
        value = data.get(name) or ""
        if not isinstance(value, str):
            errors[name] = "must be text"
            value = ""
        texts[name] = value
    extracts = data.get("extracts", True)
    if extracts in ("on", "true", "1"):
        extracts = True
    elif extracts in ("", "off", "false", "0"):
        extracts = False
    if not isinstance(extracts, bool):
        errors["extracts"] = "must be yes or no"
    if errors:
        raise FormError(errors)
    return Decision(
        approve=approve,
        reasons=texts["reasons"],
        checklist=dict.fromkeys(checklist, True),
        conditions=texts["conditions"],
        epsilon=epsilon,
        extracts=bool(extracts),
    )


def budget_project(permit: Permit) -> str:
    return f"permit-{permit.id}"


def decide(
    session: Session,
    actor: Actor,
    application: AccessApplication,
    decision: Decision,
    settings: AccessSettings,
) -> Permit | None:
    """Approve (making the permit) or reject a submitted application."""
    if actor.role != "data_steward":
        raise PermissionDenied("only a data steward decides on data access applications")
    if application.status != "submitted":
        raise InputError(f"a {application.status} application cannot be decided")
    errors: dict[str, str] = {}
    reasons, conditions = decision.reasons.strip(), decision.conditions.strip()
    if not reasons:
        errors["reasons"] = "give the reasons for the decision"
    elif len(reasons) > MAX_TEXT:
        errors["reasons"] = _too_long()
    if len(conditions) > MAX_TEXT:
        errors["conditions"] = _too_long()
    unknown = set(decision.checklist) - set(CHECKLIST)
    if unknown:
        errors["checklist"] = FieldMessage(
            "unknown checklist item {item}", {"item": sorted(unknown)[0]}
        )
    if decision.approve:
        missing = [item for item in CHECKLIST if not decision.checklist.get(item)]
        if missing and "checklist" not in errors:
            errors["checklist"] = "every item of the checklist must be confirmed to approve"
        if decision.epsilon is not None and not 0 < decision.epsilon <= 10:
            errors["epsilon"] = "a privacy budget epsilon lies between 0 and 10"
        if decision.epsilon is None and not decision.extracts:
            errors["extracts"] = "a permit binds a privacy budget, extracts or both"
    if errors:
        raise FormError(errors)
    at = clock.now()
    application.status = "approved" if decision.approve else "rejected"
    application.decided_at, application.decided_by = at, actor.id
    application.checklist = {item: bool(decision.checklist.get(item)) for item in CHECKLIST}
    application.decision_reasons, application.conditions = reasons, conditions or None
    permit = None
    if decision.approve:
        permit = Permit(
            application_id=application.id,
            holder_id=application.applicant_id,
            organization=application.organization,
            title=application.title,
            purpose=application.purpose,
            criteria_yaml=application.criteria_yaml,
            variables=list(application.variables),
            data_form=application.data_form,
            output_format=application.output_format,
            donation_based=application.donation_based,
            period_start=application.period_start,
            period_end=application.period_end,
            people=list(application.people),
            conditions=conditions or None,
            extracts=decision.extracts,
            budget_epsilon=decision.epsilon,
            pseudonym_key=secrets.token_hex(32),
            granted_at=at,
            granted_by=actor.id,
            deliver_by=clock.today() + timedelta(days=settings.delivery_days),
        )
        session.add(permit)
        session.flush()
        if decision.epsilon is not None:
            permit.budget_project = budget_project(permit)
            create_budget(permit.budget_project, decision.epsilon, session=session)
    session.flush()
    audit.append(
        "access.application.approve" if decision.approve else "access.application.reject",
        actor=actor.ref,
        details={"application": application.id} | ({"permit": permit.id} if permit else {}),
    )
    return permit


def revoke(session: Session, actor: Actor, permit: Permit, reason: str) -> Permit:
    """Revoke a permit (its conditions were broken, its legal basis fell away): from now on
    nothing is made, released or downloaded under it."""
    if actor.role != "data_steward":
        raise PermissionDenied("only a data steward revokes a permit")
    if permit.revoked_at is not None:
        raise InputError(f"permit {permit.id} is already revoked")
    reason = reason.strip()
    if not reason:
        raise FormError({"revoke_reason": "give the reason for revoking the permit"})
    if len(reason) > MAX_TEXT:
        raise FormError({"revoke_reason": _too_long()})
    permit.revoked_at, permit.revoked_by, permit.revoked_reason = clock.now(), actor.id, reason
    session.flush()
    audit.append("access.permit.revoke", actor=actor.ref, details={"permit": permit.id})
    return permit


def application_deadline(application: AccessApplication, settings: AccessSettings) -> dict:
    """When the decision is due and whether it is overdue (today, Swedish time)."""
    if application.submitted_at is None:
        return {"due": None, "overdue": False}
    due = application.submitted_at.astimezone(clock.SWEDEN).date() + timedelta(
        days=settings.decision_days
    )
    decided = application.status in ("approved", "rejected")
    return {"due": due, "overdue": not decided and clock.today() > due, "decided": decided}


def get_permit(session: Session, permit_id: int) -> Permit:
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise NotFoundError(f"permit {permit_id} does not exist")
    return permit


def holds(actor: Actor, permit: Permit) -> bool:
    """The holder and the people the permit names (by e-mail)."""
    return permit.holder_id == actor.id or actor.email.lower() in permit.people


def visible_permit(session: Session, actor: Actor, permit_id: int) -> Permit:
    permit = get_permit(session, permit_id)
    if actor.role not in STEWARDS and not holds(actor, permit):
        raise NotFoundError(f"permit {permit_id} does not exist")
    return permit


def permits_for(session: Session, actor: Actor) -> list[Permit]:
    permits = session.scalars(select(Permit).order_by(Permit.id.desc())).all()
    return [p for p in permits if actor.role in STEWARDS or holds(actor, p)]


def permit_state(permit: Permit, today: date | None = None) -> str:
    """active, expired (its period has ended) or revoked."""
    today = today or clock.today()
    if permit.revoked_at is not None:
        return "revoked"
    if today > permit.period_end:
        return "expired"
    if today < permit.period_start:
        return "not_started"
    return "active"


def permit_deadline(session: Session, permit: Permit) -> dict[str, Any]:
    """When the data is due and whether it is overdue: an extract permit is delivered when
    one of its extracts has been released."""
    if not permit.extracts:
        return {"due": None, "overdue": False, "delivered": None}
    delivered = session.scalar(
        select(AccessOutput.released_at)
        .where(AccessOutput.permit_id == permit.id, AccessOutput.kind == "extract",
               AccessOutput.status == "released")
        .order_by(AccessOutput.released_at)
        .limit(1)
    )  # fmt: skip
    return {
        "due": permit.deliver_by,
        "delivered": delivered,
        "overdue": delivered is None and clock.today() > permit.deliver_by,
    }


def register(session: Session) -> list[dict[str, Any]]:
    """The public register of granted permits: purpose, holder, data, period (no people, no
    criteria details beyond what the permit is for)."""
    rows = []
    for permit in session.scalars(select(Permit).order_by(Permit.granted_at.desc())):
        application = session.get(AccessApplication, permit.application_id)
        rows.append(
            {
                "permit": permit.id,
                "title": permit.title,
                "purpose": permit.purpose,
                "purpose_category": application.purpose_category if application else None,
                "holder": permit.organization,
                "data": {
                    "variables": list(permit.variables),
                    "form": permit.data_form,
                    "statistics": permit.budget_project is not None,
                    "extracts": permit.extracts,
                    "donation_based": permit.donation_based,
                },
                "period": {"start": permit.period_start, "end": permit.period_end},
                "granted": permit.granted_at.astimezone(clock.SWEDEN).date(),
                "state": permit_state(permit),
            }
        )
    return rows
