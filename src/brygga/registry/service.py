"""Resident operations: load identities, register, profile, pause, delete, download my data.

Each function takes an open SQLAlchemy ``Session`` (the caller owns the transaction). Reads of
identifiable data and every consent change write an audit record (security property 4); the
records name the resident only by their random ``ref``.
"""

from __future__ import annotations

__all__ = [
    "BATCH",
    "IDENTITY_FIELDS",
    "ProfileInput",
    "by_personnummer",
    "by_ref",
    "demo_login_people",
    "demo_login_query",
    "erase_registry_data",
    "export_registry_data",
    "identity",
    "load_identities",
    "page_version",
    "pause",
    "portal_identity",
    "portal_identity_read",
    "portal_identity_read_async",
    "register",
    "register_refs",
    "update_profile",
]

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload

from brygga import audit, clock, identifiers, logins
from brygga.db.session import engine
from brygga.errors import BryggaError, InputError, NotFoundError
from brygga.forms import validate
from brygga.records.schema import IDENTITY
from brygga.registry import catalogue
from brygga.registry.areas import AREAS
from brygga.registry.models import ConsentEvent, Profile, Resident, new_ref

IDENTITY_FIELDS = tuple(c.name for c in IDENTITY.columns)
BATCH = 5_000


def load_identities(session: Session, path: str | Path, first: Sequence[int] = ()) -> int:
    """Fill the resident table from a region's identities file; returns rows added.

    Idempotent: people already loaded (by ``person_id``) are skipped. The people whose
    ``person_id`` is in ``first`` are added first, in that order (the demo's log-in list is
    the first residents by id: ``demo_login_people``).
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"identities file {path} does not exist")
    table = pq.read_table(path)
    missing = [c for c in IDENTITY_FIELDS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: not an identities file (missing columns {', '.join(missing)})")
    known = set(session.scalars(select(Resident.person_id).where(Resident.person_id.is_not(None))))
    rows = [
        r for r in table.select(list(IDENTITY_FIELDS)).to_pylist() if r["person_id"] not in known
    ]
    if first:
        rank = {pid: i for i, pid in enumerate(first)}
        rows.sort(key=lambda r: rank.get(r["person_id"], len(rank)))  # stable: file order after
    for start in range(0, len(rows), BATCH):
        batch = [r | {"ref": new_ref()} for r in rows[start : start + BATCH]]
        session.execute(insert(Resident), batch)
    audit.append("identity.load", actor="system", details={"file": path.name, "added": len(rows)})
    return len(rows)


def by_personnummer(session: Session, pnr: str) -> Resident:
    """The resident a log-in names (the identity provider gives the personnummer)."""
    normalized = identifiers.personnummer(pnr)
    resident = session.scalar(select(Resident).where(Resident.personnummer == normalized))
    if resident is None:
        raise NotFoundError("no resident with this personnummer in the region")
    return resident


def by_ref(session: Session, ref: str) -> Resident:
    # The profile comes in the same query: nearly every caller (the portal first) reads it.
    resident = session.scalar(
        select(Resident).where(Resident.ref == ref).options(joinedload(Resident.profile))
    )
    if resident is None or resident.deleted_at is not None:
        raise NotFoundError("no such resident account")
    return resident


def register(session: Session, resident: Resident) -> Resident:
    """Join the service: an empty profile, no consents yet (each is asked for separately)."""
    if resident.deleted_at is not None:
        raise InputError("this account was deleted")
    if resident.registered_at is None:
        resident.registered_at = clock.now()
        resident.profile = Profile(
            conditions=[], medicines=[], areas=[], contact_channel="in_app", language="sv"
        )
        session.flush()
        audit.append("resident.register", actor=f"resident:{resident.ref}", details={})
    return resident


def register_refs(session: Session, refs: Sequence[str]) -> list[BryggaError | None]:
    """``register`` for many residents at once, named by ``ref``: three statements in all.

    The web server's group commit (``db.group_commit``) joins waiting registrations this way.
    One outcome per ref, in order: ``None`` (registered now, or already) or the error that
    ``by_ref`` would raise for it. The rows read are locked (PostgreSQL; SQLite's write
    transaction already is), so two servers cannot register the same resident twice.
    """
    rows = session.execute(
        select(Resident.id, Resident.ref, Resident.registered_at, Resident.deleted_at)
        .where(Resident.ref.in_(set(refs)))
        .with_for_update()
    )
    found = {row.ref: row for row in rows}
    new = {r.ref: r.id for r in found.values() if r.registered_at is None and r.deleted_at is None}
    if new:
        at = clock.now()
        session.execute(update(Resident), [{"id": i, "registered_at": at} for i in new.values()])
        empty = {"conditions": [], "medicines": [], "areas": [], "healthy_volunteer": False,
                 "contact_channel": "in_app", "language": "sv"}  # fmt: skip
        session.execute(insert(Profile), [empty | {"resident_id": i} for i in new.values()])
        for ref in new:
            audit.append("resident.register", actor=f"resident:{ref}", details={})
    gone = NotFoundError("no such resident account")
    return [None if ref in found and found[ref].deleted_at is None else gone for ref in refs]


class ProfileInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    conditions: list[str] = Field(default_factory=list, max_length=40)
    medicines: list[str] = Field(default_factory=list, max_length=40)
    height_cm: int | None = Field(default=None, ge=50, le=250)
    weight_kg: int | None = Field(default=None, ge=20, le=300)
    smoking: Literal["never", "former", "current"] | None = None
    areas: list[str] = Field(default_factory=list, max_length=len(AREAS))
    healthy_volunteer: bool = False
    max_travel_km: int | None = Field(default=None, ge=0, le=1000)
    contact_channel: Literal["in_app", "email", "sms"] = "in_app"
    language: Literal["sv", "en"] = "sv"

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, value: list[str]) -> list[str]:
        return _known(value, catalogue.CONDITIONS, "condition")

    @field_validator("medicines")
    @classmethod
    def _medicines(cls, value: list[str]) -> list[str]:
        return _known(value, catalogue.MEDICINES, "medicine")

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[str]) -> list[str]:
        return _known(value, AREAS, "research area")


def _known(values: list[str], known: dict[str, Any], what: str) -> list[str]:
    for v in values:
        if v not in known:
            raise ValueError(f"unknown {what} (choose from the list)")
    return list(dict.fromkeys(values))


def update_profile(session: Session, resident: Resident, data: dict[str, Any]) -> Profile:
    """Validate and store the profile; ``FormError`` names each invalid field."""
    if resident.profile is None:
        raise InputError("register before filling in the profile")
    values = validate(ProfileInput, data)
    if values.contact_channel == "email" and not resident.email:
        from brygga.forms import FormError

        raise FormError({"contact_channel": "no e-mail address is known for you"})
    if values.contact_channel == "sms" and not resident.phone:
        from brygga.forms import FormError

        raise FormError({"contact_channel": "no mobile number is known for you"})
    for key, value in values.model_dump().items():
        setattr(resident.profile, key, value)
    resident.profile.updated_at = clock.now()
    session.flush()
    return resident.profile


def pause(session: Session, resident: Resident, paused: bool) -> None:
    """Pause: no invitations until resumed (open ones stay; the resident may still answer)."""
    if paused and resident.paused_at is None:
        resident.paused_at = clock.now()
    elif not paused:
        resident.paused_at = None
    session.flush()
    action = "resident.pause" if paused else "resident.resume"
    audit.append(action, actor=f"resident:{resident.ref}", details={})


def erase_registry_data(session: Session, resident: Resident) -> None:
    """Erase identity, profile, consents and log-ins; keep only the anonymous ``ref``.

    The registry's half of deleting an account: the resident's open invitations and queued
    messages are studies' rows, so callers use ``studies.participation.delete_account``.
    Consent history rows remain without anything that identifies the person (funnel counts
    stay right); audit entries name only the ``ref``.
    """
    for field in IDENTITY_FIELDS:
        setattr(resident, field, None)
    resident.profile = None
    resident.consents.clear()
    resident.paused_at = None
    resident.deleted_at = clock.now()
    logins.revoke_all(session, "resident", resident.ref)  # signed in elsewhere: out too
    session.flush()
    audit.append("resident.delete", actor=f"resident:{resident.ref}", details={})


def identity(resident: Resident) -> dict[str, Any]:
    return {field: getattr(resident, field) for field in IDENTITY_FIELDS if field != "person_id"}


_PAGE_VERSION = select(Resident.page_version).where(
    Resident.ref == bindparam("ref"), Resident.deleted_at.is_(None)
)


def page_version(url: str, ref: str) -> int | None:
    """The version of everything the resident's own pages show (raised by the database's
    triggers on any change, migration 0013); None for no such resident. One primary-key
    read on a plain connection with a statement built once, like ``logins.who``: it runs on
    every view of the resident's pages, most of which are then served kept."""
    with engine(url).connect() as conn:
        return conn.execute(_PAGE_VERSION, {"ref": ref}).scalar()


def portal_identity(resident: Resident) -> dict[str, Any]:
    """The resident's identity as their own portal page shows it; every call is an audited
    read (security property 4), whoever renders the page.
    """
    portal_identity_read(resident.ref)
    return identity(resident)


_PORTAL_READ = "identity.read"


def portal_identity_read(ref: str) -> None:
    """The audit record of one view of the resident's identity on their own pages."""
    audit.append(_PORTAL_READ, actor=f"resident:{ref}", details={"purpose": "portal"})


async def portal_identity_read_async(ref: str) -> None:
    """``portal_identity_read`` for a view of a kept copy of such a page, on the event loop
    (``web.deps.render_own``)."""
    await audit.append_async(_PORTAL_READ, actor=f"resident:{ref}", details={"purpose": "portal"})


def demo_login_people(session: Session, limit: int) -> list[Resident]:
    """The first residents by id, for the demo identity provider's list (synthetic regions
    only; the caller checks demo mode). The list shows names, so it is an audited read.

    The demo seed loads the people it chose for this list first (some registered with
    invitations, some not yet registered: ``studies.seed``), so the query walks the primary
    key and stops after ``limit`` rows; it used to sort every resident (37,858 in the demo)
    to show twelve, on every request of the log-in page.
    """
    people = list(session.scalars(demo_login_query(limit)))
    audit.append(
        "identity.read",
        actor="demo-login",
        details={"purpose": "demo log-in list", "count": len(people)},
    )
    return people


def demo_login_query(limit: int) -> Select[tuple[Resident]]:
    """The demo log-in list's query (``demo_login_people``), without the audited read."""
    return (
        select(Resident)
        .where(Resident.deleted_at.is_(None), Resident.personnummer.is_not(None))
        .order_by(Resident.id)
        .limit(limit)
    )


def export_registry_data(session: Session, resident: Resident) -> dict[str, Any]:
    """What the registry stores about the resident, as one JSON-able document: the registry's
    half of "download my data" (``studies.participation.export_data`` adds the invitations).
    """
    p = resident.profile
    profile = None
    if p is not None:
        profile = {k: getattr(p, k) for k in ProfileInput.model_fields} | {
            "updated_at": p.updated_at
        }
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.resident_id == resident.id)
        .order_by(ConsentEvent.id)
    )
    document = {
        "format": "brygga-resident-export/1",
        "identity": identity(resident),
        "registered_at": resident.registered_at,
        "paused": resident.paused_at is not None,
        "profile": profile,
        "consents": {
            c.kind: {
                "granted": c.granted,
                "text_version": c.text_version,
                "changed_at": c.changed_at,
            }
            for c in resident.consents
        },
        "consent_history": [
            {"kind": e.kind, "action": e.action, "text_version": e.text_version, "at": e.at}
            for e in events
        ],
    }
    audit.append("identity.read", actor=f"resident:{resident.ref}", details={"purpose": "export"})
    return document
