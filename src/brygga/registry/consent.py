"""Consents: three separate, revocable permissions, each given to a versioned text.

1. ``contact``: the region may contact me about studies I may fit;
2. ``match_records``: the region may match my health records against studies' criteria;
3. ``donate_data``: my data may be used in research projects the region has approved.

Every change appends a ``ConsentEvent`` (what, which text version, when) and an audit record
(security property 4). Withdrawing ``contact`` takes effect at once (security property 5): open
invitations are withdrawn, so the study team never sees them, and no new ones are made.
"""

from __future__ import annotations

__all__ = ["TEXTS", "ConsentText", "history", "now", "set_consent", "withdraw_open_invitations"]

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brygga import audit
from brygga.errors import InputError
from brygga.registry.models import CONSENT_KINDS, Consent, ConsentEvent, Resident


@dataclass(frozen=True)
class ConsentText:
    kind: str
    version: str
    sv: str
    en: str

    def text(self, lang: str) -> str:
        return self.sv if lang == "sv" else self.en


TEXTS: dict[str, ConsentText] = {
    t.kind: t
    for t in (
        ConsentText(
            "contact",
            "2026-1",
            "Jag vill bli kontaktad om kliniska studier som kan passa mig. Jag kan när som helst "
            "pausa eller återkalla samtycket.",
            "I want to be contacted about clinical studies that may suit me. I can pause or "
            "withdraw this consent at any time.",
        ),
        ConsentText(
            "match_records",
            "2026-1",
            "Regionen får jämföra uppgifter i min journal med studiers urvalskriterier. Forskarna "
            "ser inga uppgifter om mig förrän jag själv tackat ja till en studie.",
            "The region may compare data in my health records with studies' eligibility "
            "criteria. Researchers see nothing about me until I say yes to a study myself.",
        ),
        ConsentText(
            "donate_data",
            "2026-1",
            "Mina hälsouppgifter får användas i forskningsprojekt som regionen har godkänt, utan "
            "namn eller personnummer.",
            "My health data may be used in research projects the region has approved, without "
            "my name or personnummer.",
        ),
    )
}


def now() -> datetime:
    return datetime.now(UTC)


def _check_kind(kind: str) -> None:
    if kind not in CONSENT_KINDS:
        raise InputError(f"consent: unknown kind {kind!r}; one of {', '.join(CONSENT_KINDS)}")


def set_consent(
    session: Session, resident: Resident, kind: str, granted: bool, *, text_version: str
) -> bool:
    """Grant or withdraw one consent; returns False when nothing changed.

    ``text_version`` is the version the resident was shown; granting to an outdated text is
    refused so nobody consents to words they did not see.
    """
    _check_kind(kind)
    if resident.deleted_at is not None or resident.registered_at is None:
        raise InputError("consent: the account is not registered")
    current = TEXTS[kind].version
    if granted and text_version != current:
        raise InputError(
            f"consent.{kind}: the consent text has changed (version {current}); read it again"
        )
    state = next((c for c in resident.consents if c.kind == kind), None)
    if (
        state is not None
        and state.granted == granted
        and (not granted or state.text_version == text_version)
    ):
        return False
    if state is None and not granted:
        return False
    at = now()
    version = text_version if granted else (state.text_version if state else current)
    if state is None:
        state = Consent(kind=kind, granted=granted, text_version=version, changed_at=at)
        resident.consents.append(state)
    else:
        state.granted, state.text_version, state.changed_at = granted, version, at
    action = "grant" if granted else "withdraw"
    session.add(
        ConsentEvent(resident_id=resident.id, kind=kind, action=action, text_version=version, at=at)
    )
    if kind == "contact" and not granted:
        withdraw_open_invitations(session, resident)
    session.flush()
    audit.append(
        f"consent.{action}",
        actor=f"resident:{resident.ref}",
        details={"kind": kind, "text_version": version},
    )
    return True


def withdraw_open_invitations(session: Session, resident: Resident) -> int:
    """Withdraw every invitation the resident has not closed (sent, seen or interested)."""
    from brygga.studies.models import Invitation

    result = session.execute(
        update(Invitation)
        .where(
            Invitation.resident_id == resident.id,
            Invitation.status.in_(("sent", "seen", "interested")),
        )
        .values(status="withdrawn", answered_at=now())
    )
    return result.rowcount or 0


def history(session: Session, resident: Resident) -> list[ConsentEvent]:
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.resident_id == resident.id)
            .order_by(ConsentEvent.id)
        )
    )
