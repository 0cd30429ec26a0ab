"""Demo data for the front door: organizations, staff, studies and registered volunteers.

``seed_demo(region, database_url)`` migrates the database, loads the region's identities,
creates demo organizations and one staff account per role, registers studies (three written
for Brygga and some imported from the ClinicalTrials.gov sample when it is available), signs
up a few thousand synthetic volunteers with profiles and consents, and runs matching against
the region's records. Idempotent: a second call on the same database changes nothing.

Volunteers are inserted in bulk and audited as one ``demo.seed`` record (a system action), not
one record per synthetic person.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNTS",
    "CARE_UNIT",
    "DEMO_PASSWORD",
    "DEMO_PEOPLE",
    "DEMO_REGISTERED",
    "ORGANIZATIONS",
    "STUDIES",
    "SeedResult",
    "seed_demo",
]

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from brygga import audit, clock
from brygga.db import session as db_session
from brygga.db import upgrade
from brygga.errors import NotFoundError
from brygga.records.store import Region, identities_path
from brygga.registry import consent, service
from brygga.registry.areas import AREAS
from brygga.registry.catalogue import CONDITIONS
from brygga.registry.models import Consent, ConsentEvent, Profile, Resident
from brygga.studies import ctgov, matching, registration, staff
from brygga.studies.models import Invitation, StaffAccount, Study

DEMO_PASSWORD = "brygga-demo-2026"  # demo accounts only; printed by the demo
# The demo identity provider lists the first DEMO_PEOPLE residents (web/routes/public.py shows
# twelve): the seed loads its chosen people first, DEMO_REGISTERED of them registered.
DEMO_PEOPLE = 12
DEMO_REGISTERED = 8
CARE_UNIT = "Demo-vårdcentralen"  # the region's largest primary-care unit (``_care_unit``)
ACCOUNTS = (
    ("forskare@demo.brygga.se", "Forskare Lund", "researcher", "Lunds universitet"),
    ("sponsor@demo.brygga.se", "Sponsor Nordic Pharma", "researcher", "Nordic Pharma AB"),
    ("fou@demo.brygga.se", "FoU-kansliet", "research_office", None),
    ("vard@demo.brygga.se", "Distriktssköterska, demo", "care_provider", CARE_UNIT),
    ("data@demo.brygga.se", "Dataförvaltningen", "data_steward", "Region FoU"),
    ("strategi@demo.brygga.se", "Strategigruppen life science", "strategy", "Region FoU"),
    ("admin@demo.brygga.se", "Administratör", "admin", None),
)
ORGANIZATIONS = (
    ("Lunds universitet", "university"),
    ("Nordic Pharma AB", "company"),
    ("Region FoU", "region"),
)
STUDIES = (
    {
        "title_sv": "Metformin och hjärtat vid typ 2-diabetes",
        "title_en": "Metformin and the heart in type 2 diabetes",
        "summary_sv": "Vi jämför två sätt att följa upp personer med typ 2-diabetes som tar metformin.",
        "summary_en": "We compare two ways of following up people with type 2 diabetes who take metformin.",
        "phase": "4",
        "area": "diabetes",
        "criteria_yaml": "demographics: {age: {min: 40, max: 80}}\ninclude:\n  - condition: {codes: [E11], vocabulary: ICD10}\nexclude:\n  - condition: {codes: [I21, I22], vocabulary: ICD10}\n",
        "visits": 4,
        "duration_weeks": 52,
        "participation_sv": "Du lämnar blodprov och får ett EKG vid fyra besök under ett år. Du fortsätter med din vanliga medicin.",
        "participation_en": "You give blood samples and have an ECG at four visits over a year. You keep taking your usual medicine.",
        "compensation_sv": "Resor ersätts och du får 300 kronor per besök.",
        "compensation_en": "Travel is paid and you get SEK 300 per visit.",
        "contact_role": "Forskningssjuksköterska, diabetesmottagningen",
        "contact_email": "metformin-studien@demo.brygga.se",
        "contact_phone": "046-17 10 00",
    },
    {
        "title_sv": "Blodtryck i hemmet",
        "title_en": "Blood pressure at home",
        "summary_sv": "Hjälper det att mäta blodtrycket hemma? Vi söker personer med högt blodtryck.",
        "summary_en": "Does measuring blood pressure at home help? We are looking for people with high blood pressure.",
        "phase": "not_applicable",
        "area": "cardiovascular",
        "criteria_yaml": "demographics: {age: {min: 30, max: 85}}\ninclude:\n  - condition: {codes: [I10], vocabulary: ICD10}\n",
        "visits": 2,
        "duration_weeks": 12,
        "participation_sv": "Du mäter blodtrycket hemma två gånger om dagen med en mätare du får låna, och besöker vårdcentralen i början och i slutet.",
        "participation_en": "You measure your blood pressure at home twice a day with a monitor you borrow, and visit the health centre at the start and at the end.",
        "compensation_sv": "Ingen ersättning.",
        "compensation_en": "No compensation.",
        "contact_role": "Studiekoordinator",
        "contact_email": "blodtryck@demo.brygga.se",
    },
    {
        "title_sv": "Nytt vaccin mot luftvägsinfektion – friska frivilliga",
        "title_en": "New vaccine against respiratory infection – healthy volunteers",
        "summary_sv": "Vi söker friska vuxna som vill pröva ett nytt vaccin.",
        "summary_en": "We are looking for healthy adults who want to try a new vaccine.",
        "phase": "1",
        "area": "infection",
        "healthy_volunteers": True,
        "drug_trial": True,
        "eu_ct_number": "2025-512345-12-00",
        "criteria_yaml": "demographics: {age: {min: 18, max: 55}}\nexclude:\n  - condition: {codes: [E10, E11, I50, J44], vocabulary: ICD10}\n",
        "visits": 6,
        "duration_weeks": 26,
        "participation_sv": "Du får två doser vaccin och lämnar blodprov vid sex besök på prövningsenheten. Första besöket tar ungefär tre timmar.",
        "participation_en": "You get two doses of vaccine and give blood samples at six visits to the trial unit. The first visit takes about three hours.",
        "compensation_sv": "4 000 kronor för hela studien, plus resor.",
        "compensation_en": "SEK 4,000 for the whole study, plus travel.",
        "contact_role": "Prövningsenheten, Nordic Pharma AB",
        "contact_email": "vaccin@demo.brygga.se",
        "contact_phone": "040-33 10 00",
    },
)


@dataclass
class SeedResult:
    database_url: str
    identities_loaded: int
    volunteers: int
    studies: int
    invitations: dict[int, int]
    logins: list[dict[str, str]] = field(default_factory=list)
    # The demo log-in list: people listed, of them not yet registered, with invitations.
    demo_people: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "database_url": self.database_url,
            "identities_loaded": self.identities_loaded,
            "volunteers": self.volunteers,
            "studies": self.studies,
            "invited": sum(self.invitations.values()),
            "logins": self.logins,
            "demo_people": self.demo_people,
        }


def seed_demo(
    region: str | Path,
    database_url: str,
    *,
    volunteers: int = 3000,
    seed: int = 1,
    ctgov_file: str | Path | None = None,
    ctgov_studies: int = 5,
) -> SeedResult:
    """Fill ``database_url`` with demo data for ``region``; see the module docstring."""
    region_obj = Region.open(region)
    if ctgov_file is not None and not Path(ctgov_file).is_file():
        raise NotFoundError(f"ClinicalTrials.gov file {ctgov_file} does not exist")
    upgrade(database_url)
    eligible = matching.RecordsEligibility(region_obj)
    with db_session(database_url) as s:
        accounts = _staff(s, _care_unit(region_obj))
        studies = _studies(s, accounts, region_obj, ctgov_file, ctgov_studies)
        fresh = s.scalar(select(Resident.id).limit(1)) is None
        demo = _choose_demo_people(region_obj, studies, eligible, seed) if fresh else ([], [])
        loaded = service.load_identities(
            s, identities_path(region_obj.path), first=_listing_order(*demo)
        )
        joined = _volunteers(s, volunteers, seed, demo[0], demo[1])
    with db_session(database_url) as s:
        invited = matching.match_all(s, eligible)
    with db_session(database_url) as s:
        listed = _demo_listing(s)
    logins = [{"role": r, "email": e, "password": DEMO_PASSWORD} for e, _, r, _ in ACCOUNTS]
    logins.append(
        {"role": "resident", "email": "(demo identity provider: pick a person)", "password": ""}
    )
    return SeedResult(database_url, loaded, joined, len(studies), invited, logins, listed)


def _choose_demo_people(
    region: Region, studies: list[Study], eligible: matching.RecordsEligibility, seed: int
) -> tuple[list[int], list[int]]:
    """The people on the demo log-in list (person ids): ``DEMO_REGISTERED`` who will be
    registered and invited (each meets a recruiting study's criteria on the records, taken in
    turn from each study) and ``DEMO_PEOPLE - DEMO_REGISTERED`` adults who are not registered
    yet, so that joining can be tried (they meet a study's criteria too: joining and consenting
    to records matching then brings an invitation)."""
    identities = pq.read_table(
        identities_path(region.path), columns=["person_id", "personnummer"]
    ).to_pylist()
    this_year = clock.today().year
    adults = {
        r["person_id"] for r in identities
        if r["personnummer"] and 18 <= this_year - int(r["personnummer"][:4]) <= 90
    }  # fmt: skip
    rng = np.random.default_rng(seed)
    pools = []
    for study in studies:
        if matching.recruiting(study):
            ids = [int(p) for p in eligible(study) if int(p) in adults]
            pools.append(rng.permutation(ids).tolist() if ids else [])
    chosen: list[int] = []
    while len(chosen) < DEMO_PEOPLE and any(pools):
        for pool in pools:
            while pool and pool[-1] in chosen:
                pool.pop()
            if pool and len(chosen) < DEMO_PEOPLE:
                chosen.append(pool.pop())
    return chosen[:DEMO_REGISTERED], chosen[DEMO_REGISTERED:]


def _listing_order(registered: list[int], unregistered: list[int]) -> list[int]:
    """Every third person on the list is not registered yet."""
    order: list[int] = []
    waiting = list(unregistered)
    for i, pid in enumerate(registered):
        order.append(pid)
        if i % 2 == 1 and waiting:
            order.append(waiting.pop(0))
    return order + waiting


def _demo_listing(s: Session) -> dict[str, int]:
    """What the demo log-in list holds: people listed, not yet registered, with invitations.
    Exact: these are the demo's own accounts, shown by name on the log-in page."""
    people = list(s.scalars(service.demo_login_query(DEMO_PEOPLE)))
    invited = set(
        s.scalars(
            select(Invitation.resident_id).where(Invitation.resident_id.in_([p.id for p in people]))
        )
    )
    return {
        "listed": len(people),
        "unregistered": sum(p.registered_at is None for p in people),
        "with_invitations": len(invited),
    }


def _care_unit(region: Region) -> tuple[str, int | None]:
    """The demo care unit: the primary-care unit listing the most people, by its name."""
    con = region.duckdb(optimized=False)  # one view per table
    try:
        row = con.execute(
            "SELECT p.care_site_id, c.care_site_name FROM person p JOIN care_site c"
            " USING (care_site_id) GROUP BY ALL ORDER BY count(*) DESC, p.care_site_id LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return (str(row[1]), int(row[0])) if row else (CARE_UNIT, None)


def _staff(s: Session, unit: tuple[str, int | None]) -> dict[str, StaffAccount]:
    orgs = {}
    for name, kind in ORGANIZATIONS:
        org = s.scalar(select(staff.Organization).where(staff.Organization.name == name))
        orgs[name] = org or staff.create_organization(s, {"name": name, "kind": kind})
    unit_name, unit_id = unit
    org = s.scalar(select(staff.Organization).where(staff.Organization.name == unit_name))
    orgs[CARE_UNIT] = org or staff.create_organization(
        s, {"name": unit_name, "kind": "care_unit", "care_site_id": unit_id}
    )
    accounts = {}
    for email, name, role, org in ACCOUNTS:
        account = s.scalar(select(StaffAccount).where(StaffAccount.email == email))
        if account is None:
            data = {"email": email, "display_name": name, "role": role, "password": DEMO_PASSWORD,
                    "organization_id": orgs[org].id if org else None}  # fmt: skip
            account = staff.create_staff(s, data, actor="system:demo-seed")
        accounts[email] = account
    return accounts


def _hospital_sites(region: Region) -> list[dict[str, str]]:
    from brygga.synth.targets import SKANE, STOCKHOLM

    facts = STOCKHOLM if region.manifest.get("region_key") == "stockholm" else SKANE
    return [{"name": name, "municipality_code": code} for code, name in facts.hospitals]


def _studies(
    s: Session, accounts: dict[str, StaffAccount], region: Region, ctgov_file: Any, n_ctgov: int
) -> list[Study]:
    existing = list(s.scalars(select(Study)))
    if existing:
        return existing
    today = clock.today()
    sites = _hospital_sites(region)
    researcher = accounts["forskare@demo.brygga.se"]
    sponsor = accounts["sponsor@demo.brygga.se"]
    office = accounts["fou@demo.brygga.se"]
    forms = []
    for i, base in enumerate(STUDIES):
        forms.append((sponsor if base.get("drug_trial") else researcher, base | {
            "sponsor": "Nordic Pharma AB" if base.get("drug_trial") else "Lunds universitet",
            "ethics_number": f"2025-0{1234 + i}-01",
            "target_enrolment": 200,
            "recruitment_start": today - timedelta(days=30),
            "recruitment_end": today + timedelta(days=365),
            "sites": sites[i % len(sites) : i % len(sites) + 2],
        }))  # fmt: skip
    if ctgov_file is not None:
        for record in ctgov.load_records(ctgov_file)[:n_ctgov]:
            data = registration.from_ctgov(ctgov.import_record(record))
            data |= {"sites": sites[:1], "ethics_number": "2025-04321-01",
                     "recruitment_start": today - timedelta(days=10),
                     "recruitment_end": today + timedelta(days=400)}  # fmt: skip
            forms.append((sponsor, data))
    studies = []
    for author, data in forms:
        study = registration.create_study(s, author, data)
        registration.submit(s, author, study)
        registration.review(s, office, study, approve=True)
        studies.append(study)
    return studies


def _volunteers(
    s: Session, n: int, seed: int, demo: Sequence[int] = (), not_yet: Sequence[int] = ()
) -> int:
    """Register ``n`` adults (18-90) with profiles and consents, in bulk: the demo people
    ``demo`` (person ids) among them, open to every study, never the demo people ``not_yet``."""
    if s.scalar(select(Resident.id).where(Resident.registered_at.is_not(None)).limit(1)):
        return 0
    rows = s.execute(select(Resident.id, Resident.personnummer, Resident.person_id)).all()
    ours_too = set(demo) | set(not_yet)
    listed = {pid: rid for rid, _, pid in rows if pid in ours_too}
    keep_out = set(listed.values())
    this_year = clock.today().year
    adults = [
        rid for rid, pnr, _ in rows
        if pnr and 18 <= this_year - int(pnr[:4]) <= 90 and rid not in keep_out
    ]  # fmt: skip
    rng = np.random.default_rng(seed)
    ours = [listed[p] for p in demo if p in listed][:n]
    drawn = rng.choice(adults, size=min(n - len(ours), len(adults)), replace=False).tolist()
    chosen = sorted(drawn + ours)
    open_to_all = set(ours)
    at = clock.now()
    areas, conditions = list(AREAS), list(CONDITIONS)
    profiles, consents, events = [], [], []
    for rid in chosen:
        if rid in open_to_all:
            # A demo person: any area, any distance, records matching on, so matching invites
            # them to the study they were chosen for.
            profiles.append({"resident_id": rid, "conditions": [], "medicines": [], "areas": [],
                             "healthy_volunteer": True, "max_travel_km": None,
                             "contact_channel": "in_app", "language": "sv", "updated_at": at})  # fmt: skip
            for kind in ("contact", "match_records"):
                version = consent.TEXTS[kind].version
                consents.append({"resident_id": rid, "kind": kind, "granted": True,
                                 "text_version": version, "changed_at": at})  # fmt: skip
                events.append({"resident_id": rid, "kind": kind, "action": "grant",
                               "text_version": version, "at": at})  # fmt: skip
            continue
        k = int(rng.integers(0, 3))
        profiles.append({
            "resident_id": rid,
            "conditions": rng.choice(conditions, size=int(rng.integers(0, 3)), replace=False).tolist(),
            "medicines": [],
            "areas": rng.choice(areas, size=k, replace=False).tolist() if k else [],
            "healthy_volunteer": bool(rng.random() < 0.3),
            "max_travel_km": [None, 20, 50, 100][int(rng.integers(0, 4))],
            "contact_channel": "in_app" if rng.random() < 0.7 else "email",
            "language": "sv",
            "updated_at": at,
        })  # fmt: skip
        kinds = ["contact"] + (["match_records"] if rng.random() < 0.7 else [])
        for kind in kinds:
            version = consent.TEXTS[kind].version
            consents.append({"resident_id": rid, "kind": kind, "granted": True,
                             "text_version": version, "changed_at": at})  # fmt: skip
            events.append({"resident_id": rid, "kind": kind, "action": "grant",
                           "text_version": version, "at": at})  # fmt: skip
    _mark_registered(s, chosen, at)
    for model, batch in ((Profile, profiles), (Consent, consents), (ConsentEvent, events)):
        for start in range(0, len(batch), 2000):
            s.execute(insert(model), batch[start : start + 2000])
    audit.append("demo.seed", actor="system:demo-seed",
                 details={"volunteers": len(chosen), "consents": len(consents)})  # fmt: skip
    return len(chosen)


def _mark_registered(s: Session, ids: list[int], at: datetime, chunk: int = 20_000) -> None:
    """Set ``registered_at`` of the residents ``ids``; the benchmark registers 200,000 at once.

    SQLite: one UPDATE whose ids travel as one JSON array. PostgreSQL: ``IN (...)`` lists of
    ``chunk`` ids (it takes at most 65,535 parameters per statement). A single ``IN (SELECT
    unnest(array))`` was tried there and sometimes planned as a scan of the table per id on a
    freshly filled, not yet analyzed table (minutes for 70,000 ids)."""
    stmt = update(Resident).values(registered_at=at).execution_options(synchronize_session=False)
    if s.get_bind().dialect.name != "postgresql":
        named = select(matching.id_values(ids, "sqlite").c.value)
        s.execute(stmt.where(Resident.id.in_(named)))
        return
    for start in range(0, len(ids), chunk):
        s.execute(stmt.where(Resident.id.in_(ids[start : start + chunk])))
