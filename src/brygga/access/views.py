"""Applications, permits and outputs as documents (dicts) for the CLI's ``--json``, the JSON
API and the pages. Counts in them have passed the release gate (the feasibility count) or
describe files, never people."""

from __future__ import annotations

__all__ = ["application_doc", "output_doc", "permit_doc"]

from typing import Any

from sqlalchemy.orm import Session

from brygga.access.models import AccessApplication, AccessOutput, Permit
from brygga.access.review import application_deadline, permit_deadline, permit_state
from brygga.config import AccessSettings


def application_doc(application: AccessApplication, settings: AccessSettings) -> dict[str, Any]:
    return {
        "id": application.id,
        "status": application.status,
        "title": application.title,
        "organization": application.organization,
        "applicant": application.applicant_id,
        "purpose": application.purpose,
        "purpose_category": application.purpose_category,
        "legal_basis": application.legal_basis,
        "donation_based": application.donation_based,
        "ethics_number": application.ethics_number,
        "criteria_yaml": application.criteria_yaml,
        "variables": list(application.variables),
        "data_form": application.data_form,
        "data_form_reason": application.data_form_reason,
        "safeguards": application.safeguards,
        "period": {"start": application.period_start, "end": application.period_end},
        "people": list(application.people),
        "statistics": application.statistics,
        "output_format": application.output_format,
        "feasibility": application.feasibility,
        "created_at": application.created_at,
        "submitted_at": application.submitted_at,
        "deadline": application_deadline(application, settings),
        "decision": None
        if application.decided_at is None
        else {
            "approved": application.status == "approved",
            "at": application.decided_at,
            "by": application.decided_by,
            "checklist": application.checklist,
            "reasons": application.decision_reasons,
            "conditions": application.conditions,
        },
    }


def permit_doc(session: Session, permit: Permit) -> dict[str, Any]:
    return {
        "id": permit.id,
        "application": permit.application_id,
        "state": permit_state(permit),
        "holder": permit.holder_id,
        "organization": permit.organization,
        "title": permit.title,
        "purpose": permit.purpose,
        "variables": list(permit.variables),
        "data_form": permit.data_form,
        "output_format": permit.output_format,
        "donation_based": permit.donation_based,
        "period": {"start": permit.period_start, "end": permit.period_end},
        "people": list(permit.people),
        "conditions": permit.conditions,
        "extracts": permit.extracts,
        "budget": None
        if permit.budget_project is None
        else {"project": permit.budget_project, "epsilon": permit.budget_epsilon},
        "granted_at": permit.granted_at,
        "revoked": None
        if permit.revoked_at is None
        else {"at": permit.revoked_at, "by": permit.revoked_by, "reason": permit.revoked_reason},
        "deadline": permit_deadline(session, permit),
    }


def output_doc(output: AccessOutput) -> dict[str, Any]:
    return {
        "id": output.id,
        "permit": output.permit_id,
        "kind": output.kind,
        "status": output.status,
        "region": output.region,
        "format": output.format,
        "requested_by": output.requested_by,
        "created_at": output.created_at,
        "files": list(output.files) if output.status != "void" else [],
        "checks": output.checks,
        "summary": output.summary,
        "review": None
        if output.reviewed_at is None and output.status != "void"
        else {
            "by": output.reviewed_by,
            "at": output.reviewed_at,
            "reason": output.review_reason,
        },
        "released_at": output.released_at,
    }
