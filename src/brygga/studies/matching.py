"""Matching volunteers to approved, recruiting studies, and making invitations.

Candidates for a study are registered residents who

1. consent to be contacted (consent ``contact``) and have not paused or deleted their account;
2. fit their own preferences: the study's area is one of theirs (no areas: any), a site is
   within the distance they travel, and a study seeking healthy volunteers only invites people
   who offered to take part as one;
3. meet the eligibility criteria: on their health records when they consent to that
   (``match_records``; the records decide), otherwise on their self-reported profile for the
   parts it can answer (``studies/selfreport.py``).

``match_study`` is idempotent: an invitation exists at most once per (study, resident); the
unique constraint also holds when two runs race (insert ... on conflict do nothing).
Withdrawal and pause take effect at once because every run re-reads consents and pauses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, identifiers
from brygga.registry import catalogue, geography
from brygga.registry.consent import now
from brygga.registry.models import Consent, Profile, Resident
from brygga.studies.models import Invitation, OutboxMessage, Study
from brygga.studies.registration import study_criteria
from brygga.studies.selfreport import SelfReport, may_be_eligible

INVITATION_DAYS = 30
# person ids eligible on the records for a study (internal; never shown); None when no
# regional records are available, and then everyone is matched on their self-report.
EligibleFn = Callable[[Study], set[int] | None]


@dataclass(frozen=True)
class Volunteer:
    resident_id: int
    person_id: int | None
    municipality: str | None
    records_consent: bool
    profile: SelfReport
    areas: frozenset[str]
    healthy_volunteer: bool
    max_travel_km: int | None
    channel: str


def volunteers(session: Session, resident_ids: list[int] | None = None) -> list[Volunteer]:
    """Registered, not paused, not deleted, consenting to contact; optionally only some."""
    contact = select(Consent.resident_id).where(Consent.kind == "contact", Consent.granted)
    records_query = select(Consent.resident_id).where(
        Consent.kind == "match_records", Consent.granted
    )
    if resident_ids is not None:
        records_query = records_query.where(Consent.resident_id.in_(resident_ids))
    records = set(session.scalars(records_query))
    # Plain columns, not ORM objects: a scheduled run reads every volunteer (200,000 in the
    # benchmark) and building mapped instances cost several times the query itself.
    query = (
        select(Resident.id, Resident.person_id, Resident.personnummer,
               Resident.municipality_code, Profile.conditions, Profile.medicines,
               Profile.height_cm, Profile.weight_kg, Profile.smoking, Profile.areas,
               Profile.healthy_volunteer, Profile.max_travel_km, Profile.contact_channel)
        .join(Profile, Profile.resident_id == Resident.id)
        .where(
            Resident.registered_at.is_not(None),
            Resident.deleted_at.is_(None),
            Resident.paused_at.is_(None),
            Resident.id.in_(contact),
        )
    )  # fmt: skip
    if resident_ids is not None:
        query = query.where(Resident.id.in_(resident_ids))
    out = []
    for row in session.execute(query):
        pnr = row.personnummer or ""
        report = SelfReport(
            birth_date=identifiers.birth_date(pnr),
            sex=identifiers.sex(pnr),
            municipality=row.municipality_code,
            conditions=frozenset(catalogue.CONDITIONS[k].code for k in row.conditions or ()),
            medicines=frozenset(catalogue.MEDICINES[k].code for k in row.medicines or ()),
            height_cm=row.height_cm,
            weight_kg=row.weight_kg,
            smoking=row.smoking,
        )
        out.append(
            Volunteer(
                resident_id=row.id,
                person_id=row.person_id,
                municipality=row.municipality_code,
                records_consent=row.id in records,
                profile=report,
                areas=frozenset(row.areas or ()),
                healthy_volunteer=bool(row.healthy_volunteer),
                max_travel_km=row.max_travel_km,
                channel=row.contact_channel,
            )
        )
    return out


def recruiting(study: Study, today: date | None = None) -> bool:
    today = today or date.today()
    return study.status == "approved" and study.recruitment_start <= today <= study.recruitment_end


def candidates(
    study: Study,
    people: list[Volunteer],
    eligible_on_records: set[int] | None,
    today: date | None = None,
) -> list[tuple[Volunteer, str]]:
    """(volunteer, basis) for everyone who fits; basis is ``records`` or ``self_report``."""
    today = today or date.today()
    criteria = study_criteria(study)
    index_date = criteria.effective_index_date(today)
    sites = [s.municipality_code for s in study.sites]
    reach: dict[tuple[str | None, int | None], bool] = {}  # few municipalities x distances
    out = []
    for v in people:
        if v.areas and study.area not in v.areas:
            continue
        if study.healthy_volunteers and not v.healthy_volunteer:
            continue
        on_records = v.records_consent and eligible_on_records is not None
        if on_records and v.person_id not in eligible_on_records:  # type: ignore[operator]
            continue  # the cheapest test first: most people are not eligible on the records
        key = (v.municipality, v.max_travel_km)
        if key not in reach:
            reach[key] = geography.within_reach(v.municipality, sites, v.max_travel_km)
        if not reach[key]:
            continue
        if on_records:
            out.append((v, "records"))
        elif may_be_eligible(criteria, v.profile, index_date):
            out.append((v, "self_report"))
    return out


def _insert_ignoring_duplicates(session: Session, rows: list[dict]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for start in range(0, len(rows), 1000):
        statement = insert(Invitation).on_conflict_do_nothing(
            index_elements=["study_id", "resident_id"]
        )
        session.execute(statement, rows[start : start + 1000])


def match_study(
    session: Session,
    study: Study,
    eligible: EligibleFn,
    *,
    resident_ids: list[int] | None = None,
    today: date | None = None,
    people: list[Volunteer] | None = None,
) -> int:
    """Invite every new candidate of one recruiting study; returns the number invited.

    ``people``: the volunteers, when the caller already read them (``match_all``)."""
    if not recruiting(study, today):
        return 0
    if people is None:
        people = volunteers(session, resident_ids)
    if not people:
        return 0
    needs_records = any(v.records_consent for v in people)
    on_records = eligible(study) if needs_records else None
    found = candidates(study, people, on_records, today)
    query = select(Invitation.resident_id).where(Invitation.study_id == study.id)
    if resident_ids is not None:
        query = query.where(Invitation.resident_id.in_(resident_ids))
    already = set(session.scalars(query))
    new = [(v, basis) for v, basis in found if v.resident_id not in already]
    if not new:
        return 0
    at = now()
    rows = [
        {
            "study_id": study.id,
            "resident_id": v.resident_id,
            "basis": basis,
            "status": "sent",
            "created_at": at,
            "expires_at": at + timedelta(days=INVITATION_DAYS),
        }
        for v, basis in new
    ]
    _insert_ignoring_duplicates(session, rows)
    made = dict(
        session.execute(
            select(Invitation.resident_id, Invitation.id).where(
                Invitation.study_id == study.id,
                Invitation.resident_id.in_([v.resident_id for v, _ in new]),
                Invitation.created_at == at,
            )
        ).all()
    )
    channel = {v.resident_id: v.channel for v, _ in new}
    session.add_all(
        OutboxMessage(
            resident_id=rid,
            invitation_id=iid,
            channel=channel[rid],
            template="invitation",
            payload={"invitation": iid, "study": study.id},
            created_at=at,
        )
        for rid, iid in made.items()
    )
    session.flush()
    audit.append(
        "matching.run",
        actor="system:matching",
        details={
            "study": study.id,
            "invited": len(made),
            "scope": "all" if resident_ids is None else "some",
        },
    )
    return len(made)


def match_all(
    session: Session,
    eligible: EligibleFn,
    *,
    resident_ids: list[int] | None = None,
    today: date | None = None,
) -> dict[int, int]:
    """Run matching for every recruiting study (the scheduled run, or one resident's change)."""
    studies = list(
        session.scalars(select(Study).where(Study.status == "approved").order_by(Study.id))
    )
    people = volunteers(session, resident_ids) if studies else []
    return {
        s.id: match_study(
            session, s, eligible, resident_ids=resident_ids, today=today, people=people
        )
        for s in studies
    }


class RecordsEligibility:
    """``EligibleFn`` over a region, caching each study's eligible ids per criteria and day."""

    def __init__(self, region: object, engine: str = "duckdb") -> None:
        from brygga.records.store import Region

        self.region = region if isinstance(region, Region) else Region.open(region)  # type: ignore[arg-type]
        self.engine = engine
        self._cache: dict[str, set[int]] = {}

    def __call__(self, study: Study) -> set[int]:
        from brygga.cohort.feasibility import eligible_persons

        criteria = study_criteria(study)
        index_date = criteria.index_date or records_date(self.region)
        key = criteria.fingerprint(index_date)
        if key not in self._cache:
            ids = eligible_persons(criteria, self.region, engine=self.engine, index_date=index_date)
            self._cache[key] = set(ids)
        return self._cache[key]


def records_date(region: object, today: date | None = None) -> date:
    """The day the records describe: today, or the end of the region's extract if earlier
    (a synthetic region ends on the day its extract was taken)."""
    today = today or date.today()
    end = (getattr(region, "manifest", {}) or {}).get("period", {}).get("end")
    return min(today, date.fromisoformat(end)) if end else today
