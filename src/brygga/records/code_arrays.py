"""The rule tables of an optimized database as flat, memory-mapped columns (``brygga optimize``).

The cohort engine answers a rule never asked before from these arrays without opening DuckDB
(``cohort/codearrays.py`` reads them and says how). ``optimize.build`` keeps each rule table
sorted by (code, date, person); this module writes that order once more, per table, into
``<database>.arrays/codes/<table>/``:

* ``codes.json``: the table's distinct codes in the table's order (source codes as strings;
  visit types as concept ids, a missing type last; one pseudo-code for deaths), each code's
  vocabularies, and ``offsets.npy``: code ``i``'s rows are ``offsets[i]:offsets[i + 1]``;
* per row: ``person.npy`` (dense person index, int32), ``day.npy`` (days since 1970-01-01,
  int32, ascending within a code: checked while writing), and where the table has them
  ``value.npy`` (float64, NaN for no value), ``range_low.npy`` / ``range_high.npy``
  (measurements), ``vocabulary.npy`` (int8 into ``names``, only when one code string occurs in
  several vocabularies), ``next.npy`` (events and visits) and ``next_valued.npy``
  (measurements, observations): the record's next date of the same code and person (with a
  value, for the second; int32 days, 2**31 - 1 for none: ``optimize``'s next dates), so a
  "latest" rule, or a rule on one date, handles only each code's latest records;
* the first-date summaries ``<table>_first`` the same way, with ``second.npy`` (the code's
  second date), for rules without a lower window bound and without a value range;
* the runs summaries ``<table>_runs`` of the status-like tables (``RUN_TABLES``: a person's
  records on days whose set of codes differs from their previous recorded day) the same way,
  with ``next_start.npy`` (the person's next run start, any code): "latest" rules without a
  lower window bound and without a value range (smoking status over all history) read them
  instead of every record: 2.7 million runs instead of 19.7 million observations at scale
  1.0. ``codes.json`` says how many of the summary's rows the arrays leave out
  (``dropped``: rows without a code or a vocabulary), which decides whether a person's
  current run is their latest recorded day (``cohort/codearrays.py``). Added to an existing
  build like the entry keys (a new folder, not part of the format's version);
* for visits (``ASOF_TABLES``: the largest rule table, few codes) each person's latest visit
  day per visit type as of some days: the table's last day and the first of each of the
  ``ASOF_MONTHS`` months before it, ``asof-<YYYY-MM-DD>.npy`` (uint16, types x people, the day
  minus ``base`` of ``asof.json``, 0: none). A visit rule on one date whose window ends on
  such a day (an index date at a recent month start or at the region's end) is then one
  comparison per person (``cohort/codearrays.py``) instead of a pass over every visit in the
  window: 6.5 MB a type instead of 210 MB for "any visit in five years" at scale 1.0. Added
  to a complete folder that lacks them, like the keys (optional files);
* per rule table (not the summaries) ``person_day.npy``: each row's (person, day) as one int64
  key (``person << 32 | day + 2**31``, ``key``), sorted within each code's rows, and
  ``person_blocks.npy`` (int32, codes x blocks + 1): where in each code's keys every block of
  ``BLOCK_PEOPLE`` people begins. A rule relative to each person's own entry date is then a
  short binary search per person and code inside their block (``cohort/codearrays.py``)
  instead of a pass over every record in the entry period. Both are added to a complete
  folder that lacks them (a build from before they existed) without rewriting the rest:
  optional files, not part of the format's version (a folder without them sends entry rules
  to DuckDB).

Only records with a person index, a date, a code and a vocabulary are written: no rule matches
any other (``Compiler.code_predicate`` compares both columns, a window the date; the engine
drops rows without a person index); visits keep rows without a visit type (a rule without
``types`` counts them).

Incremental: each table's folder records the fingerprint of its build unit (``optimize.units``)
in ``complete``. A table whose inputs did not change keeps its folder, or hard-links the previous
build's; a changed one is rewritten. Person-level like the database beside them.
"""

from __future__ import annotations

__all__ = [
    "ASOF",
    "ASOF_TABLES",
    "BLOCKS",
    "BLOCK_PEOPLE",
    "COMPLETE",
    "EPOCH",
    "FIRST",
    "FOLDER",
    "KEYS",
    "RUNS",
    "RUN_TABLES",
    "TABLES",
    "asof_days",
    "build",
    "fingerprint",
    "folders",
    "key",
]

import itertools
import json
import os
import shutil
import time
from collections.abc import Collection
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from brygga.records import schema

FOLDER = "codes"
COMPLETE = "complete"
# The tables rules read (``cohort.criteria``: event rules, visits, deaths).
TABLES = (
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "visit_occurrence",
    "death",
)
# The event tables' first-date summaries (``optimize``'s ``<table>_first``: one row per code and
# person with the first and second dates) as arrays too: rules without a lower window bound
# and without a value range ("E11 ever", on two dates) read them.
FIRST = "_first"
EVENT_TABLES = TABLES[:5]
# ``optimize``'s runs summaries (``optimize.RUN_TABLES``, ``runs_table``: optimize imports
# this module), as arrays for "latest" rules over all history.
RUNS = "_runs"
RUN_TABLES = ("observation",)
ASOF = "asof"  # the latest day per type and person as of some days: ``asof.json`` says which
ASOF_TABLES = ("visit_occurrence",)
ASOF_MONTHS = 12  # month starts before the table's last day with a snapshot (uint16 per person)
EPOCH = date(1970, 1, 1)
VERSION = 4  # of the arrays' format: part of each table's fingerprint
BATCH = 1 << 20
NEVER = 2**31 - 1  # no next date  # rows per fetched batch while writing
PERSON_INDEX = "person_index"  # optimize.PERSON_INDEX (optimize imports this module)
KEYS = "person_day"  # the (person, day) keys in (code, person, day) order
DAY_SHIFT = 2**31  # added to a day (int32) in a key, so that keys order as (person, day)
SORT_ROWS = 1 << 24  # rows sorted at once while writing the keys (128 MB of int64)
BLOCKS = "person_blocks"  # per code, the first row of every BLOCK_PEOPLE people in the keys
# 3.3 MB per code at 3.3 million people (about 0.2 GB at scale 1.0). Smaller blocks, fewer
# steps per search: an entry rule over 41,260 people and four codes searched in 12 ms with
# blocks of 32 people, 5 ms with 4 (scale 1.0, measured). Part of the keys' format: a change
# needs VERSION too.
BLOCK_PEOPLE = 4


def build(
    con: Any,
    folder: Path,
    wanted: dict[str, str],
    previous: Path | None = None,
    names: Collection[str] | None = None,
) -> dict[str, float]:
    """Write the arrays of every rule table of ``con`` (an optimized database) whose folder
    under ``folder/codes`` is missing or was built from other inputs than ``wanted[table]``
    (the unit fingerprints of ``optimize.build``); a previous build's folder (``previous``, an
    arrays folder) with the right fingerprint is hard-linked instead. ``names``: only these
    folders (``optimize`` writes each table's as soon as it is built). Returns the seconds
    spent per table written or linked."""
    base = folder / FOLDER
    base.mkdir(parents=True, exist_ok=True)
    for left in base.glob("*.tmp"):  # an interrupted earlier build's (not this process's:
        if not left.name.endswith(f".{os.getpid()}.tmp"):  # its writers run two at a time)
            shutil.rmtree(left, ignore_errors=True)
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    spent: dict[str, float] = {}
    for name in folders():
        if names is not None and name not in names:
            continue
        target = base / name
        unit = name.removesuffix(FIRST).removesuffix(RUNS)
        wanted_print = f"{VERSION}:{wanted[unit]}" if unit in wanted else None
        if name not in present or wanted_print is None:
            shutil.rmtree(target, ignore_errors=True)
            continue
        started = time.perf_counter()
        if fingerprint(target) != wanted_print:
            old = previous / FOLDER / name if previous is not None else None
            if old is not None and fingerprint(old) == wanted_print:
                _link_tree(old, target)
            else:
                _write_table(con, target, name, wanted_print)
        elif (name not in TABLES or _has_keys(target)) and _has_asof(target, name):
            continue
        if name in TABLES and not _has_keys(target):
            _write_keys(target)
        if not _has_asof(target, name):
            _write_asof(target)
        spent[name] = round(time.perf_counter() - started, 2)
    return spent


def _has_asof(folder: Path, name: str) -> bool:
    return name not in ASOF_TABLES or (folder / f"{ASOF}.json").is_file()


def asof_days(last: int) -> list[int]:
    """The days (since 1970) with a snapshot: ``last`` (the table's last day) and the first
    day of each of the ``ASOF_MONTHS`` months up to it (its own month's included)."""
    end = EPOCH + timedelta(days=last)
    found = {last}
    year, month = end.year, end.month
    for _ in range(ASOF_MONTHS):
        found.add((date(year, month, 1) - EPOCH).days)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(found)


def _write_asof(folder: Path) -> None:
    """``asof-<day>.npy`` and ``asof.json`` of a complete table folder: per day of
    ``asof_days``, each code's (visit type's) latest day on or before it per person (uint16,
    the day minus ``base``; 0: no record by then), codes x people. One pass over each code's
    rows in their (date) order: the last write per person is their latest day. A table whose
    days span more than uint16 holds gets an ``asof.json`` without days (none written)."""
    for left in folder.glob(f"{ASOF}-*.tmp"):
        left.unlink(missing_ok=True)  # an interrupted earlier write's
    offsets = np.load(folder / "offsets.npy")
    person = np.load(folder / "person.npy", mmap_mode="r")
    day = np.load(folder / "day.npy", mmap_mode="r")
    total = int(offsets[-1])
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(offsets.tolist()) if b > a]
    days: list[int] = []
    base = 0
    people = 0
    if spans:
        first = min(int(day[a]) for a, _ in spans)
        last = max(int(day[b - 1]) for _, b in spans)
        base = first - 1
        if last - base <= np.iinfo(np.uint16).max:
            days = asof_days(last)
            people = max(
                int(np.max(person[s : s + SORT_ROWS])) + 1 for s in range(0, total, SORT_ROWS)
            )
    files = {d: folder / f"{ASOF}-{(EPOCH + timedelta(days=d)).isoformat()}.npy" for d in days}
    tmp = {d: f.with_name(f"{f.name}.{os.getpid()}.tmp") for d, f in files.items()}
    outs = {d: tmp[d].open("wb") for d in days}
    try:
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint16)),
            "fortran_order": False,
        }
        for out in outs.values():
            np.lib.format.write_array_header_1_0(
                out, header | {"shape": (len(offsets) - 1, people)}
            )
        for a, b in itertools.pairwise(offsets.tolist()):
            latest = np.zeros(people, dtype=np.uint16)
            at = a
            for d in days:
                stop = a + int(np.searchsorted(day[a:b], np.int32(d), "right"))
                for start in range(at, stop, SORT_ROWS):
                    end = min(stop, start + SORT_ROWS)
                    latest[np.asarray(person[start:end])] = np.asarray(day[start:end]) - base
                at = max(at, stop)
                outs[d].write(latest.tobytes())
    finally:
        for out in outs.values():
            out.close()
    for d in days:
        os.replace(tmp[d], files[d])
    meta = {"days": days, "base": base, "people": people}
    (folder / f"{ASOF}.json.{os.getpid()}.tmp").write_text(json.dumps(meta))
    os.replace(folder / f"{ASOF}.json.{os.getpid()}.tmp", folder / f"{ASOF}.json")


def _has_keys(folder: Path) -> bool:
    return all((folder / f"{name}.npy").is_file() for name in (KEYS, BLOCKS))


def key(person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The int64 keys of (person index, day since 1970) pairs: ordered as (person, day)."""
    found = person.astype(np.int64) << 32
    found += day.astype(np.int64) + DAY_SHIFT
    return found


def _write_keys(folder: Path) -> None:
    """``person_day.npy`` and ``person_blocks.npy`` of a complete table folder.

    The keys: each code's rows' (person, day) keys, sorted. A code with more rows than
    ``SORT_ROWS`` is sorted in ranges of people (keys order by person first, so the sorted
    ranges in ascending order are the sorted whole): memory stays bounded at scale 1.0 (one
    visit type has 130 million rows). The blocks: per code, the row (from the code's first)
    where the people ``k * BLOCK_PEOPLE`` and after begin, so that a person's rows are found
    inside one block of a few rows instead of by a binary search over millions (each step of
    which misses the CPU's caches: 1.8 us per search at 25 million rows, measured)."""
    for left in [*folder.glob(f"{KEYS}.*.tmp"), *folder.glob(f"{BLOCKS}.*.tmp.npy")]:
        left.unlink(missing_ok=True)  # an interrupted earlier write's
    offsets = np.load(folder / "offsets.npy")
    person = _Column(folder / "person.npy")
    day = _Column(folder / "day.npy")
    total = int(offsets[-1])
    people = max(
        (int(np.max(person[s : s + SORT_ROWS])) + 1 for s in range(0, total, SORT_ROWS)), default=0
    )
    count = -(-people // BLOCK_PEOPLE)
    blocks = np.zeros((len(offsets) - 1, count + 1), dtype=np.int32)
    ends = np.minimum(np.arange(1, count + 1) * BLOCK_PEOPLE, people) - 1
    tmp = folder / f"{KEYS}.{os.getpid()}.tmp"
    with tmp.open("wb") as out:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False}
        np.lib.format.write_array_header_1_0(out, header | {"shape": (total,)})
        for i, (a, b) in enumerate(itertools.pairwise(offsets.tolist())):
            if b - a >= 2**31:
                raise AssertionError(f"{folder.name}: a code of 2**31 rows or more")
            cumulative = np.zeros(people, dtype=np.int64)
            for start in range(a, b, SORT_ROWS):
                rows = np.asarray(person[start : min(b, start + SORT_ROWS)])
                cumulative += np.bincount(rows, minlength=people)
            np.cumsum(cumulative, out=cumulative)
            if count:
                blocks[i, 1:] = cumulative[ends]
            for low, high in _person_ranges(cumulative, b - a):
                if low is None:
                    keys = key(person[a:b], day[a:b])
                else:
                    parts = []
                    for start in range(a, b, SORT_ROWS):
                        stop = min(b, start + SORT_ROWS)
                        rows = np.asarray(person[start:stop])
                        kept = (rows >= low) & (rows < high)
                        parts.append(key(rows[kept], np.asarray(day[start:stop])[kept]))
                    keys = np.concatenate(parts)
                keys.sort()
                out.write(keys.tobytes())
    np.save(folder / f"{BLOCKS}.{os.getpid()}.tmp.npy", blocks)
    # The blocks first: a folder with the keys has both (the reader asks for the keys).
    os.replace(folder / f"{BLOCKS}.{os.getpid()}.tmp.npy", folder / f"{BLOCKS}.npy")
    os.replace(tmp, folder / f"{KEYS}.npy")


class _Column:
    """Slices of a ``.npy`` column read from the file, not memory-mapped: a map's pages stay
    resident (the build's memory: 1 GB for the visits at scale 1.0) while ``optimize`` builds
    the next table beside this."""

    def __init__(self, path: Path) -> None:
        mapped = np.load(path, mmap_mode="r")
        self.path, self.dtype, self.offset = path, mapped.dtype, mapped.offset
        self.size = len(mapped)
        del mapped

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.size)
        count = max(stop - start, 0)
        at = self.offset + start * self.dtype.itemsize
        return np.fromfile(self.path, dtype=self.dtype, count=count, offset=at)


def _person_ranges(cumulative: np.ndarray, rows: int) -> list[tuple[Any, Any]]:
    """Ascending ranges [low, high) of people splitting one code's ``rows`` (``cumulative``:
    its rows of people up to each) in parts of about ``SORT_ROWS`` rows (one person's rows
    are never split); [(None, None)]: all at once."""
    if rows <= SORT_ROWS:
        return [(None, None)]
    cuts = [0]
    while cumulative[-1] - (cumulative[cuts[-1] - 1] if cuts[-1] else 0) > SORT_ROWS:
        done = cumulative[cuts[-1] - 1] if cuts[-1] else 0
        # The first person past the part's rows (at least one person per part).
        found = int(np.searchsorted(cumulative, done + SORT_ROWS, "right"))
        cuts.append(max(cuts[-1] + 1, found))
    cuts.append(len(cumulative))
    return list(itertools.pairwise(cuts))


def folders() -> list[str]:
    """The folders ``build`` writes: the rule tables, the first-date and runs summaries."""
    return [
        *TABLES,
        *(f"{name}{FIRST}" for name in EVENT_TABLES),
        *(f"{name}{RUNS}" for name in RUN_TABLES),
    ]


def fingerprint(folder: Path) -> str | None:
    """The unit fingerprint a table's arrays were built from; None when incomplete."""
    try:
        return (folder / COMPLETE).read_text().strip()
    except OSError:
        return None


def _link_tree(source: Path, target: Path) -> None:
    """A previous build's arrays (files never changed once written): hard links, else copies."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in source.iterdir():
        try:
            os.link(f, tmp / f.name)
        except OSError:
            shutil.copy2(f, tmp / f.name)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _columns(name: str) -> tuple[str | None, str | None, str]:
    """(code column, vocabulary column, date column) of a rule table (or its summary)."""
    name = name.removesuffix(FIRST).removesuffix(RUNS)
    if name == "visit_occurrence":
        return "visit_concept_id", None, "visit_start_date"
    if name == "death":
        return None, None, "death_date"
    t = schema.table(name)
    assert t.code_column and t.vocabulary_column and t.date_column
    return t.code_column, t.vocabulary_column, t.date_column


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _write_table(con: Any, target: Path, name: str, wanted_print: str) -> None:
    """One table's arrays, read in the table's stored order (checked, not assumed)."""
    code, vocabulary, day = _columns(name)
    # A record without a date is in no window (``day <= hi`` is never true).
    where = [f"{PERSON_INDEX} IS NOT NULL", f"{day} IS NOT NULL"]
    if vocabulary is not None:
        where += [f"{code} IS NOT NULL", f"{vocabulary} IS NOT NULL"]
    condition = " AND ".join(where)
    codes: list[Any]
    if code is None:
        [(rows,)] = con.execute(f"SELECT count(*) FROM {name} WHERE {condition}").fetchall()
        codes, counts, code_vocabularies = [None], [rows], [[]]
    else:
        vocab = vocabulary or "NULL::VARCHAR"
        # In the table's order (NULL, a visit without a type, sorts last as in the table).
        found = con.execute(
            f"SELECT {code} AS c, list(DISTINCT {vocab}) FILTER (WHERE {vocab} IS NOT NULL), "
            f"count(*) FROM {name} WHERE {condition} GROUP BY c ORDER BY c NULLS LAST"
        ).fetchall()
        codes = [r[0] for r in found]
        code_vocabularies = [sorted(r[1] or []) for r in found]
        counts = [r[2] for r in found]
    if vocabulary is not None and codes != sorted(codes):
        # Binary search needs DuckDB's order to be Python's (byte order of UTF-8: the same).
        raise AssertionError(f"{name}: codes are not in Python's string order")
    names = sorted({v for vs in code_vocabularies for v in vs})
    mixed = any(len(vs) > 1 for vs in code_vocabularies)
    offsets = np.zeros(len(codes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.asarray(counts, dtype=np.int64))
    total = int(offsets[-1])
    present = {r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()}
    select = [f"{PERSON_INDEX}::INTEGER AS person", f"({day} - DATE '1970-01-01')::INTEGER AS day"]
    columns: list[tuple[str, Any]] = [("person", np.int32), ("day", np.int32)]
    if "value_as_number" in present:
        select.append("coalesce(value_as_number::DOUBLE, 'NaN'::DOUBLE) AS value")
        columns.append(("value", np.float64))
    if {"range_low", "range_high"} <= present:
        for column in ("range_low", "range_high"):
            select.append(f"coalesce({column}::DOUBLE, 'NaN'::DOUBLE) AS {column}")
            columns.append((column, np.float64))
    for column, array in (
        ("next_date", "next"),
        ("next_valued_date", "next_valued"),
        ("second_date", "second"),
        ("next_start", "next_start"),
    ):
        # Each record's next date of its code and person (``optimize``): "latest" rules and
        # rules on one date then handle only each code's latest records in the window
        # (``cohort/codearrays.py``); a first date's record: its code's second date; a run's
        # record: the person's next run start.
        if column in present:
            select.append(f"coalesce(({column} - DATE '1970-01-01')::INTEGER, {NEVER}) AS {array}")
            columns.append((array, np.int32))
    if mixed:
        cases = " ".join(f"WHEN {_quote(v)} THEN {i}" for i, v in enumerate(names))
        select.append(f"(CASE {vocabulary} {cases} END)::TINYINT AS vocabulary")
        columns.append(("vocabulary", np.int8))
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Written sequentially, batch by batch (not through a memory map: its dirty pages would
    # count as the build's memory, gigabytes at scale 1.0).
    files = {c: (tmp / f"{c}.npy").open("wb") for c, _ in columns}
    try:
        for c, t in columns:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(t)), "fortran_order": False}
            np.lib.format.write_array_header_1_0(files[c], header | {"shape": (total,)})
        # A plain filtered scan returns the rows in their stored order (preserve_insertion_
        # order); the days are checked to ascend within every code, so a change fails loudly.
        starts = offsets[1:-1]
        reader = con.sql(f"SELECT {', '.join(select)} FROM {name} WHERE {condition}")
        at, last = 0, None
        for batch in reader.to_arrow_reader(BATCH):
            n = batch.num_rows
            if at + n > total:
                raise AssertionError(f"{name}: more rows than counted")
            for c, t in columns:
                values = batch.column(c).to_numpy(zero_copy_only=False).astype(t, copy=False)
                files[c].write(np.ascontiguousarray(values).tobytes())
                if c == "day" and n:
                    days = values if last is None else np.concatenate([[last], values])
                    drops = np.flatnonzero(np.diff(days) < 0) + at + (1 if last is None else 0)
                    if len(drops) and not np.isin(drops, starts).all():
                        raise AssertionError(f"{name}: rows are not in (code, date) order")
                    last = values[-1]
            at += n
    finally:
        for f in files.values():
            f.close()
    if at != total:
        raise AssertionError(f"{name}: {at} rows read, {total} counted")
    # Rows with a person and a date left out (no code or vocabulary): a runs summary whose
    # rows are all here tells each person's latest recorded day (``cohort/codearrays.py``).
    dated = f"{PERSON_INDEX} IS NOT NULL AND {day} IS NOT NULL"
    [(whole,)] = con.execute(f"SELECT count(*) FROM {name} WHERE {dated}").fetchall()
    np.save(tmp / "offsets.npy", offsets)
    (tmp / "codes.json").write_text(
        json.dumps(
            {
                "codes": codes,
                "vocabularies": code_vocabularies,
                "names": names,
                "dropped": whole - total,
            }
        )
    )
    (tmp / COMPLETE).write_text(wanted_print)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
