"""Who counts on an index date: the one population definition.

A person counts on day ``d`` when an observation period holds ``d`` (start <= d <= end) and no
death is recorded on or before ``d``. Their age is in completed years on ``d`` (a missing month
or day of birth counts as the first), their sex comes from ``gender_concept_id``
(``records.codes.SEX_OF_GENDER``).

Every engine and every caller takes its people from here: feasibility and matching (through the
compiler), prevention's inputs (``brygga risk``, ``program``, ``equity``, ``evaluate``), the
demo's example and the synthetic region's calibration report. The pure-Python reference
evaluator (``reference.py``) states the same rule again on purpose: it is the specification the
engines are tested against, so it must not share their code.
"""

from __future__ import annotations

__all__ = [
    "ENTRY_DATE",
    "DuckDBViews",
    "Tables",
    "age_on",
    "born_ymd",
    "completed_years",
    "counted",
    "entered",
    "population",
    "population_at_entry",
    "sex_of",
    "step_description",
    "ymd",
]

from datetime import date
from typing import Any, Protocol

import numpy as np

from brygga.records import codes as codebook
from brygga.records.optimize import POPULATION
from brygga.records.store import quiet_duckdb
from brygga.util import lazy_module

# Imported on first use, for start-up time: a question answered from stored bitmaps needs no Ibis.
ibis = lazy_module("ibis")
ir = lazy_module("ibis.expr.types")


class Tables(Protocol):
    """An Ibis table per region table (or None when the region lacks it)."""

    def table(self, name: str) -> ir.Table | None: ...


def step_description(index_date: date, entry: Any = None) -> str:
    """The first line of every attrition table (``entry``: the criteria's ``Entry``, when
    each person has their own index date)."""
    if entry is not None:
        return f"Entered: {entry.describe()}"
    return f"Alive and under observation on {index_date.isoformat()}"


def counted(tables: Tables, index_date: date) -> ir.Table:
    """The person-level rows of everyone who counts on ``index_date``.

    On an optimized region (``records/optimize.py``) these are rows of its ``population``
    table (person, observation period and death in one row: no join); otherwise ``person``
    rows. Both have ``person_id``, ``gender_concept_id``, the birth date parts and
    ``municipality_code``."""
    idx = index_date
    p = tables.table(POPULATION)
    if p is not None:
        return p.filter(
            (p.observation_period_start_date <= idx)
            & (p.observation_period_end_date >= idx)
            & (p.death_date.isnull() | (p.death_date > idx))
        )
    person, op, death = (_required(tables, n) for n in ("person", "observation_period", "death"))
    observed = op.filter(
        (op.observation_period_start_date <= idx) & (op.observation_period_end_date >= idx)
    ).select("person_id")
    dead = death.filter(death.death_date <= idx).select("person_id")
    return person.semi_join(observed, "person_id").anti_join(dead, "person_id")


ENTRY_DATE = "entry_date"


def entered(tables: Tables, entries: ir.Table) -> ir.Table:
    """Each person's own index date: the person-level rows of those whose ``entries`` date
    (a table of ``person_id`` and ``entry_date``, one row per person) lies in an observation
    period (both ends inclusive) and who did not die before it. A death on the entry date or
    after it is kept: a historical cohort counts those who died later."""
    p = tables.table(POPULATION)
    if p is not None:
        j = p.join(entries, "person_id")
        return j.filter(
            (j.observation_period_start_date <= j[ENTRY_DATE])
            & (j.observation_period_end_date >= j[ENTRY_DATE])
            & (j.death_date.isnull() | (j.death_date >= j[ENTRY_DATE]))
        )
    person, op, death = (_required(tables, n) for n in ("person", "observation_period", "death"))
    o = op.join(entries, "person_id")
    observed = o.filter(
        (o.observation_period_start_date <= o[ENTRY_DATE])
        & (o.observation_period_end_date >= o[ENTRY_DATE])
    ).select("person_id")
    d = death.join(entries, "person_id")
    dead = d.filter(d.death_date < d[ENTRY_DATE]).select("person_id")
    rows = person.join(entries, "person_id")
    return rows.semi_join(observed, "person_id").anti_join(dead, "person_id")


def population_at_entry(tables: Tables, entries: ir.Table) -> ir.Table:
    """``population`` at each person's own index date (``entered``), with ``entry_date``."""
    p = entered(tables, entries)
    day = p[ENTRY_DATE]
    on = (day.year() * 10000 + day.month() * 100 + day.day()).cast("int64")
    age = ((on - born_ymd(p)) // 10000).cast("int32")
    return p.select(
        person_id=p.person_id.cast("int64"),
        gender_concept_id=p.gender_concept_id,
        sex=sex_of(p),
        age=age,
        age_band=((age // 10) * 10).cast("int32"),
        municipality=p.municipality_code,
        entry_date=day,
    )


def age_on(p: ir.Table, index_date: date) -> ir.IntegerValue:
    """Completed years on ``index_date`` (a missing month or day of birth: the first)."""
    idx = index_date
    month = p.month_of_birth.fill_null(1)
    day = p.day_of_birth.fill_null(1)
    before_birthday = (month > idx.month) | ((month == idx.month) & (day > idx.day))
    return (idx.year - p.year_of_birth - ibis.ifelse(before_birthday, 1, 0)).cast("int32")


def born_ymd(p: ir.Table) -> ir.IntegerValue:
    """The birth date as the integer YYYYMMDD (a missing month or day: the first), so that
    completed years on a day D are ``(D as YYYYMMDD - born) // 10000``, as ``age_on`` says."""
    return (
        p.year_of_birth * 10000 + p.month_of_birth.fill_null(1) * 100 + p.day_of_birth.fill_null(1)
    ).cast("int64")


def ymd(day: date) -> int:
    """A date as the integer YYYYMMDD."""
    return day.year * 10000 + day.month * 100 + day.day


def completed_years(later_ymd: Any, born: Any) -> Any:
    """``age_on`` for YYYYMMDD integers (scalars or NumPy arrays; NaN stays NaN): a birthday
    counts from its day, so the completed years are the difference's ten-thousands."""
    return np.floor((later_ymd - born) / 10000)


def sex_of(p: ir.Table) -> ir.StringValue:
    cases = [
        (p.gender_concept_id == concept, sex) for concept, sex in codebook.SEX_OF_GENDER.items()
    ]
    return ibis.cases(*cases, else_="unknown")


def population(tables: Tables, index_date: date) -> ir.Table:
    """Everyone who counts, with what the criteria's demographics and the breakdowns need."""
    p = counted(tables, index_date)
    age = age_on(p, index_date)
    return p.select(
        person_id=p.person_id.cast("int64"),
        gender_concept_id=p.gender_concept_id,
        sex=sex_of(p),
        age=age,
        age_band=((age // 10) * 10).cast("int32"),
        municipality=p.municipality_code,
    )


class DuckDBViews:
    """A DuckDB connection's views as Ibis tables, for callers that run SQL of their own (the
    calibration report): they take the population from here and compile it with ``sql``.
    (Prevention's inputs take the engine's tables: ``engines.IbisEngine.table``.)"""

    def __init__(self, con: Any) -> None:
        with quiet_duckdb():  # Ibis reads schemas through a DuckDB call that now warns
            self.backend = ibis.duckdb.from_connection(con)
        self.views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}

    def table(self, name: str) -> Any:
        if name not in self.views:
            return None
        with quiet_duckdb():
            return self.backend.table(name)

    def sql(self, expr: ir.Table) -> str:
        with quiet_duckdb():
            return str(self.backend.compile(expr))


def _required(tables: Tables, name: str) -> ir.Table:
    t = tables.table(name)
    if t is None:
        raise KeyError(f"the region has no {name} table")
    return t
