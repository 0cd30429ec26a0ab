"""A region's query-optimized copy: one DuckDB database file beside its Parquet tables.

``brygga optimize REGION`` writes ``REGION/.optimized-<stamp>.duckdb`` once. ``Region.duckdb()``
attaches it read-only when present, so every DuckDB user of the region (the cohort engine above
all) reads native DuckDB storage instead of Parquet:

* event tables sorted by (source code, date, person): a code filter (compiled as a range) and a
  date window both prune row groups by their min/max zone maps, so "HbA1c in the last year"
  reads only that code's last-year row groups, not every HbA1c value of thirty years;
* visits sorted by (visit type, date, person), for the same reason;
* ``population``: person, observation period and death in one row per person, so the
  "alive and under observation" population is one scan instead of two joins (built only when
  every person has exactly one observation period; otherwise the compiler joins as before);
* ``person_index``: every person's *dense index* (rank of ``person_id``, 0 to n-1), and the same
  ``person_index`` column on every event table, visits and deaths. The cohort engine keeps rule
  results as bitmaps over that index: a rule then fetches the index column of its rows and sets
  bits in NumPy, instead of asking DuckDB for the distinct 63-bit person ids and joining them
  back (hash aggregation over tens of millions of rows: 5-10 times slower, measured);
* ``next_date`` on every event table and visits: the next later date on which the same person
  has a record of the same key (code, or visit type); ``next_valued_date`` likewise among
  records with a value (measurements, observations); ``prev_date``, the previous earlier date.
  A record is its key's latest on or before a date ``hi`` exactly when its date is <= ``hi`` <
  its next date, so "any visit in five years" and "the latest cholesterol" read one row per
  (key, person) instead of every record (``Compiler.as_of``);
* summaries, for rules that cannot tell them from the table: ``<table>_first`` (first and second
  date per code and person), ``<table>_codes`` (the distinct codes) and ``observation_runs``
  (``Compiler.source`` argues why each is exact).

The stamp in the file name is a hash of ``manifest.json`` and ``LAYOUT``: a regenerated region,
or a new layout, simply has no matching file, and stale files are removed by the next build.
The file is built under a temporary name and renamed into place, so readers never see half of it.
"""

from __future__ import annotations

__all__ = [
    "LAYOUT",
    "NEXT_DATE",
    "NEXT_START",
    "NEXT_VALUED_DATE",
    "PERSON_INDEX",
    "POPULATION",
    "PREFIX",
    "PREV_DATE",
    "RUN_TABLES",
    "SECOND_DATE",
    "BuildReport",
    "build",
    "codes_table",
    "database_path",
    "find",
    "first_table",
    "indexed",
    "order_by",
    "record_key",
    "runs_table",
    "stamp",
    "valued",
]

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from brygga.records import schema

LAYOUT = 4  # bump when the layout below changes: old files stop matching
PREFIX = ".optimized-"
POPULATION = "population"
PERSON_INDEX = "person_index"
RUN_TABLES = ("observation",)  # status-like records: long runs of identical days
NEXT_DATE = "next_date"
NEXT_VALUED_DATE = "next_valued_date"
PREV_DATE = "prev_date"
SECOND_DATE = "second_date"
NEXT_START = "next_start"


def first_table(name: str) -> str:
    return f"{name}_first"


def runs_table(name: str) -> str:
    return f"{name}_runs"


def codes_table(name: str) -> str:
    return f"{name}_codes"


def record_key(table: schema.Table) -> list[str]:
    """The columns that, with the person, make a rule's unit: the code, or the visit type."""
    if table.code_column and table.date_column:
        return list(_code_columns(table)[:3])
    if table.name == "visit_occurrence":
        return ["visit_concept_id"]
    return []


def valued(table: schema.Table) -> bool:
    return "value_as_number" in table.column_names


def stamp(region_path: Path) -> str:
    manifest = (region_path / "manifest.json").read_bytes()
    return hashlib.sha256(manifest + f"|layout={LAYOUT}".encode()).hexdigest()[:16]


def database_path(region_path: Path) -> Path:
    return region_path / f"{PREFIX}{stamp(region_path)}.duckdb"


def find(region_path: Path) -> Path | None:
    """The current optimized database of a region, if one has been built."""
    path = database_path(region_path)
    return path if path.is_file() else None


@dataclass(frozen=True)
class BuildReport:
    path: Path
    seconds: float
    bytes: int
    tables: dict[str, int]  # rows per table
    population: bool


def order_by(table: schema.Table) -> list[str]:
    """Sort keys of the optimized copy: code, then date (so windows prune), then person."""
    if table.code_column and table.date_column:
        return [table.code_column, table.date_column, "person_id"]
    if table.name == "visit_occurrence":
        return ["visit_concept_id", "visit_start_date", "person_id"]
    if table.name == "death":
        return ["death_date", "person_id"]
    return []


def indexed(table: schema.Table) -> bool:
    """Whether the optimized copy of ``table`` carries ``person_index`` (the rule tables)."""
    return bool(order_by(table))


def build(
    region: object,
    *,
    threads: int | None = None,
    memory_limit: str = "3GB",
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Write the optimized database of ``region`` (a ``Region``), replacing any stale one.
    ``progress`` is called with each table's name before it is built."""
    import duckdb

    from brygga.records.store import Region

    assert isinstance(region, Region)
    started = time.perf_counter()
    target = database_path(region.path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        if threads:
            con.execute(f"SET threads={int(threads)}")
        con.execute("SET memory_limit=?", [memory_limit])
        # Sorting hundreds of millions of rows spills; insertion order must follow ORDER BY.
        con.execute("SET preserve_insertion_order=true")
        rows: dict[str, int] = {}
        names = sorted(region.tables(), key=lambda n: n != "person")  # the index needs person
        for name in names:
            if progress:
                progress(name)
            glob = region.parquet_glob(name).replace("'", "''")
            table = schema.table(name)
            keys = order_by(table)
            order = f" ORDER BY {', '.join(keys)}" if keys else ""
            source = f"read_parquet('{glob}')"
            if indexed(table):
                # A LEFT join: rows of people missing from ``person`` stay (with no index).
                source = f"{source} t LEFT JOIN {PERSON_INDEX} USING (person_id)"
            con.execute(f"CREATE TABLE {name} AS SELECT *{_next_dates(table)} FROM {source}{order}")
            rows[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            if name == "person":
                con.execute(
                    f"CREATE TABLE {PERSON_INDEX} AS SELECT person_id, "
                    f"(row_number() OVER (ORDER BY person_id) - 1)::INTEGER AS {PERSON_INDEX} "
                    "FROM person ORDER BY person_id"
                )
        for name in names:
            table = schema.table(name)
            if table.code_column and table.date_column:
                if progress:
                    progress(first_table(name))
                _build_first(con, table)
                if progress:
                    progress(codes_table(name))
                _build_codes(con, table)
                if name in RUN_TABLES:
                    if progress:
                        progress(runs_table(name))
                    _build_runs(con, table)
        if progress:
            progress(POPULATION)
        population = _build_population(con)
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    for stale in region.path.glob(f"{PREFIX}*.duckdb"):
        if stale != target:
            stale.unlink(missing_ok=True)
    os.replace(tmp, target)
    return BuildReport(
        path=target,
        seconds=time.perf_counter() - started,
        bytes=target.stat().st_size,
        tables=rows,
        population=population,
    )


def _build_population(con: object) -> bool:
    """One row per person: demographics, the observation period and the death date."""
    [(periods, people)] = con.execute(  # type: ignore[attr-defined]
        "SELECT count(*), count(DISTINCT person_id) FROM observation_period"
    ).fetchall()
    if periods != people:
        return False
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE TABLE {POPULATION} AS
        SELECT p.person_id, i.person_index, p.gender_concept_id, p.year_of_birth, p.month_of_birth,
               p.day_of_birth, p.municipality_code,
               op.observation_period_start_date, op.observation_period_end_date,
               d.death_date
        FROM person p
        JOIN observation_period op USING (person_id)
        JOIN person_index i USING (person_id)
        LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM death GROUP BY 1) d
          USING (person_id)
        ORDER BY p.person_id
        """
    )
    return True


def _code_columns(table: schema.Table) -> tuple[str, str, str, str]:
    assert table.vocabulary_column and table.code_column and table.concept_column
    assert table.date_column
    return table.vocabulary_column, table.code_column, table.concept_column, table.date_column


def _next_dates(table: schema.Table) -> str:
    """The select-list tail adding ``next_date``, ``prev_date`` (and ``next_valued_date``)."""
    key = record_key(table)
    if not key:
        return ""
    d = table.date_column
    # RANGE from one day on: records on the same day share their next (later) date.
    partition = f"PARTITION BY {', '.join(key)}, person_id ORDER BY {d}"
    after = f"({partition} RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING)"
    before = f"({partition} RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 DAY PRECEDING)"
    columns = f", first_value({d}) OVER {after} AS {NEXT_DATE}"
    columns += f", last_value({d}) OVER {before} AS {PREV_DATE}"
    if valued(table):
        columns += (
            f", first_value(CASE WHEN value_as_number IS NOT NULL THEN {d} END IGNORE NULLS) "
            f"OVER {after} AS {NEXT_VALUED_DATE}"
        )
    return columns


def _build_first(con: object, table: schema.Table) -> None:
    """Each (vocabulary, code, concept, person)'s first date and second (distinct) date,
    sorted like the event table. The records of the first date share one ``next_date``: the
    second date."""
    v, c, k, d = _code_columns(table)
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE TABLE {first_table(table.name)} AS
        SELECT {v}, {c}, {k}, {PERSON_INDEX}, min({d}) AS {d},
               arg_min({NEXT_DATE}, {d}) AS {SECOND_DATE}
        FROM {table.name} WHERE {PERSON_INDEX} IS NOT NULL
        GROUP BY ALL
        ORDER BY {c}, {d}, {PERSON_INDEX}
        """
    )


def _build_codes(con: object, table: schema.Table) -> None:
    """The distinct (vocabulary, code, concept) of a table, with how many people have each."""
    v, c, k, _ = _code_columns(table)
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE TABLE {codes_table(table.name)} AS
        SELECT {v}, {c}, {k}, count(*) AS persons FROM {first_table(table.name)}
        GROUP BY ALL ORDER BY {c}
        """
    )


def _build_runs(con: object, table: schema.Table) -> None:
    """The distinct (vocabulary, code, concept) records of each person's days whose set of
    them differs from the person's previous recorded day, with ``next_start``: the person's
    next such day (whatever its codes)."""
    v, c, k, d = _code_columns(table)
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE TABLE {runs_table(table.name)} AS
        WITH days AS (
            SELECT {PERSON_INDEX}, {d},
                   list_sort(list(DISTINCT struct_pack(v := {v}, c := {c}, k := {k}))) AS s
            FROM {table.name} WHERE {PERSON_INDEX} IS NOT NULL
            GROUP BY {PERSON_INDEX}, {d}
        ), starts AS (
            SELECT {PERSON_INDEX}, {d}, s FROM (
                SELECT *, s IS DISTINCT FROM
                          lag(s) OVER (PARTITION BY {PERSON_INDEX} ORDER BY {d}) AS new
                FROM days
            ) WHERE new
        ), records AS (SELECT {PERSON_INDEX}, {d}, unnest(s) AS r FROM starts)
        SELECT r.v AS {v}, r.c AS {c}, r.k AS {k}, {PERSON_INDEX}, {d},
               first_value({d}) OVER (
                   PARTITION BY {PERSON_INDEX} ORDER BY {d}
                   RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING
               ) AS {NEXT_START}
        FROM records
        ORDER BY {c}, {d}, {PERSON_INDEX}
        """
    )
