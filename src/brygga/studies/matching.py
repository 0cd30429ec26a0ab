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

A run reads the volunteers once into columns (``studies/volunteers.py``); each study is then a
few ANDs of boolean masks over all of them, cached per area, per set of sites, per records
set and per criteria (``RunCache``), and its new invitations are written with a handful of
INSERT ... SELECT statements in the caller's transaction, followed by one more that queues one
notification per invited resident (a digest of the run's invitations, ``studies/outbox.py``).

The scheduled run over everyone (``run``) holds no lock while it thinks: it reads the
volunteers and works out every study's candidates in a read transaction (the records'
eligibility, seconds per study on a large region, included), then writes in bounded batches,
each its own short write transaction, so a resident's consent change waits for at most one
batch. What must be all-or-nothing is per resident: a resident's new invitations of the run
and the one digest about them commit together (batches are cut between residents). The run as
a whole is idempotent rather than atomic: a run stopped between batches has invited some
residents, fully, and the next run invites the rest. Each batch re-checks the consents as
they are at its commit (contact, and match_records for an invitation on the records), so a
withdrawal or pause that commits during the run takes effect at once (security property 5).
``match_all`` (one resident's change, in the caller's transaction) writes as before.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    DateTime,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session, selectinload

from brygga import audit, clock
from brygga.clock import now
from brygga.cohort.criteria import Criteria
from brygga.db.session import session as read_session
from brygga.db.session import write_session
from brygga.records.store import Region
from brygga.registry import geography
from brygga.registry.models import Consent, Resident
from brygga.studies import outbox
from brygga.studies.models import Invitation, Study
from brygga.studies.registration import study_criteria
from brygga.studies.selfreport import demographics_mask, health_holds
from brygga.studies.volunteers import NO_PERSON, Volunteer, Volunteers, load

INVITATION_DAYS = 30
BULK_CACHE_KIB = 256 * 1024
# Invitations written per transaction by ``run``: tens of milliseconds of writing on SQLite,
# the longest a resident's consent change then waits for the scheduled run.
BATCH_ROWS = 5_000
# person ids eligible on the records for a study (internal; never shown): a set, or a sorted
# array; None when no regional records are available, and then everyone is matched on their
# self-report.
EligibleFn = Callable[[Study], Collection[int] | np.ndarray | None]

__all__ = [
    "BATCH_ROWS",
    "EligibleFn",
    "Volunteer",
    "Volunteers",
    "match_all",
    "match_study",
    "run",
    "volunteers",
    "warm",
]


def volunteers(session: Session, resident_ids: list[int] | None = None) -> Volunteers:
    """Registered, not paused, not deleted, consenting to contact; optionally only some."""
    return load(session, resident_ids)


def recruiting(study: Study, today: date | None = None) -> bool:
    today = today or clock.today()
    return study.status == "approved" and study.recruitment_start <= today <= study.recruitment_end


class RunCache:
    """What the studies of one run share, computed once as masks over the volunteers: who is
    open to each area, who can reach each set of sites, who is eligible on each distinct
    records set, and who may be eligible on their self-report for each distinct criteria
    (the rules evaluated once per distinct health profile). A study is then a few ANDs."""

    def __init__(self, people: Volunteers) -> None:
        self.people = people
        self._areas: dict[str, np.ndarray] = {}
        self._reach: dict[tuple[str, ...], np.ndarray] = {}
        self._records: dict[int, tuple[object, np.ndarray]] = {}
        self._report: dict[tuple[str, date, bool], np.ndarray] = {}

    def criteria(self, study: Study) -> Criteria:
        return criteria_of(study)

    def area(self, area: str) -> np.ndarray:
        if area not in self._areas:
            self._areas[area] = self.people.area_mask(area)
        return self._areas[area]

    def reach(self, study: Study) -> np.ndarray:
        """Who can reach a site: a municipality x distance table, then one lookup each."""
        sites = [s.municipality_code for s in study.sites]
        key = tuple(sites)
        if key not in self._reach:
            people = self.people
            table = np.array(
                [geography.within_reach(home, sites, km)
                 for home in people.municipalities for km in people.travels],
                dtype=bool,
            )  # fmt: skip
            self._reach[key] = table[people.municipality * len(people.travels) + people.travel]
        return self._reach[key]

    def on_records(self, eligible: Collection[int] | np.ndarray) -> np.ndarray:
        """Who consents to records matching and is in ``eligible`` (cached per object)."""
        hit = self._records.get(id(eligible))
        if hit is not None and hit[0] is eligible:
            return hit[1]
        if isinstance(eligible, np.ndarray):
            ids = np.sort(eligible.astype(np.int64, copy=False))
        else:
            ids = np.sort(np.fromiter(eligible, dtype=np.int64, count=len(eligible)))
        pids = self.people.person_id
        mask = np.zeros(len(pids), dtype=bool)
        if len(ids):
            at = np.minimum(np.searchsorted(ids, pids), len(ids) - 1)
            mask = (ids[at] == pids) & (pids != NO_PERSON) & self.people.records_consent
        self._records[id(eligible)] = (eligible, mask)
        return mask

    def self_report(self, study: Study, today: date | None, everyone: bool) -> np.ndarray:
        """Who may be eligible on their self-report: everyone (no records available) or
        those who do not consent to records matching."""
        criteria = self.criteria(study)
        index_date = criteria.effective_index_date(today)
        key = (study.criteria_yaml, index_date, everyone)
        if key not in self._report:
            people = self.people
            # The rules do not read the date: once per distinct health profile.
            rules = np.array([health_holds(criteria, h) for h in people.profiles], dtype=bool)
            mask = rules[people.health] if len(rules) else np.zeros(len(people), dtype=bool)
            if not everyone:
                mask &= ~people.records_consent
            mask &= demographics_mask(criteria, index_date, people.birth, people.male,
                                      people.municipality, people.municipalities)  # fmt: skip
            self._report[key] = mask
        return self._report[key]


def criteria_of(study: Study) -> Criteria:
    """The study's parsed criteria, parsed once per distinct text: a resident's own run asks
    for every recruiting study's criteria, and parsing YAML costs milliseconds each."""
    parsed = _PARSED.get(study.criteria_yaml)
    if parsed is None:
        parsed = study_criteria(study)  # raises InputError naming the study
        if len(_PARSED) >= 1024:
            _PARSED.clear()
        _PARSED[study.criteria_yaml] = parsed
    return parsed


_PARSED: dict[str, Criteria] = {}


def candidate_masks(
    study: Study,
    people: Volunteers,
    eligible_on_records: Collection[int] | np.ndarray | None,
    today: date | None = None,
    cache: RunCache | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over ``people``: candidates on their records, and on their self-report.

    A candidate fits their own preferences (area, healthy volunteer, a site within reach), and
    meets the criteria on the records when they consent to that and records are available
    (the records decide), otherwise on the self-report (``studies/selfreport.py``)."""
    cache = cache or RunCache(people)
    fits = cache.area(study.area) & cache.reach(study)
    if study.healthy_volunteers:
        fits &= people.healthy
    if eligible_on_records is None:
        return np.zeros(len(people), dtype=bool), fits & cache.self_report(study, today, True)
    by_records = fits & cache.on_records(eligible_on_records)
    return by_records, fits & cache.self_report(study, today, False)


def candidates(
    study: Study,
    people: Volunteers,
    eligible_on_records: Collection[int] | np.ndarray | None,
    today: date | None = None,
) -> list[tuple[Volunteer, str]]:
    """(volunteer, basis) for everyone who fits; basis is ``records`` or ``self_report``."""
    by_records, by_report = candidate_masks(study, people, eligible_on_records, today)
    return [(people.row(i), "records") for i in np.flatnonzero(by_records)] + [
        (people.row(i), "self_report") for i in np.flatnonzero(by_report)
    ]


def match_all(
    session: Session,
    eligible: EligibleFn,
    *,
    resident_ids: list[int] | None = None,
    today: date | None = None,
) -> dict[int, int]:
    """Run matching for every recruiting study (the scheduled run, or one resident's change);
    returns the number of new invitations per approved study."""
    studies = _approved(session)
    invited = dict.fromkeys((s.id for s in studies), 0)
    live = [s for s in studies if recruiting(s, today)]
    if live:
        invited |= _match(session, live, eligible, resident_ids, today, None)
    return invited


def match_study(
    session: Session,
    study: Study,
    eligible: EligibleFn,
    *,
    resident_ids: list[int] | None = None,
    today: date | None = None,
    people: Volunteers | None = None,
) -> int:
    """Invite every new candidate of one recruiting study; returns the number invited.

    ``people``: the volunteers, when the caller already read them."""
    if not recruiting(study, today):
        return 0
    return _match(session, [study], eligible, resident_ids, today, people).get(study.id, 0)


def _match(
    session: Session,
    studies: list[Study],
    eligible: EligibleFn,
    resident_ids: list[int] | None,
    today: date | None,
    people: Volunteers | None,
) -> dict[int, int]:
    """Invite the new candidates of ``studies`` in one transaction; new invitations per study.

    Idempotent: candidates already invited (in any state, also withdrawn) are skipped, and the
    unique constraint on (study, resident) settles a race with another run."""
    new = _new_candidates(session, studies, eligible, resident_ids, today, people)
    if not new:
        return {}
    # This run's rows: created at ``at``, with ids above the largest one before it (so
    # reading them back scans only the new rows, not every invitation ever made).
    at, after = now(), session.scalar(select(func.max(Invitation.id))) or 0
    with _bulk_cache(session):
        made = _insert_invitations(session, new, at)
        outbox.queue_digest(session, at, resident_ids, after_id=after)
    if not made:
        return {}
    _audit_run(made, "all" if resident_ids is None else "some")
    return made


def _new_candidates(
    session: Session,
    studies: list[Study],
    eligible: EligibleFn,
    resident_ids: list[int] | None,
    today: date | None,
    people: Volunteers | None,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(study id, resident ids, on the records?) of the candidates not yet invited: reads
    only (the volunteers, the invitations made, the records' eligibility)."""
    if people is None:
        people = volunteers(session, resident_ids)
    if not len(people):
        return []
    cache = RunCache(people)
    needs_records = bool(people.records_consent.any())
    already = _invited(session, [s.id for s in studies], resident_ids)
    new = []
    for study in studies:
        by_records, by_report = candidate_masks(
            study, people, eligible(study) if needs_records else None, today, cache
        )
        found = np.flatnonzero(by_records | by_report)
        ids = people.resident_id[found]
        if study.id in already:
            keep = ~np.isin(ids, already[study.id], assume_unique=True)
            found, ids = found[keep], ids[keep]
        if len(ids):
            new.append((study.id, ids, by_records[found]))
    return new


def _audit_run(made: dict[int, int], scope: str) -> None:
    audit.append(
        "matching.run",
        actor="system:matching",
        details={"invited": {str(k): v for k, v in made.items()}, "scope": scope},
    )


def _approved(session: Session) -> list[Study]:
    """The approved studies with their sites, by id: what a matching run looks at."""
    return list(
        session.scalars(
            select(Study)
            .where(Study.status == "approved")
            .order_by(Study.id)
            .options(selectinload(Study.sites))
        )
    )


def run(
    url: str,
    eligible: EligibleFn,
    *,
    today: date | None = None,
    batch_rows: int | None = None,
) -> dict[int, int]:
    """The scheduled run over every recruiting study and every volunteer, on the database at
    ``url``: the candidates worked out in a read transaction (no lock held), the invitations
    and digests written in batches of about ``batch_rows`` invitations, each in a short write
    transaction of its own (see the module's docstring for what is all-or-nothing). Returns
    the new invitations per approved study."""
    with read_session(url) as s:
        studies = _approved(s)
        invited = dict.fromkeys((st.id for st in studies), 0)
        live = [st for st in studies if recruiting(st, today)]
        new = _new_candidates(s, live, eligible, None, today, None) if live else []
    if not new:
        return invited
    made: dict[int, int] = {}
    at = now()  # one run, one timestamp: its digests find its invitations by it
    try:
        for batch in _batches(new, batch_rows or BATCH_ROWS):
            with write_session(url) as s:
                after = s.scalar(select(func.max(Invitation.id))) or 0
                with _bulk_cache(s):
                    done = _insert_batch(s, batch, at)
                    # Only this batch's rows (ids above ``after``, this run's ``at``): one
                    # digest per resident, whose invitations all sit in this batch.
                    outbox.queue_digest(s, at, None, after_id=after)
            for study_id, n in done.items():
                made[study_id] = made.get(study_id, 0) + n
    finally:  # the batches that committed are audited even when a later one fails
        if made:
            _audit_run(made, "all")
    return invited | made


def warm(url: str, eligible: EligibleFn, study_ids: Collection[int] | None = None) -> None:
    """Work out (and let ``eligible`` keep) the people on the records of every recruiting
    study, or of ``study_ids``, in a read transaction: a web request that rematches a resident
    calls this before it takes the write lock, so the records' eligibility (seconds for a new
    study on a large region) is never computed while other writers wait (security property 8);
    inside the lock ``eligible`` then answers from what it kept (``RecordsEligibility``)."""
    with read_session(url) as s:
        query = select(Study).where(Study.status == "approved")
        if study_ids is not None:
            query = select(Study).where(Study.id.in_(list(study_ids)))
        found = [st for st in s.scalars(query) if study_ids is not None or recruiting(st)]
        for study in found:
            if study.criteria_yaml:
                eligible(study)


def _batches(
    new: list[tuple[int, np.ndarray, np.ndarray]], rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``new`` as (study, resident, on the records) columns, cut into parts of about ``rows``
    invitations between residents: every invitation of one resident falls in one part (so one
    digest tells them all)."""
    studies = np.concatenate([np.full(len(ids), sid, dtype=np.int64) for sid, ids, _ in new])
    residents = np.concatenate([ids for _, ids, _ in new]).astype(np.int64)
    on_records = np.concatenate([rec for _, _, rec in new])
    order = np.argsort(residents, kind="stable")
    studies, residents, on_records = studies[order], residents[order], on_records[order]
    # A part ends where the first resident at or after each multiple of ``rows`` begins, so
    # a part holds at most ``rows`` plus one resident's invitations.
    starts = np.flatnonzero(np.diff(residents)) + 1  # where each next resident begins
    at = np.searchsorted(starts, np.arange(rows, len(residents), rows))
    cuts = np.unique(starts[at[at < len(starts)]])
    for a, b in itertools.pairwise([0, *cuts.tolist(), len(residents)]):
        yield studies[a:b], residents[a:b], on_records[a:b]


def _invited(
    session: Session, study_ids: list[int], resident_ids: list[int] | None
) -> dict[int, np.ndarray]:
    """Residents already invited, per study (as arrays: a second run reads millions)."""
    query = select(Invitation.study_id, Invitation.resident_id).where(
        Invitation.study_id.in_(study_ids)
    )
    if resident_ids is not None:
        query = query.where(Invitation.resident_id.in_(resident_ids))
    rows = np.array(session.execute(query).all(), dtype=np.int64).reshape(-1, 2)
    if not len(rows):
        return {}
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    studies, starts = np.unique(rows[:, 0], return_index=True)
    parts = np.split(rows[:, 1], starts[1:])
    return {int(s): part for s, part in zip(studies, parts, strict=True)}


def _insert_invitations(
    session: Session, new: list[tuple[int, np.ndarray, np.ndarray]], at: Any
) -> dict[int, int]:
    """One INSERT ... SELECT per study and basis, its resident ids passed as one array
    parameter (a JSON array unpacked by ``json_each`` in SQLite, ``unnest`` in PostgreSQL):
    a full run writes over a million rows, and row-by-row parameters would cost minutes.
    A (study, resident) pair that another run inserted meanwhile is skipped; returns the rows
    inserted per study."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stamp = DateTime(timezone=True)
    expires = at + timedelta(days=INVITATION_DAYS)
    columns = ["study_id", "resident_id", "basis", "status", "created_at", "expires_at"]
    made: dict[int, int] = {}
    for study_id, ids, on_records in new:
        for basis, part in (("records", ids[on_records]), ("self_report", ids[~on_records])):
            if not len(part):
                continue
            values = id_values(part, dialect)
            rows = select(literal(study_id), values.c.value, literal(basis), literal("sent"),
                          literal(at, stamp), literal(expires, stamp)).where(true())  # fmt: skip
            statement = insert(Invitation.__table__).from_select(columns, rows)
            statement = statement.on_conflict_do_nothing(
                index_elements=["study_id", "resident_id"]
            ).execution_options(preserve_rowcount=True)  # the rows inserted, on every driver
            inserted = session.execute(statement).rowcount  # type: ignore[attr-defined]
            made[study_id] = made.get(study_id, 0) + inserted
    return {k: v for k, v in made.items() if v}


def _insert_batch(
    session: Session,
    batch: tuple[np.ndarray, np.ndarray, np.ndarray],
    at: Any,
) -> dict[int, int]:
    """One batch of the scheduled run in ONE INSERT ... SELECT, whatever the number of studies
    (a statement per study and basis, 600 for 300 studies, cost more than the rows): the
    (study, resident, on the records) triples passed as one parameter, only residents whose
    consents stand now (the candidates were read in an earlier transaction), a pair another
    run inserted meanwhile skipped. Returns the rows inserted per study."""
    dialect = session.get_bind().dialect.name
    studies, residents, on_records = batch[0], batch[1], batch[2].astype(np.int64)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY, insert

        arrays = [bindparam(f"a{i}", a.tolist(), type_=ARRAY(BigInteger))
                  for i, a in enumerate((studies, residents, on_records))]  # fmt: skip
        rows = func.unnest(*arrays).table_valued("s", "r", "b").render_derived()
        study, resident, records = rows.c.s, rows.c.r, rows.c.b
    else:
        from sqlalchemy.dialects.sqlite import insert

        triples = np.stack([studies, residents, on_records], axis=1).tolist()
        rows = func.json_each(bindparam("rows", json.dumps(triples), type_=Text)).table_valued(
            "value"
        )
        study, resident, records = (func.json_extract(rows.c.value, f"$[{i}]") for i in range(3))
    stamp = DateTime(timezone=True)
    basis = case((records == 1, literal("records")), else_=literal("self_report"))
    allowed = case(
        (records == 1, _consenting(resident, "records")),
        else_=_consenting(resident, "self_report"),
    )
    select_rows = select(
        study, resident, basis, literal("sent"), literal(at, stamp),
        literal(at + timedelta(days=INVITATION_DAYS), stamp),
    ).where(allowed)  # fmt: skip
    columns = ["study_id", "resident_id", "basis", "status", "created_at", "expires_at"]
    statement = (
        insert(Invitation.__table__)
        .from_select(columns, select_rows)
        .on_conflict_do_nothing(index_elements=["study_id", "resident_id"])
        .returning(Invitation.__table__.c.study_id)
    )
    made: dict[int, int] = {}
    for (study_id,) in session.execute(statement):
        made[int(study_id)] = made.get(int(study_id), 0) + 1
    return made


def _consenting(resident_id: Any, basis: str) -> Any:
    """SQL condition: the resident ``resident_id`` may be invited now on ``basis`` (the
    conditions ``volunteers.load`` reads): registered, not paused or deleted, consenting to
    contact, and for an invitation on the records also to records matching. Correlated, so
    each candidate is one look-up in the (resident, kind) index, not a scan of everyone."""

    def consents(kind: str) -> Any:
        return (
            select(Consent.id)
            .where(
                Consent.resident_id == resident_id,
                Consent.kind == kind,
                Consent.granted.is_(True),
            )
            .exists()
        )

    standing = (
        select(Resident.id)
        .where(
            Resident.id == resident_id,
            Resident.registered_at.is_not(None),
            Resident.deleted_at.is_(None),
            Resident.paused_at.is_(None),
        )
        .exists()
    )
    condition = and_(standing, consents("contact"))
    return and_(condition, consents("match_records")) if basis == "records" else condition


def id_values(ids: np.ndarray | list[int], dialect: str) -> Any:
    """A one-column table ``value`` of the ids, from a single parameter (any number of ids:
    PostgreSQL takes at most 65,535 parameters per statement)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam("ids", np.asarray(ids).tolist(), type_=ARRAY(BigInteger))
        return func.unnest(array).table_valued("value").render_derived()
    text = "[" + ",".join(map(str, np.asarray(ids).tolist())) + "]"
    return func.json_each(bindparam("ids", text, type_=Text)).table_valued("value")


@contextmanager
def _bulk_cache(session: Session, kib: int = BULK_CACHE_KIB) -> Iterator[None]:
    """SQLite: a larger page cache on this connection while a run writes its rows.

    The new rows go into the resident indexes of both tables at random places; with SQLite's
    default 2 MB cache a full run re-reads index pages from the file over and over."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = session.execute(text("PRAGMA cache_size")).scalar()
    session.execute(text(f"PRAGMA cache_size=-{int(kib)}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size={int(before)}"))


class RecordsEligibility:
    """``EligibleFn`` over a region, caching each study's eligible ids per criteria and day."""

    def __init__(self, region: object, engine: str = "duckdb") -> None:
        self.region = region if isinstance(region, Region) else Region.open(region)  # type: ignore[arg-type]
        self.engine = engine
        self._cache: dict[str, np.ndarray] = {}
        self._keys: dict[tuple[str, date], str] = {}

    def __call__(self, study: Study) -> np.ndarray:
        from brygga.cohort.feasibility import eligible_persons

        criteria = criteria_of(study)
        index_date = criteria.index_date or records_date(self.region)
        key = self._keys.get((study.criteria_yaml, index_date))
        if key is None:
            key = self._keys[(study.criteria_yaml, index_date)] = criteria.fingerprint(index_date)
        if key not in self._cache:
            ids = eligible_persons(criteria, self.region, engine=self.engine, index_date=index_date)
            self._cache[key] = np.asarray(ids, dtype=np.int64)  # sorted
        return self._cache[key]


def records_date(region: Region, today: date | None = None) -> date:
    """The day the records describe: today, or the end of the region's extract if earlier
    (a synthetic region ends on the day its extract was taken)."""
    return region.records_date(today)
