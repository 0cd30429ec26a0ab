"""The public study catalogue: approved studies in their recruitment period, and search.

What the public page ``/studier`` lists and what ``/studier/{id}`` shows, without log-in. Only
what the study's researchers wrote for the public and the research office approved is shown;
nothing here reads residents or records, so no count of people ever leaves through it.

Search is by free text (titles, summaries, sponsor, in both languages), research area,
condition (a self-report catalogue entry: studies whose criteria ask for that diagnosis, or
whose texts name it), a site's municipality, studies seeking healthy volunteers, and the
searcher's age and sex (the criteria's demographics: a study without an age range fits
every age). The recruiting studies are few (hundreds at most), so they are read once per search
and filtered here.
"""

from __future__ import annotations

__all__ = [
    "Listed",
    "Search",
    "approved_version",
    "condition_codes",
    "fits",
    "is_recruiting",
    "known_version",
    "listing",
    "public_study",
    "read_version",
    "recruiting",
    "search",
    "who_can_take_part",
]

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, joinedload

from brygga import clock
from brygga.cohort.criteria import AllOf, AnyOf, AtLeast, ConditionRule, Criteria, Model
from brygga.db.session import session as db_session
from brygga.errors import NotFoundError
from brygga.registry import catalogue
from brygga.studies import matching, plain
from brygga.studies.matching import criteria_of
from brygga.studies.models import Study


@dataclass(frozen=True)
class Search:
    """What the searcher asked; empty fields do not filter."""

    text: str = ""
    area: str = ""
    condition: str = ""  # a key of registry.catalogue.CONDITIONS
    municipality: str = ""  # SCB kommunkod
    healthy: bool = False
    age: int | None = None
    sex: str = ""  # female | male

    @property
    def empty(self) -> bool:
        return self == Search()


def recruiting(session: Session, today: date | None = None) -> list[Study]:
    """Approved studies whose recruitment period includes today, newest first."""
    today = today or clock.today()
    # One query with the sites joined (a second, select-in query cost more per page view).
    return list(
        session.scalars(
            select(Study)
            .where(
                Study.status == "approved",
                Study.recruitment_start <= today,
                Study.recruitment_end >= today,
            )
            .order_by(Study.recruitment_start.desc(), Study.id.desc())
            .options(joinedload(Study.sites))
        ).unique()
    )


@dataclass(frozen=True)
class ListedSite:
    name: str
    municipality_code: str


@dataclass(frozen=True)
class Listed:
    """A recruiting study as the catalogue lists and searches it (a snapshot, not a row)."""

    id: int
    title_sv: str
    title_en: str
    summary_sv: str
    summary_en: str
    sponsor: str
    area: str
    healthy_volunteers: bool
    recruitment_start: date
    recruitment_end: date
    criteria_yaml: str
    sites: tuple[ListedSite, ...]


_listings: dict[tuple[str, date], tuple[tuple[int, datetime | None], tuple[Listed, ...]]] = {}
_listings_lock = threading.Lock()


def approved_version(session: Session) -> tuple[int, datetime | None]:
    """What says whether the public catalogue changed: the number of approved studies and
    the latest review time (an approved study cannot be edited, and approving one changes
    both). Recruitment periods depend on the day too: callers keep that in their key."""
    count, latest = session.execute(
        select(func.count(), func.max(Study.reviewed_at)).where(Study.status == "approved")
    ).one()
    return count, latest


# The busiest public pages ask whether the catalogue changed on every view; asking the
# database each time was most of what a kept page cost. A process reads the version again
# after ``CHECK_SECONDS``, and at once after it changed a study's status itself.
CHECK_SECONDS = 1.0
_status_counter = itertools.count(1)  # next() is atomic: two threads never draw the same
_status_changes = 0
_versions: dict[str, tuple[float, int, tuple[int, datetime | None]]] = {}


@event.listens_for(Study.status, "set")
def _status_set(*_: object) -> None:
    global _status_changes
    _status_changes = next(_status_counter)


def known_version(url: str) -> tuple[int, datetime | None] | None:
    """``approved_version`` of the database at ``url`` as this process read it less than
    ``CHECK_SECONDS`` ago, with no study's status set since in this process; None if not."""
    hit = _versions.get(url)
    if hit is None or hit[1] != _status_changes or time.monotonic() - hit[0] >= CHECK_SECONDS:
        return None
    return hit[2]


def read_version(url: str) -> tuple[int, datetime | None]:
    """``approved_version`` read now (and remembered for ``known_version``). Another process
    that approves a study is seen within ``CHECK_SECONDS``."""
    changes, started = _status_changes, time.monotonic()
    with db_session(url) as s:
        version = approved_version(s)
    if len(_versions) > 64:  # one entry per database; tests make many
        _versions.clear()
    _versions[url] = (started, changes, version)
    return version


def listing(session: Session, today: date | None = None) -> tuple[Listed, ...]:
    """``recruiting`` as snapshots, read again only when the approved studies changed.

    The catalogue is the busiest public page and its studies change rarely: an approved study
    cannot be edited, so the number of approved studies and the latest review time say
    whether anything changed (one aggregate query, instead of loading every study and its
    sites on every page view)."""
    today = today or clock.today()
    version = approved_version(session)
    key = (str(session.get_bind().url), today)
    cached = _listings.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    studies = tuple(
        Listed(
            id=s.id,
            title_sv=s.title_sv,
            title_en=s.title_en,
            summary_sv=s.summary_sv,
            summary_en=s.summary_en,
            sponsor=s.sponsor,
            area=s.area,
            healthy_volunteers=s.healthy_volunteers,
            recruitment_start=s.recruitment_start,
            recruitment_end=s.recruitment_end,
            criteria_yaml=s.criteria_yaml,
            sites=tuple(ListedSite(x.name, x.municipality_code) for x in s.sites),
        )
        for s in recruiting(session, today)
    )
    with _listings_lock:
        if len(_listings) > 64:  # one entry per database and day; tests make many databases
            _listings.clear()
        _listings[key] = (version, studies)  # type: ignore[assignment]
    return studies


def search(session: Session, query: Search, today: date | None = None) -> list[Study]:
    return [s for s in recruiting(session, today) if fits(s, query)]


def public_study(session: Session, study_id: int) -> Study:
    """An approved study (recruiting or not: an invitation may outlive the period); any other
    study is "not found", so drafts and rejected studies stay private."""
    study = session.get(Study, study_id)
    if study is None or study.status != "approved":
        raise NotFoundError(f"study {study_id} does not exist")
    return study


def is_recruiting(study: Study, today: date | None = None) -> bool:
    return matching.recruiting(study, today)


def who_can_take_part(study: Study, lang: str, place: Callable[[str], str] = str) -> plain.Plain:
    """Who can take part, in plain words (``studies/plain.py``)."""
    return plain.describe(criteria_of(study), lang, place)


def fits(study: Study | Listed, q: Search) -> bool:
    if q.area and study.area != q.area:
        return False
    if q.healthy and not study.healthy_volunteers:
        return False
    if q.municipality and q.municipality not in {s.municipality_code for s in study.sites}:
        return False
    texts = " ".join(
        (study.title_sv, study.title_en, study.summary_sv, study.summary_en, study.sponsor)
    ).casefold()
    if q.text and q.text.strip().casefold() not in texts:
        return False
    if not (q.condition or q.age is not None or q.sex):
        return True
    criteria = criteria_of(study)  # type: ignore[arg-type] (a Listed has criteria_yaml and id)
    if q.condition and not _asks_for(criteria, q.condition, texts):
        return False
    demographics = criteria.demographics
    if q.sex and demographics.sex is not None and q.sex not in demographics.sex:
        return False
    if q.age is not None and demographics.age is not None:
        lo, hi = demographics.age.min, demographics.age.max
        if (lo is not None and q.age < lo) or (hi is not None and q.age > hi):
            return False
    return True


def _asks_for(criteria: Criteria, condition: str, texts: str) -> bool:
    entry = catalogue.CONDITIONS.get(condition)
    if entry is None:
        return False
    if entry.sv.casefold() in texts or entry.en.casefold() in texts:
        return True
    return any(_rule_asks(r, entry.code) for r in criteria.include)


def condition_codes(rule: Model) -> list[str]:
    """The ICD-10 codes a rule asks for, groups included."""
    if isinstance(rule, ConditionRule):
        return [c for v, c in rule.condition.codeset if v == "ICD10"]
    if isinstance(rule, AnyOf | AllOf | AtLeast):
        inner = rule.any_of if isinstance(rule, AnyOf) else (
            rule.all_of if isinstance(rule, AllOf) else rule.at_least.of)  # fmt: skip
        return [c for r in inner for c in condition_codes(r)]
    return []


def _rule_asks(rule: Model, code: str) -> bool:
    # The rule's code is a prefix of the entry's ("E11" asks for "E119"), or more specific.
    return any(code.startswith(c) or c.startswith(code[:3]) for c in condition_codes(rule))
