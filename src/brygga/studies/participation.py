"""What a resident's change means for recruitment, for every caller (web pages, JSON API).

The registry records the change (profile, consent, pause); then matching runs for this resident
alone, so a new consent or a changed profile can bring invitations at once. Withdrawal of
contact and deletion take effect at once (security property 5): they also withdraw the
resident's open invitations (studies' rows, which the registry below does not know), so every
caller goes through these functions, not the registry's halves (``consent.record_consent``,
``service.erase_registry_data``, ``service.export_registry_data``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from brygga.registry import consent, service
from brygga.registry.models import Profile, Resident
from brygga.studies import invitations, matching, outbox

__all__ = [
    "delete_account",
    "export_data",
    "pause",
    "rematch",
    "set_consent",
    "update_profile",
]


def rematch(session: Session, resident: Resident, eligibility: Any) -> None:
    """Matching for this resident only (``eligibility``: a study's people on the records)."""
    matching.match_all(session, eligibility, resident_ids=[resident.id])


def update_profile(
    session: Session, resident: Resident, data: dict[str, Any], eligibility: Any
) -> Profile:
    profile = service.update_profile(session, resident, data)
    rematch(session, resident, eligibility)
    return profile


def set_consent(
    session: Session,
    resident: Resident,
    kind: str,
    granted: bool,
    *,
    text_version: str,
    eligibility: Any,
) -> bool:
    """Grant or withdraw one consent; returns False when nothing changed in the registry.

    Withdrawing ``contact`` withdraws every open invitation, also when the consent was already
    withdrawn (idempotent, so no invitation can stay open behind a withdrawn consent).
    """
    changed = consent.record_consent(session, resident, kind, granted, text_version=text_version)
    if granted:
        rematch(session, resident, eligibility)
    elif kind == "contact":
        invitations.withdraw_open(session, resident)
        session.flush()
    return changed


def pause(session: Session, resident: Resident, paused: bool, eligibility: Any) -> None:
    service.pause(session, resident, paused)
    if not paused:
        rematch(session, resident, eligibility)


def delete_account(session: Session, resident: Resident) -> None:
    """Delete the account: open invitations withdrawn, queued messages dropped, then identity,
    profile, consents and log-ins erased; only the anonymous ``ref`` and the invitations'
    anonymous statuses remain (funnel counts stay right).
    """
    invitations.withdraw_open(session, resident)
    outbox.discard_queued(session, resident)
    service.erase_registry_data(session, resident)


def export_data(session: Session, resident: Resident) -> dict[str, Any]:
    """Everything stored about the resident, as one JSON-able document ("download my data")."""
    document = service.export_registry_data(session, resident)
    document["invitations"] = invitations.export(session, resident)
    return document
