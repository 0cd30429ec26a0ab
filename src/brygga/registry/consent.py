"""Consents: four separate, revocable permissions, each given to a versioned text.

1. ``contact``: the region may contact me about studies I may fit;
2. ``match_records``: the region may match my health records against studies' criteria;
3. ``donate_data``: my data may be used in research projects the region has approved;
4. ``prevention_invite``: the region may invite me to its prevention programmes (health
   checks, lifestyle support) when my risk is raised.

Every change appends a ``ConsentEvent`` (what, which text version, when) and an audit record
(security property 4). Withdrawing ``contact`` takes effect at once (security property 5): open
invitations are withdrawn, so the study team never sees them, and no new ones are made. The
invitations are studies' rows, so that half is ``studies.participation.set_consent``, the one
function callers use; ``record_consent`` here records the registry's half only.
"""

from __future__ import annotations

__all__ = ["TEXTS", "ConsentText", "consenting_people", "history", "record_consent"]

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.clock import now
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
        ConsentText(
            "prevention_invite",
            "2026-1",
            "Regionen får bjuda in mig till förebyggande program, till exempel hälsosamtal eller "
            "stöd med levnadsvanor, om min risk för till exempel diabetes eller hjärt-kärlsjukdom "
            "är förhöjd. Jag kan när som helst återkalla samtycket.",
            "The region may invite me to prevention programmes, such as a health check or "
            "support with lifestyle habits, when my risk of diabetes or heart disease, for "
            "example, is raised. I can withdraw this consent at any time.",
        ),
    )
}


def _check_kind(kind: str) -> None:
    if kind not in CONSENT_KINDS:
        raise InputError(f"consent: unknown kind {kind!r}; one of {', '.join(CONSENT_KINDS)}")


def record_consent(
    session: Session, resident: Resident, kind: str, granted: bool, *, text_version: str
) -> bool:
    """Record a grant or withdrawal of one consent in the registry; returns False when nothing
    changed. The registry's half only: a withdrawal of ``contact`` leaves the resident's open
    invitations open, so callers use ``studies.participation.set_consent``, which closes them.

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
    session.flush()
    audit.append(
        f"consent.{action}",
        actor=f"resident:{resident.ref}",
        details={"kind": kind, "text_version": version},
    )
    return True


def consenting_people(session: Session, kind: str) -> set[int]:
    """The region's person ids of the registered residents whose ``kind`` consent stands now:
    a withdrawal, a pause or a deletion takes them out at once (security property 5). For
    the programme that acts on the consent (``prevention_invite``: the care unit's worklist)."""
    _check_kind(kind)
    query = (
        select(Resident.person_id)
        .join(Consent, Consent.resident_id == Resident.id)
        .where(
            Consent.kind == kind,
            Consent.granted.is_(True),
            Resident.person_id.is_not(None),
            Resident.registered_at.is_not(None),
            Resident.deleted_at.is_(None),
            Resident.paused_at.is_(None),
        )
    )
    return {int(p) for p in session.scalars(query)}


def history(session: Session, resident: Resident) -> list[ConsentEvent]:
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.resident_id == resident.id)
            .order_by(ConsentEvent.id)
        )
    )
