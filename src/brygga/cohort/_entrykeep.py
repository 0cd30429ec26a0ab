"""Each person's own index date (``entry``) on the DuckDB engine, kept like an index date.

A global question reuses its index date's population and its rules' bitmaps; an ``entry``
question asked through the plain plan (``compile.py``) would instead find every person's entry
date again (a grouping over every record of the entry event), join the population and every
rule to those dates, and keep nothing. The bitmap engine (``bitmaps.py``) therefore keeps, per
entry definition (``entry_key``: a hash of the ``entry`` block; the engine belongs to one
region and its kept bitmaps on disk to one optimized database):

* the **entries** as a DuckDB temporary table (``table_name``): ``person_index``,
  ``person_id`` and ``entry_date`` (the compiler's ``entries``: found once, not in every rule's
  query); on an optimized region also on disk (``stored.StoredSets.entries``: dense index and
  entry date), so that a new process asking a kept entry question needs no query at all;
* the **entered people** as the engine's ``Population`` for that entry (ages at each person's
  entry date; alive = entered): ``population.entered``, the one definition (under observation on
  the entry date, no death before it), on the optimized region's arrays (``stored.entered``) or
  as SQL (``population_sql``);
* one **bitmap per rule**, keyed by (entry key, rule hash) in the same ``Kept`` as the global
  rules (and on disk like them, ``stored.py``): the compiler's rule relative to each person's
  entry date, reading the entered people from the temporary table (``entries``) rather than
  finding the entry dates again.

A question is then the same bitmap algebra as a global one, with the same answers as the
plain plan (the spec tests run every engine, on hand-made rows and generated ones).
"""

from __future__ import annotations

__all__ = [
    "ENTRY_PREFIX",
    "days_sql",
    "entries",
    "entries_sql",
    "entry_key",
    "population_sql",
    "table_name",
]

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

from brygga.cohort.compile import Compiler
from brygga.cohort.criteria import Entry
from brygga.cohort.population import ENTRY_DATE, Tables
from brygga.records import schema
from brygga.records.optimize import PERSON_INDEX, first_table
from brygga.util import lazy_module

# Imported on first use, for start-up time: a new process answering an entry question from
# kept bitmaps needs no compiler (tests/spec/test_cold_imports.py).
ibis = lazy_module("ibis")
ir = lazy_module("ibis.expr.types")

# The first part of an entry's keys (kept populations, rule bitmaps and their file names):
# never an ISO date, so an entry's bitmaps never meet an index date's.
ENTRY_PREFIX = "entry-"


def entry_key(entry: Entry) -> str:
    """The entry definition's key: a hash of its canonical JSON (event, occurrence, period)."""
    canonical = json.dumps(entry.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return ENTRY_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def table_name(key: str) -> str:
    """The DuckDB temporary table of an entry's entered people."""
    return "brygga_" + key.replace("-", "_")


def entries_sql(
    tables: Tables,
    entry: Entry,
    index_date: date,
    index_table: str,
    to_sql: Callable[[Any], str],
) -> str:
    """The statement creating the entry's temporary table: each person's entry date (one row
    per person whose date lies in the period), with their dense index (the index table's
    ``person_index``)."""
    name = table_name(entry_key(entry))
    firsts = _first_dates(tables, entry, index_date)
    if firsts is not None:
        return (
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            f"SELECT e.{PERSON_INDEX}, x.person_id, e.{ENTRY_DATE} FROM ({to_sql(firsts)}) e "
            f"JOIN {index_table} x ON e.{PERSON_INDEX} = x.{PERSON_INDEX}"
        )
    found = to_sql(Compiler(tables, index_date, entry=entry).entries())
    return (
        f"CREATE OR REPLACE TEMP TABLE {name} AS "
        f"SELECT x.{PERSON_INDEX}, e.person_id, e.{ENTRY_DATE} FROM ({found}) e "
        f"JOIN {index_table} x ON e.person_id = x.person_id"
    )


def _first_dates(tables: Tables, entry: Entry, index_date: date) -> ir.Table | None:
    """``Compiler.entries`` of a ``first`` entry without a value range, read from the optimized
    region's first dates (``records/optimize.py``: each code's first date per person, far fewer
    rows than the records): a person's first record of the codes is the earliest first date of
    those codes. (person_index, entry_date); None where that table is missing."""
    spec = entry.spec
    if entry.occurrence != "first" or getattr(spec, "value", None) is not None:
        return None
    firsts = tables.table(first_table(spec.TABLE))
    if firsts is None or PERSON_INDEX not in firsts.columns:
        return None
    rows = firsts.filter(Compiler(tables, index_date).codes_ok(firsts, spec, spec.codeset))
    day = rows[schema.table(spec.TABLE).date_column]
    dates = rows.group_by(PERSON_INDEX).aggregate(**{ENTRY_DATE: day.min()})
    when = dates[ENTRY_DATE]
    return dates.filter((when >= entry.period.start) & (when <= entry.period.end))


def days_sql(entry: Entry) -> str:
    """The temporary table's (``i``, ``ymd``: the entry date as YYYYMMDD), by ``i``."""
    day = ENTRY_DATE
    return (
        f"SELECT {PERSON_INDEX} AS i, (year({day}) * 10000 + month({day}) * 100 + day({day}))::INTEGER AS ymd "
        f"FROM {table_name(entry_key(entry))} ORDER BY 1"
    )


def population_sql(
    tables: Tables, entry: Entry, index_date: date, to_sql: Callable[[Any], str]
) -> str:
    """The entered people with their dense index ``i``, by ``i``: what ``Population.from_arrow``
    reads (a region without arrays)."""
    people = to_sql(Compiler(tables, index_date, entry=entry, entries=entries(entry)).population())
    return (
        f"SELECT e.{PERSON_INDEX} AS i, p.* FROM ({people}) p "
        f"JOIN {table_name(entry_key(entry))} e ON p.person_id = e.person_id ORDER BY 1"
    )


def entries(entry: Entry, key: str = "person_id") -> ir.Table:
    """The entry's temporary table as the compiler's ``entries`` (``key``, entry_date): with
    ``key`` ``person_index`` the rules' tables are joined on it (an int32 join: a third faster
    than on ``person_id`` at Stockholm 1.0, measured). An unbound Ibis table: it compiles to the
    table's name, which DuckDB resolves on the engine's connection (where ``entries_sql``
    created it)."""
    kind = "int32" if key == PERSON_INDEX else "int64"
    return ibis.table({key: kind, ENTRY_DATE: "date"}, name=table_name(entry_key(entry)))
