"""The people of a request or permit: the criteria's cohort, restricted to donors when the
permit is donation-based, with the person attributes the statistics and extracts need.

Person-level data, never printed: ``statistics`` discloses counts of
it through the release gate and ``extracts`` writes it under the permit's pseudonyms.
"""

from __future__ import annotations

__all__ = ["People", "cohort_people", "read_people", "visits_before"]

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from brygga.cohort.criteria import Criteria
from brygga.cohort.engine import Engine
from brygga.records.store import Region

MALE, FEMALE = 8507, 8532


@dataclass(frozen=True)
class People:
    """One row per person, in ``person_id`` order (arrays of equal length)."""

    index_date: date
    person_id: np.ndarray
    sex: np.ndarray  # female | male | unknown
    year_of_birth: np.ndarray
    age: np.ndarray
    municipality: np.ndarray  # SCB kommunkod or "unknown"
    deprivation: np.ndarray  # "1".."5" or "unknown"
    death_date: list[date | None]

    def __len__(self) -> int:
        return len(self.person_id)

    def age_band(self) -> np.ndarray:
        bands = np.minimum((self.age // 10) * 10, 100)
        return np.array([f"{b}-{b + 9}" if b < 100 else "100+" for b in bands], dtype=object)


def cohort_people(
    engine: Engine,
    region: Region,
    criteria: Criteria,
    index_date: date,
    donors: np.ndarray | None,
) -> People:
    """The cohort of ``criteria`` on ``index_date``; only ``donors`` (sorted person_ids) when
    given (a donation-based permit)."""
    ids = np.asarray(engine.persons(criteria, index_date), dtype=np.int64)
    if donors is not None:
        ids = np.intersect1d(ids, donors, assume_unique=False)
    return read_people(region, ids, index_date)


def read_people(region: Region, ids: np.ndarray, index_date: date) -> People:
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    con = region.duckdb()
    try:
        con.register("wanted", pa.table({"person_id": ids}))
        has_death = "death" in region.tables()
        death = (
            "LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM death GROUP BY 1) d "
            "USING (person_id)"
            if has_death
            else ""
        )
        rows = con.execute(
            "SELECT p.person_id, p.gender_concept_id, p.year_of_birth, "
            "coalesce(p.month_of_birth, 1), coalesce(p.day_of_birth, 1), p.municipality_code, "
            f"p.deprivation_quintile, {'d.death_date' if has_death else 'NULL'} "
            f"FROM person p JOIN wanted USING (person_id) {death} ORDER BY p.person_id"
        ).fetchall()
    finally:
        con.close()
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 8
    pid, gender, yob, mob, dob, municipality, deprivation, death_dates = columns
    yob_a = np.asarray(yob, dtype=np.int64)
    before = (np.asarray(mob, dtype=np.int64) > index_date.month) | (
        (np.asarray(mob, dtype=np.int64) == index_date.month)
        & (np.asarray(dob, dtype=np.int64) > index_date.day)
    )
    age = index_date.year - yob_a - before.astype(np.int64)
    sex = np.array(
        ["male" if g == MALE else "female" if g == FEMALE else "unknown" for g in gender],
        dtype=object,
    )
    return People(
        index_date=index_date,
        person_id=np.asarray(pid, dtype=np.int64),
        sex=sex,
        year_of_birth=yob_a,
        age=age,
        municipality=np.array([m or "unknown" for m in municipality], dtype=object),
        deprivation=np.array(
            [str(int(d)) if d is not None else "unknown" for d in deprivation], dtype=object
        ),
        death_date=list(death_dates),
    )


def visits_before(region: Region, ids: np.ndarray, index_date: date, days: int = 365) -> np.ndarray:
    """Visits per person in the ``days`` before the index date (in ``ids`` order)."""
    if "visit_occurrence" not in region.tables() or len(ids) == 0:
        return np.zeros(len(ids), dtype=np.int64)
    con = region.duckdb()
    try:
        con.register("wanted", pa.table({"person_id": np.asarray(ids, dtype=np.int64)}))
        rows = dict(
            con.execute(
                "SELECT v.person_id, count(*) FROM visit_occurrence v JOIN wanted USING "
                "(person_id) WHERE v.visit_start_date > ?::DATE - ?::INTEGER "
                "AND v.visit_start_date <= ?::DATE GROUP BY 1",
                [index_date, days, index_date],
            ).fetchall()
        )
    finally:
        con.close()
    return np.array([rows.get(int(i), 0) for i in ids], dtype=np.int64)
