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

The stamp in the file name is a hash of ``manifest.json``, ``LAYOUT`` and every table file's
size and modification time (``fingerprints``): a regenerated region, a table whose files changed,
or a new layout, simply has no matching file, and stale files are removed by the next build.
The file is built under a temporary name and renamed into place, so readers never see half of it.

**Incremental.** Each build records, per *unit* (a source table with what is derived from it),
the fingerprints of the tables it was built from (``_brygga_build``). The next build starts from
a copy of the previous database and rebuilds only the units whose inputs changed: a changed event
table rebuilds itself and its summaries; a changed ``person`` rebuilds the person index and so
every indexed table; ``population`` follows ``person``, ``observation_period`` and ``death``.

**Arrays for a cold start** (``<database>.arrays/``, beside the file): the population's columns
by dense person index (person id, birth date, observation period, death, sex concept,
municipality) and the record keys, as ``.npy`` files a new process memory-maps, so that the
population on any index date is NumPy work instead of a DuckDB query (``cohort/stored.py``).
The cohort engine also keeps the rule bitmaps it computes in ``<database>.arrays/bitmaps/``;
they belong to this file's stamp, so a changed region never sees them.
"""

from __future__ import annotations

__all__ = [
    "LAYOUT",
    "MEMORY_LIMIT",
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
    "arrays_path",
    "build",
    "codes_table",
    "database_path",
    "find",
    "fingerprints",
    "first_table",
    "indexed",
    "order_by",
    "record_key",
    "runs_table",
    "stamp",
    "units",
    "valued",
]

import contextlib
import hashlib
import itertools
import json
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brygga.records import code_arrays, schema

LAYOUT = 5  # bump when the layout below changes: old files stop matching
PREFIX = ".optimized-"
POPULATION = "population"
PERSON_INDEX = "person_index"
RUN_TABLES = ("observation",)  # status-like records: long runs of identical days
NEXT_DATE = "next_date"
NEXT_VALUED_DATE = "next_valued_date"
PREV_DATE = "prev_date"
SECOND_DATE = "second_date"
NEXT_START = "next_start"
BUILD_TABLE = "_brygga_build"  # unit -> fingerprint of its inputs (incremental builds)
ARRAYS = ".arrays"
# DuckDB's memory limit while building (the sorts spill beyond it). The process's peak is
# this plus the Parquet parts in flight and the arrays' writer: under 8 GB at scale 1.0.
MEMORY_LIMIT = "5GB"
# The next dates computed in NumPy as the parts stream in (``_build_grouped``); False: by the
# window functions in SQL, for every table (``bench/optimize.py --sql-windows`` compares them).
_GROUPED = True
# Per row of a bucket (``_bucket_rows``): a bucket sorted in NumPy is in memory once as Arrow
# (about 100 bytes a row for the measurements, 70 for conditions), with its sort keys (40
# bytes) and two slices being appended, while DuckDB, appending, needs little of its memory
# limit: 12.5 M rows at the 5 GB default. A larger code goes to DuckDB's sort (which held
# 16 M measurement rows in about 4.5 GB), sorted by date and person alone: for one code of
# 13-35 M rows as fast as NumPy's ``argsort`` and gather, or faster (scale 1.0: 350 bytes a
# row sent five measurement codes of 13 M rows to NumPy and the measurements took 184.5 s
# instead of 167-169 s). At 200 bytes (25 M rows) the build peaked at 10.2 GB.
_SORT_BYTES_PER_ROW = 400
_SLICE_ROWS = 1 << 22  # rows of a sorted bucket appended at once (``_sort_bucket``)


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


def fingerprints(region_path: Path) -> dict[str, str]:
    """Each table's fingerprint: its Parquet files' names, sizes and modification times (a
    stat each, no reading: cheap enough for every question), and its manifest row count."""
    manifest = json.loads((region_path / "manifest.json").read_text())
    rows = manifest.get("row_counts", {})
    found: dict[str, str] = {}
    for name in schema.TABLES:
        single = region_path / f"{name}.parquet"
        folder = region_path / name
        files = [single] if single.is_file() else []
        if not files and folder.is_dir():
            files = sorted(folder.glob("*.parquet"))
        if not files and not folder.is_dir():
            continue
        parts = [f"rows={rows.get(name)}"]
        for f in files:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
        found[name] = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return found


def stamp(region_path: Path) -> str:
    manifest = (region_path / "manifest.json").read_bytes()
    tables = json.dumps(fingerprints(region_path), sort_keys=True)
    return hashlib.sha256(manifest + f"|layout={LAYOUT}|{tables}".encode()).hexdigest()[:16]


def database_path(region_path: Path) -> Path:
    return region_path / f"{PREFIX}{stamp(region_path)}.duckdb"


def arrays_path(database: Path) -> Path:
    """The folder of a database's arrays (``.npy``) and kept rule bitmaps."""
    return database.with_name(database.name + ARRAYS)


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
    rebuilt: list[str]  # the units built by this run (all of them without a previous build)
    max_rss_mb: int = 0  # the process's peak resident memory after the build


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


def units(tables: list[str]) -> dict[str, set[str]]:
    """Each unit of an incremental build and the source tables it is built from: a table
    (with its person index column and summaries: also ``person``), and the population."""
    found = {
        name: {name} | ({"person"} if indexed(schema.table(name)) else set()) for name in tables
    }
    found[POPULATION] = {"person", "observation_period", "death"} & set(tables)
    return found


def build(
    region: object,
    *,
    threads: int | None = None,
    memory_limit: str = MEMORY_LIMIT,
    progress: Callable[[str], None] | None = None,
    incremental: bool = True,
) -> BuildReport:
    """Write the optimized database of ``region`` (a ``Region``), replacing any stale one.
    ``progress`` is called with each table's name before it is built. ``incremental``: start
    from the previous build and rebuild only the units whose input tables changed."""
    import duckdb

    from brygga.records.store import Region

    assert isinstance(region, Region)
    started = time.perf_counter()
    target = database_path(region.path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # person first (the index needs it), then the largest tables: their code arrays are then
    # written while only small tables are left to build (``_EarlyArrays``).
    sizes = region.row_counts
    names = sorted(region.tables(), key=lambda n: (n != "person", -sizes.get(n, 0), n))
    prints = fingerprints(region.path)
    wanted = {
        unit: hashlib.sha256(
            f"{LAYOUT}|{json.dumps({t: prints.get(t) for t in sorted(inputs)})}".encode()
        ).hexdigest()[:16]
        for unit, inputs in units(names).items()
    }
    previous = _previous(region.path, target) if incremental else None
    done: dict[str, str] = {}
    if previous == target and (current := _current(target, wanted, memory_limit)) is not None:
        return current  # nothing changed: no copy, and the kept rule bitmaps stay (the code
        # arrays missing from an older build are added: ``_current``)
    if previous is not None:
        shutil.copyfile(previous, tmp)
    con = duckdb.connect(str(tmp))
    arrays = arrays_path(target)
    old_arrays = arrays_path(previous) if previous is not None else None
    early = _EarlyArrays(con, arrays, wanted, old_arrays)
    try:
        if threads:
            con.execute(f"SET threads={int(threads)}")
        con.execute("SET memory_limit=?", [memory_limit])
        # DuckDB's allocator otherwise keeps the memory a sort freed: at scale 1.0 the
        # measurements' build held 3.3 GB more than DuckDB and Arrow had in use (6.95 GB peak
        # against 6.0 GB with the allocator's threads returning it).
        con.execute("SET allocator_background_threads=true")
        # Sorting hundreds of millions of rows spills; insertion order must follow ORDER BY.
        con.execute("SET preserve_insertion_order=true")
        if previous is not None:
            done = dict(con.execute(f"SELECT unit, fingerprint FROM {BUILD_TABLE}").fetchall())
        rebuild = [u for u in [*names, POPULATION] if done.get(u) != wanted[u]]
        con.execute(f"CREATE OR REPLACE TABLE {BUILD_TABLE} (unit VARCHAR, fingerprint VARCHAR)")
        existing = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name in existing:
            base = _unit_of(name, names)
            if base is not None and base not in names:  # a table the region no longer has
                con.execute(f"DROP TABLE {name}")
        for name in names:
            if name not in rebuild:
                continue
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
            grouped = _GROUPED and record_key(table)
            rows = _bucket_rows(memory_limit)
            firsts = _build_grouped(con, region, table, rows) if grouped else None
            if firsts is None:  # the general route: window functions in SQL
                con.execute(
                    f"CREATE OR REPLACE TABLE {name} AS SELECT *{_next_dates(table)} "
                    f"FROM {source}{order}"
                )
            if name == "person":
                con.execute(
                    f"CREATE OR REPLACE TABLE {PERSON_INDEX} AS SELECT person_id, "
                    f"(row_number() OVER (ORDER BY person_id) - 1)::INTEGER AS {PERSON_INDEX} "
                    "FROM person ORDER BY person_id"
                )
            if table.code_column and table.date_column:
                if progress:
                    progress(first_table(name))
                if firsts is not None:
                    _build_first_from(con, table, firsts)
                else:
                    _build_first(con, table)
                if progress:
                    progress(codes_table(name))
                _build_codes(con, table)
                if name in RUN_TABLES:
                    if progress:
                        progress(runs_table(name))
                    _build_runs(con, table)
            if name in code_arrays.TABLES:
                early.hold([name, f"{name}{code_arrays.FIRST}"])
            left = [n for n in names[names.index(name) + 1 :] if n in rebuild]
            if all(sizes.get(n, 1 << 62) <= rows for n in left):
                early.release()  # written while the small tables are built
        # What is left scans and writes (the population, the arrays): DuckDB's cache of the
        # blocks it read would otherwise grow to the sorts' limit beside the arrays' writers.
        if (limit := _limit_bytes(memory_limit)) < 1 << 62:
            con.execute("SET memory_limit=?", [f"{limit // 2_000_000}MB"])
        early.widen()  # nothing else to build: the arrays held are written two at a time
        rows = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in names
        }
        population = POPULATION in existing and POPULATION not in rebuild
        if POPULATION in rebuild:
            if progress:
                progress(POPULATION)
            con.execute(f"DROP TABLE IF EXISTS {POPULATION}")
            population = _build_population(con)
        con.executemany(f"INSERT INTO {BUILD_TABLE} VALUES (?, ?)", list(wanted.items()))
        early.finish()
        con.execute("CHECKPOINT")
        if not population:  # no arrays without the population (written early all the same)
            shutil.rmtree(arrays, ignore_errors=True)
        if population and (
            {POPULATION, "person_key"} & set(rebuild)
            or old_arrays is None
            or not old_arrays.is_dir()
        ):
            _write_arrays(con, arrays, "person_key" in names)
        elif population and old_arrays is not None and old_arrays != arrays:
            _copy_arrays(old_arrays, arrays)
        if population:  # the rule tables as arrays (a changed table's only)
            code_arrays.build(con, arrays, wanted, old_arrays)
    except BaseException:
        early.finish(raising=False)
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    for stale in region.path.glob(f"{PREFIX}*"):
        if stale not in (target, arrays_path(target)) and not stale.name.endswith(".tmp"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
    os.replace(tmp, target)
    import resource

    return BuildReport(
        path=target,
        seconds=time.perf_counter() - started,
        bytes=target.stat().st_size,
        tables=rows,
        population=population,
        rebuilt=rebuild,
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    )


class _EarlyArrays:
    """The code arrays of each rule table (``code_arrays.build``), written in a thread on a
    cursor of its own while the small tables are built, and in two once every table is
    (``widen``): writing them is mostly
    single-threaded NumPy and file writing, and the table builds leave a core partly idle
    (before, 82 s of the build at scale 1.0 came after every table, the arrays and the
    population). Held (``hold``) until only tables that sort within the memory limit are
    left (``release``): beside a large table's DuckDB sort, the thread took the peak memory
    at scale 1.0 from 7.2 to 9.9 GB. The final ``code_arrays.build`` then finds them
    complete."""

    def __init__(self, con: Any, arrays: Path, wanted: dict[str, str], old: Path | None) -> None:
        self.con, self.arrays, self.wanted, self.old = con, arrays, wanted, old
        self.tasks: queue.Queue[Any] = queue.Queue()
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.held: list[list[str]] = []

    def hold(self, names: list[str]) -> None:
        self.held.append(names)

    def release(self) -> None:
        for names in self.held:
            self.submit(names)
        self.held = []

    def submit(self, names: list[str]) -> None:
        if not self.threads:
            self._start()
        self.tasks.put(names)

    def widen(self) -> None:
        """A second writer, once the tables are built: the rest of the build waits for the
        arrays (at scale 1.0 the step after the last table took 80-99 s on one core)."""
        self.release()
        if len(self.threads) == 1:
            self._start()

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, args=(self.con.cursor(),))
        self.threads.append(thread)
        thread.start()

    def _work(self, cursor: Any) -> None:
        try:
            while (names := self.tasks.get()) is not None:
                if not self.stop.is_set():
                    code_arrays.build(cursor, self.arrays, self.wanted, self.old, names=names)
        except BaseException as exc:  # re-raised by ``finish``
            self.errors.append(exc)
            self.stop.set()  # the rest is left to the final build
            while self.tasks.get() is not None:
                pass
        finally:
            cursor.close()

    def finish(self, raising: bool = True) -> None:
        """Wait for the arrays submitted (``raising=False``: only the one being written) and
        re-raise the thread's error (``raising``)."""
        if self.threads:
            if not raising:
                self.stop.set()
            for _ in self.threads:
                self.tasks.put(None)
            for thread in self.threads:
                thread.join()
            self.threads = []
        if raising and self.errors:
            raise self.errors[0]


def _current(target: Path, wanted: dict[str, str], memory_limit: str) -> BuildReport | None:
    """The report of ``target`` when every unit is built from the tables as they are."""
    import resource

    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(target), read_only=True)
    try:
        con.execute("SET memory_limit=?", [memory_limit])  # the code arrays read every table
        done = dict(con.execute(f"SELECT unit, fingerprint FROM {BUILD_TABLE}").fetchall())
        if done != wanted:
            return None
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        rows = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            for name in wanted
            if name != POPULATION
        }
        if arrays_path(target).is_dir():  # a build from before the code arrays gains them
            code_arrays.build(con, arrays_path(target), wanted)
    finally:
        con.close()
    return BuildReport(
        path=target,
        seconds=time.perf_counter() - started,
        bytes=target.stat().st_size,
        tables=rows,
        population=POPULATION in tables,
        rebuilt=[],
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    )


def _previous(region_path: Path, target: Path) -> Path | None:
    """The most recent earlier build with this layout's bookkeeping, to start from."""
    import duckdb

    candidates = sorted(
        (p for p in region_path.glob(f"{PREFIX}*.duckdb") if p.is_file()),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    for path in candidates:
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            continue
        try:
            tables = {
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            if BUILD_TABLE in tables:
                units = dict(con.execute(f"SELECT unit, fingerprint FROM {BUILD_TABLE}").fetchall())
                if units:
                    return path
        finally:
            con.close()
    return None


def _unit_of(table_name: str, names: list[str]) -> str | None:
    """The source table a table of the database belongs to (None: bookkeeping, population)."""
    if table_name in (BUILD_TABLE, POPULATION):
        return None
    if table_name == PERSON_INDEX:
        return "person"
    for suffix in ("_first", "_codes", "_runs"):
        base = table_name.removesuffix(suffix)
        if base != table_name and base in schema.TABLES:
            return base
    return table_name


def _write_arrays(con: object, folder: Path, keys: bool) -> None:
    """The population's columns by dense person index, as ``.npy`` files (memory-mapped by a
    new process: ``cohort/stored.py``). Dates are YYYYMMDD integers; no death, or no
    observation period, is a day after any index date. Written into a new folder, renamed
    into place."""
    import numpy as np

    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    never = 99_999_999
    table = con.sql(  # type: ignore[attr-defined]
        f"""
        SELECT i.person_id::BIGINT AS person_id,
               coalesce(p.year_of_birth * 10000 + coalesce(p.month_of_birth, 1) * 100
                        + coalesce(p.day_of_birth, 1), 0)::INTEGER AS born,
               coalesce(strftime(p.observation_period_start_date, '%Y%m%d')::INTEGER, {never})
                   AS start,
               coalesce(strftime(p.observation_period_end_date, '%Y%m%d')::INTEGER, 0) AS stop,
               coalesce(strftime(p.death_date, '%Y%m%d')::INTEGER, {never}) AS death,
               coalesce(p.gender_concept_id, -1)::BIGINT AS gender,
               p.municipality_code AS municipality
        FROM {PERSON_INDEX} i LEFT JOIN {POPULATION} p USING (person_index)
        ORDER BY i.{PERSON_INDEX}
        """
    ).to_arrow_table()
    for name in ("person_id", "born", "start", "stop", "death", "gender"):
        np.save(tmp / f"{name}.npy", table.column(name).to_numpy())
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(table.column("municipality").combine_chunks())
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    np.save(tmp / "municipality.npy", indices)
    (tmp / "municipalities.json").write_text(json.dumps(encoded.dictionary.to_pylist()))
    if keys:
        found = con.sql(  # type: ignore[attr-defined]
            f"SELECT i.{PERSON_INDEX} AS i, k.record_key FROM person_key k "
            f"JOIN {PERSON_INDEX} i USING (person_id) WHERE k.record_key IS NOT NULL"
        ).to_arrow_table()
        size = len(table)
        record_key = np.full(size, np.nan, dtype=np.float64)
        record_key[found.column("i").to_numpy()] = found.column("record_key").to_numpy()
        np.save(tmp / "record_key.npy", record_key)
    (tmp / "complete").write_text(str(LAYOUT))
    codes = folder / code_arrays.FOLDER
    if codes.is_dir():  # kept: ``code_arrays.build`` rewrites only the changed tables'
        os.replace(codes, tmp / code_arrays.FOLDER)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _copy_arrays(source: Path, folder: Path) -> None:
    """The arrays of a previous build whose population did not change (no kept bitmaps: the
    rules' tables may have)."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # The code arrays are linked per table by ``code_arrays.build``, not copied.
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("bitmaps", code_arrays.FOLDER))
    codes = folder / code_arrays.FOLDER
    if codes.is_dir():  # the code arrays this build already wrote (``_EarlyArrays``)
        os.replace(codes, tmp / code_arrays.FOLDER)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


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


def _bucket_rows(memory_limit: str) -> int:
    """The most rows one sort of ``_build_grouped`` takes under ``memory_limit`` without
    spilling: DuckDB held 16 M measurement rows (18 columns) sorting in about 4.5 GB."""
    return max(_limit_bytes(memory_limit) // _SORT_BYTES_PER_ROW, 1)


def _limit_bytes(memory_limit: str) -> int:
    """DuckDB's ``memory_limit`` setting in bytes (unreadable: as good as no limit)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(I?B)?\s*", memory_limit.upper())
    if match is None:
        return 1 << 62
    power = " KMGT".index(match.group(2) or " ")
    return int(float(match.group(1)) * (1024 if match.group(3) == "IB" else 1000) ** power)


def _build_grouped(
    con: Any, region: Any, table: schema.Table, bucket_rows: int = 1 << 62
) -> list[Any] | None:
    """Build ``table``'s optimized copy (sorted by ``order_by``, as the general route's
    ``CREATE TABLE ... ORDER BY``) with its person index and next dates computed in NumPy, part
    by part. Returns the first-date rows of every (code, person) for ``_build_first_from``;
    None, having built nothing, when the parts are not laid out as this needs: no null date,
    no person in two parts, no duplicate ``person_id`` in ``person``. Then the window functions
    in SQL do the work.

    The table is built in buckets appended in order: runs of whole codes of at most
    ``bucket_rows`` rows, or one larger code (the ordinary visit type). A bucket of at most
    ``bucket_rows`` rows is read from every part, sorted in NumPy (``_sorted_bucket``: one
    ``argsort`` of an integer key of code rank, day and person index) and appended to DuckDB
    as it is, slice by slice (``_sort_bucket``): DuckDB then only compresses and writes,
    with all its threads (a plain append of 10 M condition rows took 3 s of CPU against 13 s
    for its sort of them from a Python stream; scale 0.1, loaded machine). A larger code
    streams into DuckDB's ``ORDER BY`` (``_stream_bucket``; the sort may spill). Each part
    is read once: its row groups in order, the rows of a row group beyond one bucket kept
    for the next (``_PartReader``; before, each bucket decoded again the row groups it
    shared with its neighbours: a cause of the measurements' superlinear time at 1.0). Splitting a large code by days was measured and
    dropped: each bucket of days must read the code's every row for the next dates (scale
    1.0: measurements 473 s of CPU instead of about 300).

    Why: the window functions sort every table a second time, partitioned by (code, person),
    while each part already holds its people's records together (the writer sorts a part by
    code, person and date; a part that is not is sorted here); and a sort larger than the
    memory limit spills (18 GB of temporary files for the measurements at scale 1.0). The
    result is the same table (``tests/spec/test_optimize_routes.py``)."""
    path = region.table_path(table.name)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    ids = con.execute(f"SELECT person_id FROM {PERSON_INDEX} ORDER BY {PERSON_INDEX}").fetchnumpy()
    ids = np.asarray(ids["person_id"], dtype=np.int64)
    if not files or (len(ids) > 1 and not (ids[1:] > ids[:-1]).all()):
        return None
    firsts: list[Any] = []
    shape: list[Any] = []  # the first bucket's schema: every part must have it
    readers = [_PartReader(f, order_by(table)[0]) for f in files]
    # Parts read and prepared two at a time (Parquet decoding and most NumPy work release
    # the GIL): both cores busy.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (low, high, rows) in enumerate(_buckets(con, files, table, bucket_rows)):
            if rows > bucket_rows:  # one code larger than a bucket: DuckDB's sort
                for reader in readers:  # (memory for DuckDB's sort)
                    reader.release()
                done = _stream_bucket(con, files, table, ids, (low, high), i == 0, firsts, shape)
                for reader in readers:
                    reader.skip(high)
            else:
                done = _sort_bucket(
                    con, pool, readers, table, ids, (low, high), i == 0, firsts, shape
                )
            if not done:
                con.execute(f"DROP TABLE IF EXISTS {table.name}")
                return None
    return firsts


def _sort_bucket(
    con: Any,
    pool: ThreadPoolExecutor,
    readers: list[_PartReader],
    table: schema.Table,
    ids: Any,
    bucket: tuple[Any, Any],
    create: bool,
    firsts: list[Any],
    shape: list[Any],
) -> bool:
    """Read one bucket of ``table`` from every part, sort it in NumPy and append it to the
    optimized copy (``create``: the first bucket creates it). False: the parts cannot take
    this route."""
    import pyarrow as pa

    low, high = bucket
    state: dict[str, Any] = {"ok": True, "persons": [], "firsts": firsts}

    def prepare(reader: _PartReader) -> Any:
        return _grouped_part(reader.read(low, high), table, ids, state)

    parts = list(pool.map(prepare, readers))
    for part in parts:
        if part is None or (shape and part.schema != shape[0]):
            return False
        if not shape:
            shape.append(part.schema)
    if not _disjoint(state["persons"], len(ids)):
        return False
    rows, order = _sorted_bucket(parts, table)
    del parts
    into = f"CREATE OR REPLACE TABLE {table.name} AS" if create else f"INSERT INTO {table.name}"
    if order is None:  # rows without a person index: DuckDB sorts them by ``person_id``
        con.register("_brygga_bucket", rows)
        try:
            con.execute(
                f"{into} SELECT * FROM _brygga_bucket ORDER BY {', '.join(order_by(table))}"
            )
        finally:
            con.unregister("_brygga_bucket")
        return True

    # Appended in slices, each taken (a thread) while DuckDB appends the one before: a
    # registered Arrow table is scanned by all of DuckDB's threads, a stream by one. Column
    # by column: a table's ``take`` over many chunks was 5 times slower (measured).
    def take(start: int) -> Any:
        at = pa.array(order[start : start + _SLICE_ROWS])
        return pa.table([column.take(at) for column in rows.columns], schema=rows.schema)

    starts = range(0, max(len(order), 1), _SLICE_ROWS)
    pending = pool.submit(take, starts[0])
    for n in range(len(starts)):
        piece = pending.result()
        if n + 1 < len(starts):
            pending = pool.submit(take, starts[n + 1])
        con.register("_brygga_bucket", piece)
        try:
            con.execute(f"{into} SELECT * FROM _brygga_bucket")
        finally:
            con.unregister("_brygga_bucket")
        into = f"INSERT INTO {table.name}"
        del piece
    return True


def _sorted_bucket(parts: list[Any], table: schema.Table) -> tuple[Any, Any]:
    """The rows of ``parts`` (with person indexes) as one Arrow table and the order of its
    rows by ``order_by``; None for the order when a row has no person index (its
    ``person_id`` orders it: DuckDB sorts those buckets). Ties (same code, date and person)
    in any order, as in DuckDB's sort."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = pa.concat_tables(parts)
    code_name, d, _ = order_by(table)
    person = rows.column(PERSON_INDEX)
    if person.null_count:
        return rows, None
    if not len(rows):
        return rows, np.zeros(0, dtype=np.int64)
    code = rows.column(code_name).combine_chunks()
    if pa.types.is_string(code.type) or pa.types.is_large_string(code.type):
        # Byte order of UTF-8, as DuckDB compares VARCHAR; a null code last, as NULLS LAST.
        encoded = pc.dictionary_encode(code)
        rank = pc.rank(encoded.dictionary, sort_keys="ascending").to_numpy().astype(np.int64)
        rank = np.append(rank - 1, len(rank))  # (index -1: null)
        indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        ranks = rank[indices.astype(np.int64)]
    else:
        values = pc.fill_null(code, 0).to_numpy(zero_copy_only=False)
        distinct, ranks = np.unique(values, return_inverse=True)
        ranks = ranks.astype(np.int64)
        if code.null_count:
            ranks[~code.is_valid().to_numpy(zero_copy_only=False)] = len(distinct)
    day = rows.column(d).combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)
    day = day.astype(np.int64)
    day -= day.min()
    index = person.combine_chunks().to_numpy(zero_copy_only=False).astype(np.int64)
    bits = [int(x.max()).bit_length() for x in (ranks, day, index)]
    if sum(bits) <= 63:  # one integer key: code rank, then day, then person
        ranks <<= bits[1] + bits[2]
        day <<= bits[2]
        ranks |= day
        ranks |= index
        del day, index
        order = np.argsort(ranks, kind="stable")
    else:
        order = np.lexsort((index, day, ranks))
    return rows, order


def _parquet(file: Path, code: str, text: list[str] | None = None) -> Any:
    """A Parquet part whose text columns, but the code (compared with the buckets' bounds),
    are read as dictionaries: the part's own encoding, decoded 2.4 times faster than into
    strings (measurements, scale 1.0) and smaller in memory; DuckDB stores them as VARCHAR.
    ``text``: those columns, when known (``_PartReader`` opens its part for every read)."""
    import pyarrow.parquet as pq

    if text is None:
        text = _text_columns(pq.read_schema(file), code)
    return pq.ParquetFile(file, read_dictionary=text)


def _text_columns(fields: Any, code: str) -> list[str]:
    import pyarrow as pa

    return [
        f.name
        for f in fields
        if f.name != code and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]


class _PartReader:
    """One Parquet part read bucket by bucket (ascending code ranges): each row group is
    decoded once when the part's row groups are in code order (the writer's), its rows
    beyond the bucket kept for the next; otherwise the row groups overlapping each bucket."""

    def __init__(self, file: Path, code: str) -> None:
        self.file, self.code = file, code
        import pyarrow.parquet as pq

        self.text = _text_columns(pq.read_schema(file), code)
        parquet = _parquet(file, code, self.text)  # opened again for each read (``_open``)
        at = parquet.schema_arrow.get_field_index(code)
        meta = parquet.metadata
        self.ranges: list[Any] = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(at).statistics
            self.ranges.append((stats.min, stats.max) if stats and stats.has_min_max else None)
        bounds = [r for r in self.ranges if r is not None]
        self.ordered = len(bounds) == len(self.ranges) and all(
            a[1] <= b[0] for a, b in itertools.pairwise(bounds)
        )
        self.next = 0  # the first row group not read yet (ordered parts)
        self.kept: Any = None  # rows read beyond the last bucket (ordered parts)
        self.kept_group = 0  # the row group they are from

    def _open(self) -> Any:
        """The part, opened for one read: an open Parquet file holds the buffers of what it
        read (12.7 MB a part at scale 1.0: the visits' 86 parts held 1.1 GB through their
        build, beside DuckDB's sort)."""
        return _parquet(self.file, self.code, self.text)

    def _split(self, part: Any, high: Any) -> tuple[Any, Any]:
        import pyarrow.compute as pc

        column = part.column(self.code)
        inside = pc.less_equal(column, high)
        return part.filter(inside), part.filter(pc.invert(inside))

    def read(self, low: Any, high: Any) -> Any:
        """The rows whose code is in [low, high] (None, None: every row)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        parquet = self._open()
        if low is None:
            return parquet.read().replace_schema_metadata(None)
        if not self.ordered:
            groups = [
                g for g, r in enumerate(self.ranges) if r is None or not (r[1] < low or r[0] > high)
            ]
            if not groups:
                return parquet.schema_arrow.empty_table().replace_schema_metadata(None)
            part = parquet.read_row_groups(groups).replace_schema_metadata(None)
            column = part.column(self.code)
            return part.filter(pc.and_(pc.greater_equal(column, low), pc.less_equal(column, high)))
        found = []
        if self.kept is not None:
            inside, self.kept = self._split(self.kept, high)
            found.append(inside)
        groups = []
        while self.next < len(self.ranges) and self.ranges[self.next][0] <= high:
            if self.ranges[self.next][1] >= low:
                groups.append(self.next)
            self.next += 1
        if groups:
            part = parquet.read_row_groups(groups).replace_schema_metadata(None)
            if self.ranges[groups[-1]][1] > high:
                part, self.kept = self._split(part, high)
                self.kept_group = groups[-1]
            found.append(part)
        if not found:
            return parquet.schema_arrow.empty_table().replace_schema_metadata(None)
        rows = pa.concat_tables(found) if len(found) > 1 else found[0]
        column = rows.column(self.code)
        if len(rows) and pc.less(pc.min(column), low).as_py():  # (buckets are contiguous)
            rows = rows.filter(pc.greater_equal(column, low))
        return rows

    def release(self) -> None:
        """Drop the rows kept for the next bucket (their row group is read again)."""
        if self.kept is not None:
            self.kept = None
            self.next = self.kept_group

    def skip(self, high: Any) -> None:
        """Move past the codes up to ``high`` (a bucket read by ``_stream_bucket``). Nothing
        is read: a row group holding codes on both sides of ``high`` is read by the next
        ``read``, which drops its rows below that bucket (reading it here, and again after
        the next streamed bucket released it, cost the measurements' eight streamed codes
        at scale 1.0 14 s of CPU on the thread DuckDB waits for)."""
        if not self.ordered or high is None:
            return
        if self.kept is not None:
            self.kept = self._split(self.kept, high)[1]
        while self.next < len(self.ranges) and self.ranges[self.next][1] <= high:
            self.next += 1


def _buckets(con: Any, files: list[Path], table: schema.Table, rows: int) -> list[Any]:
    """(first code, last code, rows) of each bucket ``_build_grouped`` sorts, in the table's
    order: runs of whole codes of at most ``rows`` rows, or one code. (None, None, rows):
    every row."""
    code = order_by(table)[0]
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    source = f"read_parquet({listed})"
    [(total, nulls)] = con.execute(
        f"SELECT count(*), count(*) - count({code}) FROM {source}"
    ).fetchall()
    if total <= rows or nulls:  # (a null code sorts last: not worth a bucket of its own)
        return [(None, None, total)]
    counts = con.execute(f"SELECT {code}, count(*) FROM {source} GROUP BY 1 ORDER BY 1").fetchall()
    found: list[Any] = []
    run: list[Any] = []  # codes of the bucket being filled
    filled = 0
    for value, n in counts:
        if run and filled + n > rows:
            found.append((run[0], run[-1], filled))
            run, filled = [], 0
        run.append(value)
        filled += n
    found.append((run[0], run[-1], filled))
    return found


def _stream_bucket(
    con: Any,
    files: list[Path],
    table: schema.Table,
    ids: Any,
    bucket: tuple[Any, Any],
    create: bool,
    firsts: list[Any],
    shape: list[Any],
) -> bool:
    """Sort one bucket of ``table`` into its optimized copy (``create``: the first bucket
    creates it, the others append). False: the parts cannot take this route."""
    import pyarrow as pa
    import pyarrow.compute as pc

    code = order_by(table)[0]
    low, high = bucket
    state: dict[str, Any] = {"ok": True, "persons": [], "firsts": firsts}

    def read(file: Path) -> Any:
        parquet = _parquet(file, code)
        if low is None:
            return parquet.read().replace_schema_metadata(None)
        at = parquet.schema_arrow.get_field_index(code)
        groups = []
        for g in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(g).column(at).statistics
            if stats is None or not stats.has_min_max or not (stats.max < low or stats.min > high):
                groups.append(g)
        if not groups:
            return parquet.schema_arrow.empty_table().replace_schema_metadata(None)
        part = parquet.read_row_groups(groups).replace_schema_metadata(None)
        column = part.column(code)
        inside = pc.and_(pc.greater_equal(column, low), pc.less_equal(column, high))
        return part.filter(inside)

    def prepare(file: Path) -> Any:
        done = _grouped_part(read(file), table, ids, state)
        if done is None or (shape and done.schema != shape[0]):
            return None
        if not shape:
            shape.append(done.schema)
        return done

    parts = iter(files)
    first = prepare(next(parts))
    if first is None:
        return False
    # The next parts are read and prepared in a thread while DuckDB sorts the ones before
    # (Parquet decoding and most NumPy work release the GIL): two cores, both busy.
    ready: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work() -> None:
        try:
            for file in parts:
                if stop.is_set():
                    return
                done = prepare(file)
                if done is None:
                    state["ok"] = False
                    break
                ready.put(done)
        except BaseException as exc:  # re-raised by the reading side
            ready.put(exc)
        ready.put(None)

    def batches() -> Any:
        yield from first.to_batches()
        while (done := ready.get()) is not None:
            if isinstance(done, BaseException):
                raise done
            yield from done.to_batches()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    reader = pa.RecordBatchReader.from_batches(shape[0], batches())
    # One code: its date and person order it (a sort key less, and the widest).
    keys = ", ".join(order_by(table)[1:] if low is not None and low == high else order_by(table))
    into = f"CREATE OR REPLACE TABLE {table.name} AS" if create else f"INSERT INTO {table.name}"
    con.register("_brygga_parts", reader)
    try:
        con.execute(f"{into} SELECT * FROM _brygga_parts ORDER BY {keys}")
    finally:
        con.unregister("_brygga_parts")
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        worker.join()
    return bool(state["ok"]) and _disjoint(state["persons"], len(ids))


def _disjoint(persons: list[tuple[Any, Any]], people: int) -> bool:
    """Whether no person has rows in two of a bucket's parts (each entry: one part's
    ``(indexes, others)``, the dense indexes of its people, repeated, and the ``person_id``
    of its rows without one). One pass over an array of the region's people: at scale 1.0
    ``np.unique`` of the parts' people took 10 % of the conditions' CPU."""
    owner = np.full(people, -1, dtype=np.int32)
    for part, (indexes, _) in enumerate(persons):
        seen = owner[indexes]
        if ((seen >= 0) & (seen != part)).any():
            return False
        owner[indexes] = part
    # People missing from ``person``, rare: each part's distinct ones, then all of them
    # once. A null ``person_id`` is among them as 0: nulls in two parts are one partition
    # of the window functions, so they must not pass (and a stranger with id 0 in another
    # part is a false alarm at worst).
    others = [np.unique(found) for _, found in persons if len(found)]
    if len(others) < 2:
        return True
    joined = np.concatenate(others)
    return len(np.unique(joined)) == len(joined)


def _grouped_part(part: Any, table: schema.Table, ids: Any, state: dict[str, Any]) -> Any:
    """One part with ``person_index`` and the next dates appended (None: not possible, see
    ``_build_grouped``); adds the part's first-date rows and people to ``state``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key, d = record_key(table), table.date_column
    assert d is not None
    if part.column(d).null_count:  # a RANGE frame's nulls: left to SQL
        return None

    def group_columns(part: Any) -> list[Any]:
        """Equal values, equal integers (strings by a dictionary); person last. A null is
        equal to a null, as in PARTITION BY: a column with nulls adds its validity."""
        found = []
        for c in [*key, "person_id"]:
            column = part.column(c).combine_chunks()
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column = pc.dictionary_encode(column).indices
            elif pa.types.is_dictionary(column.type):  # (one dictionary: combined)
                column = column.indices
            if column.null_count:
                found.append(column.is_valid().to_numpy(zero_copy_only=False))
                column = pc.fill_null(column, 0)
            found.append(np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64))
        return found

    def days(part: Any) -> Any:
        return part.column(d).combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)

    group, day = group_columns(part), days(part)
    starts = _run_starts(group)
    if not _grouped(group, day, starts):  # sort the part by its groups, then date
        part = part.take(pa.array(np.lexsort([day, *reversed(group)])))
        group, day = group_columns(part), days(part)
        starts = _run_starts(group)
    value = None
    if valued(table):
        value = part.column("value_as_number").is_valid().to_numpy(zero_copy_only=False)
    following, preceding, following_valued = _next_days(starts, day, value)
    # Each group's person looked up once (a binary search over the region's people per row
    # took 12 % of the conditions' CPU at scale 1.0): a group is one person's rows.
    first = np.flatnonzero(starts)
    lead = group[-1][first]
    found = np.searchsorted(ids, lead)
    known = ids[np.minimum(found, len(ids) - 1)] == lead if len(ids) else found < 0
    known &= part.column("person_id").is_valid().to_numpy(zero_copy_only=False)[first]
    # (A null person's rows: among the people without an index, as 0; ``_disjoint``.)
    state["persons"].append((found[known], lead[~known]))
    sizes = np.diff(np.append(first, len(starts)))
    index = pa.array(np.repeat(found.astype(np.int32), sizes), mask=np.repeat(~known, sizes))

    def dates(values: Any) -> Any:
        return pa.array(values, type=pa.int32(), mask=values < 0).cast(pa.date32())

    part = part.append_column(PERSON_INDEX, index)
    part = part.append_column(NEXT_DATE, dates(following))
    part = part.append_column(PREV_DATE, dates(preceding))
    if following_valued is not None:
        part = part.append_column(NEXT_VALUED_DATE, dates(following_valued))
    if table.code_column:
        # A group's first row holds its first date; its next date is the second date.
        first = first[known]
        v, c, k, _ = _code_columns(table)
        rows = part.take(pa.array(first)).select([v, c, k, PERSON_INDEX, d, NEXT_DATE])
        state["firsts"].append(rows.rename_columns([v, c, k, PERSON_INDEX, d, SECOND_DATE]))
    return part


def _run_starts(group: list[Any]) -> Any:
    """Whether each row starts a run of equal group columns (the first row does)."""
    n = len(group[0])
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
        for column in group:
            starts[1:] |= column[1:] != column[:-1]
    return starts


def _grouped(group: list[Any], day: Any, starts: Any) -> bool:
    """Whether every group is one run, its days ascending."""
    if len(day) > 1 and (day[1:] < day[:-1])[~starts[1:]].any():
        return False
    first = np.flatnonzero(starts)
    keys = [column[first] for column in group]
    order = np.lexsort(keys[::-1])
    same = np.ones(max(len(first) - 1, 0), dtype=bool)
    for column in keys:
        column = column[order]
        same &= column[1:] == column[:-1]
    return not same.any()


def _next_days(starts: Any, day: Any, value: Any | None) -> tuple[Any, Any, Any | None]:
    """Per row of rows sorted by group, then day (``starts``: a group's first row): the
    group's next later day, its previous earlier day and (``value``: rows with a value) its
    next later day with a value; -1 for none. The window functions of ``_next_dates``."""
    new_day = starts.copy()
    new_day[1:] |= day[1:] != day[:-1]
    first = np.flatnonzero(new_day)  # a (group, day)'s first row
    run = np.cumsum(new_day) - 1  # each row's (group, day)
    run_day = day[first].astype(np.int64)
    same_group = ~starts[first][1:]  # run r + 1 is in run r's group
    following = np.full(len(first), -1, dtype=np.int64)
    preceding = np.full(len(first), -1, dtype=np.int64)
    following[:-1] = np.where(same_group, run_day[1:], -1)
    preceding[1:] = np.where(same_group, run_day[:-1], -1)
    valued_next = None
    if value is not None:
        has = np.logical_or.reduceat(value, first) if len(first) else np.zeros(0, dtype=bool)
        none = len(first)
        at = np.where(has, np.arange(len(first)), none)
        later = np.full(len(first), none, dtype=np.int64)  # the next valued run after r
        if len(first) > 1:
            later[:-1] = np.minimum.accumulate(at[::-1])[::-1][1:]
        group = np.cumsum(starts[first])
        ok = later < none
        ok[ok] = group[later[ok]] == group[ok]
        valued_next = np.where(ok, run_day[np.minimum(later, max(none - 1, 0))], -1)[run]
    return following[run], preceding[run], valued_next


def _build_first_from(con: Any, table: schema.Table, firsts: list[Any]) -> None:
    """``_build_first`` from the first-date rows ``_build_grouped`` kept: the same table."""
    import pyarrow as pa

    v, c, k, d = _code_columns(table)
    con.register("_brygga_firsts", pa.concat_tables(firsts))
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {first_table(table.name)} AS "
            f"SELECT {v}, {c}, {k}, {PERSON_INDEX}, {d}, {SECOND_DATE} FROM _brygga_firsts "
            f"ORDER BY {c}, {d}, {PERSON_INDEX}"
        )
    finally:
        con.unregister("_brygga_firsts")


def _build_first(con: object, table: schema.Table) -> None:
    """Each (vocabulary, code, concept, person)'s first date and second (distinct) date,
    sorted like the event table. The records of the first date share one ``next_date``: the
    second date."""
    v, c, k, d = _code_columns(table)
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE OR REPLACE TABLE {first_table(table.name)} AS
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
        CREATE OR REPLACE TABLE {codes_table(table.name)} AS
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
        CREATE OR REPLACE TABLE {runs_table(table.name)} AS
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
