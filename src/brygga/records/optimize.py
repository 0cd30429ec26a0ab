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
  every person has exactly one observation period; otherwise the compiler joins as before).

The stamp in the file name is a hash of ``manifest.json`` and ``LAYOUT``: a regenerated region,
or a new layout, simply has no matching file, and stale files are removed by the next build.
The file is built under a temporary name and renamed into place, so readers never see half of it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from brygga.records import schema

LAYOUT = 1  # bump when the layout below changes: old files stop matching
PREFIX = ".optimized-"
POPULATION = "population"


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
    return []


def build(region: object, *, threads: int | None = None, memory_limit: str = "3GB") -> BuildReport:
    """Write the optimized database of ``region`` (a ``Region``), replacing any stale one."""
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
        for name in region.tables():
            glob = region.parquet_glob(name).replace("'", "''")
            keys = order_by(schema.table(name))
            order = f" ORDER BY {', '.join(keys)}" if keys else ""
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{glob}'){order}")
            rows[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
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
        SELECT p.person_id, p.gender_concept_id, p.year_of_birth, p.month_of_birth,
               p.day_of_birth, p.municipality_code,
               op.observation_period_start_date, op.observation_period_end_date,
               d.death_date
        FROM person p
        JOIN observation_period op USING (person_id)
        LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM death GROUP BY 1) d
          USING (person_id)
        ORDER BY p.person_id
        """
    )
    return True
