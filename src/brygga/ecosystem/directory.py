"""The directory: import profiles, review them (draft -> published), expire and renew, list.

A profile is shown publicly only while it is published and not expired: a reviewer publishes
it, it expires ``validity_days`` after the review unless someone renews it (a renewal is a
review too: the profile was looked at again). Importing a changed profile sends it back to
review, so nothing unreviewed is ever shown. Every review, renewal, withdrawal and import is
audited.
"""

from __future__ import annotations

__all__ = [
    "PACKAGED_SEED",
    "ImportResult",
    "assign",
    "entry_document",
    "get_entry",
    "import_profiles",
    "is_visible",
    "list_entries",
    "publish",
    "renew",
    "withdraw",
]

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.clock import now, today
from brygga.ecosystem.models import Entry
from brygga.ecosystem.profiles import DirectoryDocument, Profile
from brygga.errors import InputError, NotFoundError

PACKAGED_SEED = Path(__file__).parent / "seed.yaml"


def _columns(profile: Profile) -> dict[str, Any]:
    return {
        "type": profile.type,
        "name_sv": profile.name.sv,
        "name_en": profile.name.en,
        "description_sv": profile.description.sv,
        "description_en": profile.description.en,
        "services_sv": list(profile.services.sv),
        "services_en": list(profile.services.en),
        "support_kinds": list(profile.support_kinds),
        "access_sv": profile.access.sv if profile.access else "",
        "access_en": profile.access.en if profile.access else "",
        "price_model": profile.price_model,
        "languages": list(profile.languages),
        "trl_min": profile.trl.min if profile.trl else None,
        "trl_max": profile.trl.max if profile.trl else None,
        "therapy_areas": list(profile.therapy_areas),
        "technology_areas": list(profile.technology_areas),
        "sme_eligible": profile.sme_eligible,
        "region": profile.region,
        "location": profile.location,
        "cross_border": profile.cross_border,
        "contact_role_sv": profile.contact_role.sv,
        "contact_role_en": profile.contact_role.en,
        "contact_channel": profile.contact_channel,
        "response_days": profile.response_days,
        "source": profile.source.model_dump(exclude_none=True),
    }


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    published: int

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "published": self.published,
        }


def import_profiles(
    s: Session,
    document: DirectoryDocument,
    *,
    actor: str,
    reviewer: str | None = None,
    validity_days: int = 365,
    source: str = "",
) -> ImportResult:
    """Create or update the document's entries in the caller's transaction (all or none).

    New and changed entries are drafts waiting for review, unless ``reviewer`` publishes them
    at once (an administrator importing a reviewed file). Unchanged published entries stay
    as they are.
    """
    existing = {e.slug: e for e in s.scalars(select(Entry)).all()}
    created = updated = unchanged = published = 0
    stamp = now()
    for profile in document.entries:
        values = _columns(profile)
        entry = existing.get(profile.id)
        if entry is None:
            entry = Entry(slug=profile.id, status="draft", created_at=stamp, **values)
            s.add(entry)
            created += 1
        elif all(getattr(entry, k) == v for k, v in values.items()):
            unchanged += 1
            if reviewer is None or entry.status == "published":
                continue
        else:
            for key, value in values.items():
                setattr(entry, key, value)
            entry.status = "draft"  # a changed profile is reviewed again before it is shown
            entry.published_at = entry.expires_at = None
            updated += 1
        entry.updated_at = stamp
        if reviewer is not None:
            _publish(entry, reviewer, validity_days)
            published += 1
    s.flush()
    result = ImportResult(created, updated, unchanged, published)
    audit.append(
        "ecosystem.import",
        actor=actor,
        details={"source": source, **result.as_dict(), "reviewer": reviewer},
    )
    return result


def _publish(entry: Entry, reviewer: str, validity_days: int) -> None:
    entry.status = "published"
    entry.reviewed_by = reviewer
    entry.published_at = now()
    entry.expires_at = today() + timedelta(days=validity_days)
    entry.updated_at = now()


def get_entry(s: Session, key: int | str) -> Entry:
    """An entry by id (number) or slug."""
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        entry = s.get(Entry, int(key))
    else:
        entry = s.scalars(select(Entry).where(Entry.slug == key)).one_or_none()
    if entry is None:
        raise NotFoundError(f"no directory entry {key!r}")
    return entry


def publish(s: Session, key: int | str, *, reviewer: str, validity_days: int = 365) -> Entry:
    """A reviewer publishes a draft (or re-publishes a withdrawn entry)."""
    entry = get_entry(s, key)
    if entry.status == "published":
        raise InputError(f"entry {entry.slug!r} is already published (renew it instead)")
    _publish(entry, reviewer, validity_days)
    audit.append("ecosystem.publish", actor=reviewer, details={"entry": entry.id})
    return entry


def renew(s: Session, key: int | str, *, reviewer: str, validity_days: int = 365) -> Entry:
    """Keep a published entry (also one that expired) for another validity period."""
    entry = get_entry(s, key)
    if entry.status != "published":
        raise InputError(f"entry {entry.slug!r} is not published: publish it after review")
    _publish(entry, reviewer, validity_days)
    audit.append("ecosystem.renew", actor=reviewer, details={"entry": entry.id})
    return entry


def withdraw(s: Session, key: int | str, *, actor: str) -> Entry:
    entry = get_entry(s, key)
    entry.status = "withdrawn"
    entry.updated_at = now()
    audit.append("ecosystem.withdraw", actor=actor, details={"entry": entry.id})
    return entry


def assign(s: Session, key: int | str, organization_id: int | None, *, actor: str) -> Entry:
    """Name the organization whose staff answer the entry's inquiries (None: the
    coordinating office answers for it)."""
    entry = get_entry(s, key)
    entry.organization_id = organization_id
    entry.updated_at = now()
    audit.append(
        "ecosystem.assign",
        actor=actor,
        details={"entry": entry.id, "organization": organization_id},
    )
    return entry


def is_visible(entry: Entry, day: date | None = None) -> bool:
    """Shown publicly: published and not past its expiry day."""
    day = day or today()
    return entry.status == "published" and entry.expires_at is not None and entry.expires_at >= day


def list_entries(
    s: Session,
    *,
    type: str | None = None,
    area: str | None = None,
    region: str | None = None,
    include_hidden: bool = False,
    day: date | None = None,
) -> list[Entry]:
    """Entries by name, the visible ones unless ``include_hidden`` (reviewers see all).

    ``area`` matches a therapy area, a technology area or a support kind.
    """
    query = select(Entry).order_by(Entry.name_sv, Entry.id)
    if type:
        query = query.where(Entry.type == type)
    if region:
        query = query.where(Entry.region == region)
    if not include_hidden:
        query = query.where(Entry.status == "published", Entry.expires_at >= (day or today()))
    entries = list(s.scalars(query).all())
    if area:
        # JSON lists: filtered here (a directory is hundreds of rows), the same on every DB.
        entries = [
            e
            for e in entries
            if area in e.therapy_areas or area in e.technology_areas or area in e.support_kinds
        ]
    return entries


def entry_document(entry: Entry, *, lang: str = "sv", day: date | None = None) -> dict[str, Any]:
    """The entry as a JSON document (the CLI's ``--json`` and the web API)."""
    sv = lang != "en"
    return {
        "id": entry.slug,
        "number": entry.id,
        "name": entry.name_sv if sv else entry.name_en,
        "type": entry.type,
        "status": entry.status,
        "visible": is_visible(entry, day),
        "name_sv": entry.name_sv,
        "name_en": entry.name_en,
        "description": entry.description_sv if sv else entry.description_en,
        "services": entry.services_sv if sv else entry.services_en,
        "support_kinds": entry.support_kinds,
        "access": entry.access_sv if sv else entry.access_en,
        "price_model": entry.price_model,
        "languages": entry.languages,
        "trl": (
            {"min": entry.trl_min, "max": entry.trl_max} if entry.trl_min is not None else None
        ),
        "therapy_areas": entry.therapy_areas,
        "technology_areas": entry.technology_areas,
        "sme_eligible": entry.sme_eligible,
        "region": entry.region,
        "location": entry.location,
        "cross_border": entry.cross_border,
        "contact_role": entry.contact_role_sv if sv else entry.contact_role_en,
        "contact_channel": entry.contact_channel,
        "response_days": entry.response_days,
        "source": entry.source,
        "published_at": entry.published_at.isoformat() if entry.published_at else None,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }
