"""What a resident's change means for recruitment, for every caller (web pages, JSON API).

The registry records the change (profile, consent, pause); then matching runs for this resident
alone, so a new consent or a changed profile can bring invitations at once. Withdrawal and pause
need no matching: they take effect in the registry (security property 5).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from brygga.registry import consent, service
from brygga.registry.models import Profile, Resident
from brygga.studies import matching

__all__ = ["pause", "rematch", "set_consent", "update_profile"]


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
    changed = consent.set_consent(session, resident, kind, granted, text_version=text_version)
    if granted:
        rematch(session, resident, eligibility)
    return changed


def pause(session: Session, resident: Resident, paused: bool, eligibility: Any) -> None:
    service.pause(session, resident, paused)
    if not paused:
        rematch(session, resident, eligibility)
