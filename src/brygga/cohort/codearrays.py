"""Rules answered from memory-mapped arrays: a question never asked before, without DuckDB.

``brygga optimize`` writes each rule table as flat columns in its stored order, (code, date,
person) (``records/code_arrays.py``). A rule is then NumPy work on memory-mapped files:

* the codes it names are runs of the sorted code list (a prefix or an ICD-10 range is the
  interval ``criteria.code_bounds``, an exact code one entry; ``exclude_codes`` removes entries:
  whether a record matches depends on its (vocabulary, code) only);
* its window is a contiguous slice of each code's rows (days ascend within a code: two binary
  searches), its value range a filter;
* ``min_count`` counts distinct (person, day) pairs; ``latest`` keeps each person's largest
  key 2 x day + hit over the candidate records, the definition of
  ``Compiler.latest_candidates`` (the person matches when a record on their latest candidate
  day is a hit); a death is a slice of the death dates.

A rule relative to each person's own entry date (``entry_bits``) reads ``person_day.npy``
instead: each code's rows as (person, day) keys in that order, with ``person_blocks.npy``
saying where each block of a few people begins, so a person's records in their own window
are found by a short binary search inside their block, vectorized over every entered person
and code: O(entered x log rows per block), where the (code, date) order would read every
record in the days the entry period allows (tens of millions for "no A10 drug in the ten
years before"). Value ranges there still go to DuckDB.

The result is the rule's packed bitmap over the dense person index, the same bits DuckDB's
route gives (``BitmapEngine._leaf_bits``; the spec tests run both). Rules the arrays cannot
answer return None and go to DuckDB as before: OMOP concept ids (they need the concept
hierarchy) and drug exposure periods (gaps and islands over supply ends).

Why: a new process answering a rule through DuckDB first opens the database (~140 ms) and
loads Ibis' DuckDB backend (~450 ms); a warm one compiles Ibis and runs one query per rule.
"""

from __future__ import annotations

__all__ = ["CodeArrays", "open_codes", "packed_sorted", "readahead"]

import bisect
import itertools
import json
import mmap
import os
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from brygga.cohort.criteria import (
    OMOP,
    DeathSpec,
    DrugSpec,
    EventSpec,
    ValuedSpec,
    ValueRange,
    VisitSpec,
    code_bounds,
    window_bounds,
)
from brygga.records import code_arrays
from brygga.records import codes as codebook

DAY_OFFSET = 1 << 20  # added to days (since 1970) so that keys stay positive for any date

# (start, stop, vocabularies kept or None for every row) of one code's rows in the window.
Slice = tuple[int, int, int, list[int] | None]


class _Table:
    """One table's arrays, memory-mapped on first use."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "codes.json").read_text())
        self.folder = folder
        self.codes: list[Any] = meta["codes"]
        self.names: list[str] = meta["names"]
        self.code_vocabularies: list[set[str]] = [set(v) for v in meta["vocabularies"]]
        self.offsets = np.load(folder / "offsets.npy")
        # Rows of the table left out of the arrays (no code or vocabulary); None: not known
        # (arrays written before it was recorded).
        self.dropped: int | None = meta.get("dropped")
        self._asof: dict[str, Any] | None = None  # ``asof.json``, read on first use
        self._arrays: dict[str, np.ndarray | None] = {}

    def array(self, name: str) -> np.ndarray | None:
        if name not in self._arrays:
            path = self.folder / f"{name}.npy"
            found = np.load(path, mmap_mode="r") if path.is_file() else None
            # Rules read slices (read ahead explicitly, ``readahead``) and binary-search the
            # days: without this each search step's page fault reads the readahead window
            # around it (8 MB here) from a cold disk.
            held = getattr(found, "_mmap", None)
            if held is not None and hasattr(mmap, "MADV_RANDOM"):
                held.madvise(mmap.MADV_RANDOM)
            self._arrays[name] = found
        return self._arrays[name]

    def column(self, name: str) -> np.ndarray:
        found = self.array(name)
        if found is None:
            raise AssertionError(f"{self.folder.name} has no {name} array")
        return found

    def asof(self, hi: int) -> tuple[np.ndarray, int] | None:
        """Each code's latest day per person on or before ``hi`` (uint16 minus ``base``, 0:
        none; codes x people) and ``base``, when ``code_arrays`` wrote that day's snapshot
        (on or after the table's last day: its last day's); else None."""
        if self._asof is None:
            try:
                self._asof = json.loads((self.folder / f"{code_arrays.ASOF}.json").read_text())
            except (OSError, ValueError):
                self._asof = {"days": []}
        days: list[int] = self._asof["days"]
        if not days or hi < days[0] or (hi not in days and hi < days[-1]):
            return None
        at = hi if hi in days else days[-1]
        name = f"{code_arrays.ASOF}-{(code_arrays.EPOCH + timedelta(days=at)).isoformat()}"
        found = self.array(name)
        return None if found is None else (found, int(self._asof["base"]))

    def prefetch(self, names: tuple[str, ...], slices: list[Slice]) -> None:
        """Ask the kernel to read the slices' rows of these columns now (``readahead``)."""
        for name in names:
            found = self.array(name)
            if found is not None:
                readahead(found, [(start, stop) for _, start, stop, _ in slices])

    def code_ids(
        self, codeset: tuple[tuple[str, str], ...], exclude: tuple[tuple[str, str], ...]
    ) -> dict[int, set[str]] | None:
        """The codes (by position) whose records carry one of ``codeset`` and none of
        ``exclude``, each with the vocabularies for which that holds; None with an OMOP
        concept (the arrays hold source codes only)."""
        found: dict[int, set[str]] = {}
        for v, c in codeset:
            if v == OMOP:
                return None
            for i in self._range(v, c):
                found.setdefault(i, set()).add(v)
        for v, c in exclude:
            if v == OMOP:
                return None
            for i in self._range(v, c):
                if i in found:
                    found[i].discard(v)
        kept = {i: vs & self.code_vocabularies[i] for i, vs in found.items()}
        return {i: vs for i, vs in kept.items() if vs}

    def _range(self, vocabulary: str, code: str) -> range:
        """The positions of the codes one code of a rule names (contiguous: codes sorted)."""
        if codebook.vocabulary(vocabulary).hierarchical:
            low, high = code_bounds(code)
            return range(bisect.bisect_left(self.codes, low), bisect.bisect_left(self.codes, high))
        return range(bisect.bisect_left(self.codes, code), bisect.bisect_right(self.codes, code))

    def slices(self, ids: dict[int, set[str]] | list[int], lo: int | None, hi: int) -> list[Slice]:
        """Each code's rows on days ``lo``..``hi`` (inclusive; None: no lower bound)."""
        day = self.column("day")
        # As the array's own type: a Python int would make NumPy cast the whole slice first
        # (a copy of every day of the code: 0.9 s for 13 million rows, measured).
        low = None if lo is None else np.int32(lo)
        high = np.int32(hi)
        found: list[Slice] = []
        for i in sorted(ids):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            if a == b:
                continue
            days = day[a:b]
            start = a if low is None else a + int(np.searchsorted(days, low, "left"))
            stop = a + int(np.searchsorted(days, high, "right"))
            if stop <= start:
                continue
            keep = None
            if isinstance(ids, dict) and ids[i] != self.code_vocabularies[i]:
                keep = [self.names.index(v) for v in ids[i]]  # some vocabularies of a code
            found.append((i, start, stop, keep))
        return found

    def take(self, name: str, slices: list[Slice]) -> np.ndarray:
        """A column's values on the slices' rows, in order."""
        column = self.column(name)
        readahead(column, [(start, stop) for _, start, stop, _ in slices])
        parts = []
        for _, start, stop, keep in slices:
            part = column[start:stop]
            if keep is not None:
                part = part[np.isin(self.column("vocabulary")[start:stop], keep)]
            parts.append(part)
        if not parts:
            return np.zeros(0, dtype=column.dtype)
        return np.concatenate(parts) if len(parts) > 1 else np.asarray(parts[0])


class CodeArrays:
    """The code arrays of one optimized database, for ``BitmapEngine``. ``answered`` and
    ``declined`` count the rules answered here and left to DuckDB (the tests use them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._tables: dict[str, _Table | None] = {}
        self.answered = self.declined = 0
        # Rules are answered on several threads at once (``BitmapEngine._side_by_side``).
        self._lock = threading.Lock()

    def table(self, name: str) -> _Table | None:
        with self._lock:
            if name not in self._tables:
                folder = self.folder / name
                complete = code_arrays.fingerprint(folder) is not None
                self._tables[name] = _Table(folder) if complete else None
            return self._tables[name]

    def people(
        self, table: str, pairs: list[tuple[str, str]], rows: int | None
    ) -> tuple[list[int], bool] | None:
        """For each (vocabulary, code) of ``table``, the people with a record of it (or of a
        code below it), from the first-date summary (one row per code and person), and
        whether the counts are exact: they are when the arrays hold every one of the table's
        ``rows`` (the manifest's count; records without a person index, a date, a code or a
        vocabulary are left out of the arrays, ``records/code_arrays.py``), else they are a
        lower bound, as ``optimize``'s table of codes gives. None when the arrays cannot say
        (an OMOP concept, a table without arrays)."""
        first, whole = self.table(table + code_arrays.FIRST), self.table(table)
        if first is None or whole is None:
            return None
        found = []
        for pair in pairs:
            ids = first.code_ids((pair,), ())
            if ids is None:
                return None
            person = first.take("person", first.slices(ids, None, np.iinfo(np.int32).max))
            if len(person) == 0:
                found.append(0)
                continue
            seen = np.zeros(int(person.max()) + 1, dtype=bool)
            seen[person] = True
            found.append(int(np.count_nonzero(seen)))
        return found, rows is not None and int(whole.offsets[-1]) == rows

    def prefetch(self, spec: Any, index_date: date) -> None:
        """Read ahead (``readahead``) the rows ``bits`` will read for a leaf rule: a hint,
        given for every rule of a question before the first is computed (``BitmapEngine``),
        so that a cold disk streams them while the population and the first rules are
        computed. It restates ``_bits``' choice of table and columns; where it guesses wrong
        the answer is the same, only a read is wasted or not overlapped."""
        for table, slices, names in self._reads(spec, index_date):
            table.prefetch(names, slices)

    def _reads(
        self, spec: Any, index_date: date
    ) -> list[tuple[_Table, list[Slice], tuple[str, ...]]]:
        if isinstance(spec, DeathSpec):
            t = self.table("death")
            if t is None:
                return []
            return [(t, t.slices([0], *_days(*spec.within.bounds(index_date))), ("person",))]
        lo, hi = _days(*window_bounds(spec.within, index_date))
        if isinstance(spec, VisitSpec):
            t = self.table("visit_occurrence")
            if t is None:
                return []
            ids = [
                i
                for i, c in enumerate(t.codes)
                if spec.concept_ids is None or c in spec.concept_ids
            ]
            snapshot = t.asof(hi) if spec.min_count == 1 else None
            if snapshot is not None:
                rows = snapshot[0]
                for i in ids:
                    readahead(rows, [(i * rows.shape[1], (i + 1) * rows.shape[1])])
                return []
            names = ("next", "person") if spec.min_count == 1 else ("person", "day")
            return [(t, t.slices(ids, lo, hi), names)]
        if not isinstance(spec, EventSpec) or (isinstance(spec, DrugSpec) and spec.exposure):
            return []
        t = self.table(spec.TABLE)
        if t is None:
            return []
        value = getattr(spec, "value", None)
        valued = ("value", *_normal_columns(value)) if value is not None else ()
        if isinstance(spec, ValuedSpec) and spec.latest:
            runs = self.table(spec.TABLE + code_arrays.RUNS)
            if lo is None and value is None and runs is not None:
                t, names = runs, ("next_start", "person", "day", "vocabulary")
            else:
                later = "next_valued" if value is not None else "next"
                names = (later, "person", "day", "vocabulary", *valued)
            ids = t.code_ids(spec.among_codeset, spec.exclude_codeset)
            return [] if ids is None else [(t, t.slices(ids, lo, hi), names)]
        if lo is None and value is None and spec.min_count <= 2:
            first = self.table(spec.TABLE + code_arrays.FIRST)
            if first is not None:
                ids = first.code_ids(spec.codeset, spec.exclude_codeset)
                names = ("person", "day", "second") if spec.min_count == 2 else ("person",)
                return [] if ids is None else [(first, first.slices(ids, None, hi), names)]
        ids = t.code_ids(spec.codeset, spec.exclude_codeset)
        if ids is None:
            return []
        if spec.min_count == 1 and value is None:
            names = ("next", "person", "vocabulary")
        else:
            names = ("person", "day", "vocabulary", *valued)
        return [(t, t.slices(ids, lo, hi), names)]

    def bits(self, spec: Any, index_date: date, size: int) -> np.ndarray | None:
        """A leaf rule's packed bitmap over ``size`` people, or None when the arrays cannot
        answer it."""
        return self._counted(self._bits(spec, index_date, size))

    def entry_bits(
        self, spec: Any, people: np.ndarray, days: np.ndarray, size: int
    ) -> np.ndarray | None:
        """A leaf rule's packed bitmap relative to each person's own entry date (``people``:
        dense indexes, ascending; ``days``: their entry dates, days since 1970), or None when
        the arrays cannot answer it: what ``codes`` declines, value ranges, codes kept in only
        some of their vocabularies, arrays without ``person_day.npy``."""
        return self._counted(self._entry_bits(spec, people, days, size))

    def _counted(self, found: np.ndarray | None) -> np.ndarray | None:
        """``found``, counted as answered or declined (rules run on several threads)."""
        with self._lock:
            if found is None:
                self.declined += 1
            else:
                self.answered += 1
        return found

    def _entry_bits(
        self, spec: Any, people: np.ndarray, days: np.ndarray, size: int
    ) -> np.ndarray | None:
        among: dict[int, set[str]] | list[int] | None
        hits: dict[int, set[str]] | list[int] | None = None
        if isinstance(spec, DeathSpec):
            t, among, min_count = self.table("death"), [0], 1
        elif isinstance(spec, VisitSpec):
            t, min_count = self.table("visit_occurrence"), spec.min_count
            wanted = spec.concept_ids
            among = (
                []
                if t is None
                else [i for i, c in enumerate(t.codes) if wanted is None or c in wanted]
            )
        elif isinstance(spec, EventSpec):
            if isinstance(spec, DrugSpec) and spec.exposure is not None:
                return None
            if getattr(spec, "value", None) is not None:
                return None  # values are in the (code, date) order only
            t, min_count = self.table(spec.TABLE), spec.min_count
            if t is None:
                return None
            if isinstance(spec, ValuedSpec) and spec.latest:
                among = t.code_ids(spec.among_codeset, spec.exclude_codeset)
                hits = t.code_ids(spec.codeset, spec.exclude_codeset)
            else:
                among = t.code_ids(spec.codeset, spec.exclude_codeset)
            for ids in (among, hits):
                if isinstance(ids, dict) and any(
                    v != t.code_vocabularies[i] for i, v in ids.items()
                ):
                    return None  # a code kept in some vocabularies only: no vocabulary order
        else:
            return None
        if t is None or among is None:
            return None
        found_keys, blocks = t.array(code_arrays.KEYS), t.array(code_arrays.BLOCKS)
        if found_keys is None or blocks is None:
            return None
        keys = np.asarray(found_keys)  # a plain view of the map: cheaper fancy indexing
        within = spec.within
        person = people.astype(np.int64) << 32
        if within is None:
            low = person  # the smallest key of each person: no lower bound
        else:
            low = person + (days.astype(np.int64) - within.days_before + code_arrays.DAY_SHIFT)
        after = 0 if within is None else within.days_after
        high = person + (days.astype(np.int64) + after + code_arrays.DAY_SHIFT)
        codes = [i for i in sorted(among) if t.offsets[i] < t.offsets[i + 1]]
        if not codes:
            return np.zeros((size + 7) // 8, dtype=np.uint8)
        # Every (code, person) query at once: each searches only its person's block of rows.
        last = blocks.shape[1] - 1
        block = np.minimum(people // code_arrays.BLOCK_PEOPLE, last)
        after_block = np.minimum(block + 1, last)
        rows = np.asarray(blocks)  # one code's row at a time: faster than a 2-D fancy index
        starts = np.concatenate([t.offsets[i] + rows[i][block] for i in codes])
        stops = np.concatenate([t.offsets[i] + rows[i][after_block] for i in codes])
        k = len(codes)
        highs = np.tile(high, k)
        if hits is not None:
            # "latest" without a value range: each competing code's latest record in a
            # person's window is the row before the window's end; the person matches when the
            # hit codes' latest day is every competing code's latest day (``Compiler.events``).
            stop = _bound(keys, starts, stops, highs, right=True)
            some = (stop > starts) & (keys[np.maximum(stop - 1, 0)] >= np.tile(low, k))
            day = np.where(some, keys[np.maximum(stop - 1, 0)] & _DAY_BITS, -1).reshape(k, -1)
            hit = np.asarray([i in hits for i in codes], dtype=bool)
            latest = day.max(axis=0, initial=-1)
            latest_hit = day[hit].max(axis=0, initial=-1)
            held = (latest >= 0) & (latest_hit == latest)
        else:
            if min_count == 1:
                inside = _any_between(keys, starts, stops, np.tile(low, k), highs)
                held = inside.reshape(k, -1).any(axis=0)
            else:
                start = _bound(keys, starts, stops, np.tile(low, k), right=False)
                n = _bound(keys, start, stops, highs, right=True) - start
                # Distinct (person, day) keys per entered person, over every code.
                distinct = np.unique(keys[_ranges(start, n)])
                per_person = np.bincount(
                    np.searchsorted(person, distinct & ~_DAY_BITS, "left"), minlength=len(people)
                )
                held = per_person >= min_count
        return packed_sorted(people[held], size)

    def _bits(self, spec: Any, index_date: date, size: int) -> np.ndarray | None:
        if isinstance(spec, DeathSpec):
            t = self.table("death")
            if t is None:
                return None
            lo, hi = _days(*spec.within.bounds(index_date))
            return _packed(t.take("person", t.slices([0], lo, hi)), size)
        lo, hi = _days(*window_bounds(spec.within, index_date))
        if isinstance(spec, VisitSpec):
            t = self.table("visit_occurrence")
            if t is None:
                return None
            wanted = spec.concept_ids
            ids = [i for i, c in enumerate(t.codes) if wanted is None or c in wanted]
            if spec.min_count == 1 and (found := _visited(t, ids, lo, hi, size)) is not None:
                return found
            return self._dated(t, t.slices(ids, lo, hi), spec.min_count, None, hi, size)
        if not isinstance(spec, EventSpec):
            return None
        if isinstance(spec, DrugSpec) and spec.exposure is not None:
            return None  # exposure periods: DuckDB's gaps and islands
        t = self.table(spec.TABLE)
        if t is None:
            return None
        value = getattr(spec, "value", None)
        if value is not None and not _value_columns(t, value):
            return None
        if isinstance(spec, ValuedSpec) and spec.latest:
            if lo is None and value is None:
                runs = self.table(spec.TABLE + code_arrays.RUNS)
                if runs is not None:
                    return self._latest_runs(runs, spec, hi, size)
            return self._latest(t, spec, lo, hi, size)
        if lo is None and value is None and spec.min_count <= 2:
            first = self.table(spec.TABLE + code_arrays.FIRST)
            if first is not None and (spec.min_count == 1 or first.array("second") is not None):
                return self._first(first, spec, hi, size)
        ids = t.code_ids(spec.codeset, spec.exclude_codeset)
        if ids is None:
            return None
        return self._dated(t, t.slices(ids, lo, hi), spec.min_count, value, hi, size)

    @staticmethod
    def _first(t: _Table, spec: EventSpec, hi: int, size: int) -> np.ndarray | None:
        """A rule without a lower window bound and without a value range from the first-date
        summary (one row per code and person; ``Compiler.source`` argues it exact): a record
        on or before ``hi`` exists when the first date is; two dates when some code's second
        date is too, or two codes' first dates differ (``Compiler.date_rows``)."""
        ids = t.code_ids(spec.codeset, spec.exclude_codeset)
        if ids is None:
            return None
        slices = t.slices(ids, None, hi)
        person = t.take("person", slices)
        if spec.min_count == 1:
            return _packed(person, size)
        day, second = t.take("day", slices), t.take("second", slices)
        some_day = np.zeros(size, dtype=np.int32)
        some_day[person] = day
        return _packed(person[(second <= np.int32(hi)) | (some_day[person] != day)], size)

    @staticmethod
    def _dated(
        t: _Table,
        slices: list[Slice],
        min_count: int,
        value: ValueRange | None,
        hi: int,
        size: int,
    ) -> np.ndarray:
        """The people with matching records on at least ``min_count`` distinct days."""
        later = t.array("next")
        if min_count == 1 and value is None and later is not None:
            # Only each code's latest record on or before the window's end (its next date is
            # after it): one write per code and person instead of one per record.
            t.prefetch(("next", "person", "vocabulary"), slices)
            return _people_after(later, hi, slices, t.column("person"), t.array("vocabulary"), size)
        if value is not None:
            t.prefetch(("value", *_normal_columns(value)), slices)
        person = t.take("person", slices)
        ok = None if value is None else _value_ok(lambda c: t.take(c, slices), value)
        if ok is not None:
            person = person[ok]
        if min_count == 1:
            return _packed(person, size)
        day = t.take("day", slices)
        if ok is not None:
            day = day[ok]
        if min_count == 2:
            # Without sorting (``BitmapEngine._two_dates_bits``): any one row's day written
            # per person differs from another row's day exactly when the days are not all
            # equal, whichever write wins.
            some_day = np.zeros(size, dtype=np.int32)
            some_day[person] = day
            return _packed(person[some_day[person] != day], size)
        key = person.astype(np.int64) << 22 | (day.astype(np.int64) + DAY_OFFSET)
        distinct = np.unique(key) >> 22
        return np.packbits(np.bincount(distinct, minlength=size) >= min_count)

    def _latest_runs(self, t: _Table, spec: ValuedSpec, hi: int, size: int) -> np.ndarray | None:
        """A "latest" rule without a lower window bound and without a value range from the
        runs summary (``Compiler.source`` argues it exact: the latest run start on or before
        ``hi`` with a candidate record holds the records of the latest candidate day). When
        every code of the table competes and no run was left out of the arrays, that run is
        the person's current one (its start on or before ``hi``, the next run's after it):
        the person matches when it holds a hit, one pass over the hit codes' runs. Otherwise
        every candidate run competes (``_latest`` without next dates)."""
        among = t.code_ids(spec.among_codeset, spec.exclude_codeset)
        hits = t.code_ids(spec.codeset, spec.exclude_codeset)
        if among is None or hits is None:
            return None
        every = {i: vs for i, vs in enumerate(t.code_vocabularies) if vs}
        if t.dropped != 0 or among != every or t.array("next_start") is None:
            return self._latest(t, spec, None, hi, size)
        slices = t.slices(hits, None, hi)
        t.prefetch(("next_start", "person", "vocabulary"), slices)
        later, person = t.column("next_start"), t.column("person")
        return _people_after(later, hi, slices, person, t.array("vocabulary"), size)

    @staticmethod
    def _latest(
        t: _Table, spec: ValuedSpec, lo: int | None, hi: int, size: int
    ) -> np.ndarray | None:
        """Every record of the ``among`` codes in the window competes (with a value, when the
        rule has a value range); a person matches when a record on their latest competing
        day is a hit: one of ``codes``, its value in range."""
        among = t.code_ids(spec.among_codeset, spec.exclude_codeset)
        hits = t.code_ids(spec.codeset, spec.exclude_codeset)
        if among is None or hits is None:
            return None
        slices = t.slices(among, lo, hi)
        # Only each (code, person)'s latest records on or before the window's end compete
        # (their next date of that code, with a value for a value range, is after it): the
        # records on a person's latest day are among them, and a pass over the next dates is
        # cheaper than writing every record's person (``optimize``'s next dates).
        later = t.array("next_valued" if spec.value is not None else "next")
        high = np.int32(hi)
        value = t.array("value")
        vocabulary = t.array("vocabulary")
        read = ["next_valued" if spec.value is not None else "next", "person", "day", "vocabulary"]
        if spec.value is not None:
            read += ["value", *_normal_columns(spec.value)]
        t.prefetch(tuple(read), slices)
        rows_parts, hit_parts, ends = [], [], [0]
        for i, start, stop, keep in slices:
            if later is None:  # arrays written without next dates
                competing = np.ones(stop - start, dtype=bool)
            else:
                competing = later[start:stop] > high
            if keep is not None:
                assert vocabulary is not None
                competing &= np.isin(vocabulary[start:stop], keep)
            if spec.value is not None:
                assert value is not None
                competing &= ~np.isnan(value[start:stop])
            index = start + np.flatnonzero(competing)
            if i not in hits:
                hit_parts.append(np.zeros(len(index), dtype=bool))
            elif hits[i] == among[i]:
                hit_parts.append(np.ones(len(index), dtype=bool))
            else:  # a code string in several vocabularies, a hit in only some of them
                assert vocabulary is not None
                wanted = [t.names.index(v) for v in hits[i]]
                hit_parts.append(np.isin(vocabulary[index], wanted))
            rows_parts.append(index)
            ends.append(ends[-1] + len(index))
        rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
        hit = np.concatenate(hit_parts) if hit_parts else np.zeros(0, dtype=bool)
        if spec.value is not None:
            hit &= _value_ok(lambda c: t.column(c)[rows], spec.value)
        if later is not None and len(slices) == 1 and len(t.code_vocabularies[slices[0][0]]) == 1:
            # One code in one vocabulary competes: each person's competing records are the
            # ones on their latest day (the next date is after the window's end), so a hit
            # among them decides (``Compiler.latest_hits``): no latest days to compare.
            return _packed(t.column("person")[rows[hit]], size)
        person, day = t.column("person")[rows], t.column("day")[rows]
        # A person matches when their latest hit day is their latest candidate day.
        bounds = np.asarray(ends)
        latest = _latest_days(person, day, bounds, size)
        hit_ends = np.concatenate([[0], np.cumsum(hit)])[bounds]
        latest_hit = _latest_days(person[hit], day[hit], hit_ends, size)
        return np.packbits((latest_hit == latest) & (latest != _NONE))


_NONE = np.iinfo(np.int32).min  # no day
SCATTERS = 8  # slices up to which ``_latest_days`` scatters per slice


def _latest_days(person: np.ndarray, day: np.ndarray, ends: np.ndarray, size: int) -> np.ndarray:
    """Each person's latest day (``_NONE``: none) among rows made of runs ``ends[k]:ends[k+1]``
    whose days ascend (one code's rows in the window). Within a run the last write per person
    is their latest day (NumPy assigns repeated indices in order, the last value staying);
    runs are combined with ``maximum``. Many runs: one ``maximum.at`` (slower per row, but
    not a pass over everyone per run)."""
    latest = np.full(size, _NONE, dtype=np.int32)
    if len(ends) - 1 > SCATTERS:
        np.maximum.at(latest, person, day)
        return latest
    run: np.ndarray | None = None
    first = True
    for a, b in itertools.pairwise(ends.tolist()):
        if a == b:
            continue
        if first:  # nothing to combine with yet: written in place
            latest[person[a:b]] = day[a:b]
            first = False
            continue
        if run is None:
            run = np.empty(size, dtype=np.int32)
        run.fill(_NONE)  # one buffer for every later run
        run[person[a:b]] = day[a:b]
        np.maximum(latest, run, out=latest)
    return latest


# Where the kernel supports it: read ahead exactly the rows a rule will read.
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
_PAGE = 4096
_PIECE = 1 << 20  # bytes per request: within any readahead window (Linux: 128 kB-8 MB)


def readahead(column: np.ndarray, ranges: list[tuple[int, int]]) -> None:
    """Ask the kernel to read rows ``start:stop`` of a memory-mapped ``.npy`` column into the
    page cache now, one request per range (``posix_fadvise(WILLNEED)``, asynchronous). Why: a
    rule reads a few slices of files of gigabytes; when the page cache does not hold them
    (a new process after other work), each page fault of the map waits for one read-around of
    the whole readahead window (8 MB here) and the next fault waits again: 1.2 s for four
    drug codes' year at scale 1.0 (measured), where one request per slice streams them at the
    disk's rate. Pages already cached cost a look-up. Quietly nothing without a file."""
    if _WILLNEED is None or not isinstance(column, np.memmap) or column.filename is None:
        return
    size = column.itemsize
    try:
        fd = os.open(column.filename, os.O_RDONLY)
    except OSError:
        return
    try:
        for start, stop in ranges:
            low = (column.offset + start * size) // _PAGE * _PAGE
            high = column.offset + stop * size
            # In pieces: the kernel reads at most its readahead window per call (the rest of
            # a longer range is quietly dropped).
            for at in range(low, high, _PIECE):
                os.posix_fadvise(fd, at, min(_PIECE, high - at), _WILLNEED)
    except OSError:
        return
    finally:
        os.close(fd)


def _people_after(
    later: np.ndarray,
    hi: int,
    slices: list[Slice],
    person: np.ndarray,
    vocabulary: np.ndarray | None,
    size: int,
) -> np.ndarray:
    """Packed bits of the people with a row in ``slices`` whose ``later`` day (the next date
    of its code, the next run's start) is after ``hi``: each code's latest row, or the
    current run, on or before ``hi``; a slice's ``keep`` limits it to some vocabularies."""
    high = np.int32(hi)
    mask = np.zeros(size, dtype=bool)
    for _, start, stop, keep in slices:
        after = later[start:stop] > high
        if keep is not None:
            assert vocabulary is not None
            after &= np.isin(vocabulary[start:stop], keep)
        # Positions, then a take: a boolean index of the memory-mapped column took twice as
        # long (25 million visits in five years at scale 1.0, measured).
        mask[person[start:stop].take(np.flatnonzero(after))] = True
    return np.packbits(mask)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The row numbers of the ranges ``starts[k] : starts[k] + lengths[k]``, in order."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    begins = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64) - begins, lengths) + np.arange(total)


_DAY_BITS = np.int64(0xFFFFFFFF)  # the day part of a (person, day) key


def _bound(
    keys: np.ndarray, lo: np.ndarray, hi: np.ndarray, wanted: np.ndarray, *, right: bool
) -> np.ndarray:
    """Per query, the first row in ``lo[j]:hi[j]`` (sorted keys) whose key is >= ``wanted[j]``
    (with ``right``: > it). Empty ranges (most (code, person) pairs have no rows) are
    dropped once, before the search."""
    found = lo.copy()
    open_ = np.flatnonzero(lo < hi)
    if len(open_):
        base = lo[open_]
        found[open_] = _search(keys, base, hi[open_] - base, wanted[open_], right=right)
    return found


def _any_between(
    keys: np.ndarray, lo: np.ndarray, hi: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Per query, whether ``lo[j]:hi[j]`` (sorted keys) holds a key in ``[low[j], high[j]]``:
    ``_bound``, with the last comparison read for the non-empty ranges only (a read of the
    keys per query is a cache miss: they are gigabytes at Stockholm 1.0)."""
    held = np.zeros(len(lo), dtype=bool)
    open_ = np.flatnonzero(lo < hi)
    if len(open_):
        base, stop = lo[open_], hi[open_]
        first = _search(keys, base, stop - base, low[open_], right=False)
        some = first < stop
        held[open_[some]] = keys[first[some]] <= high[open_[some]]
    return held


def _search(
    keys: np.ndarray, base: np.ndarray, n: np.ndarray, wanted: np.ndarray, *, right: bool
) -> np.ndarray:
    """Per query, the first row in ``base[j]:base[j] + n[j]`` (sorted keys, ``n`` >= 1)
    whose key is >= ``wanted[j]`` (with ``right``: > it). Vectorized: each step gathers one
    key per query, so the memory reads of every query overlap (``np.searchsorted``, one
    query after the other, waits for each). Branchless (a base and a length halved each
    step, the same number of steps for every query): no compaction between steps, which
    cost more than the steps it saved. ``n`` is changed in place."""
    for _ in range(int(n.max() - 1).bit_length()):
        half = n >> 1
        mid = base + half
        below = (keys[mid] <= wanted) if right else (keys[mid] < wanted)
        base = np.where(below, mid, base)
        n -= half
    return base + ((keys[base] <= wanted) if right else (keys[base] < wanted))


def _days(lo: date | None, hi: date) -> tuple[int | None, int]:
    epoch = code_arrays.EPOCH
    return (None if lo is None else (lo - epoch).days), (hi - epoch).days


def _visited(t: _Table, ids: list[int], lo: int | None, hi: int, size: int) -> np.ndarray | None:
    """The people with a record of one of the codes ``ids`` on days ``lo``..``hi`` from the
    snapshot of each person's latest day on or before ``hi`` (``_Table.asof``): their latest
    day is on or after ``lo``. None without a snapshot of that day."""
    found = t.asof(hi)
    if found is None:
        return None
    latest, base = found
    people = latest.shape[1]
    if people > size:
        return None  # never expected (the snapshot's people are the region's)
    # Days before ``base`` hold no record: every day recorded (1 and up) is on or after them.
    low = np.uint16(1 if lo is None else min(max(lo - base, 1), np.iinfo(np.uint16).max))
    mask = np.zeros(size, dtype=bool)
    for i in ids:
        row = latest[i]
        readahead(latest, [(i * people, (i + 1) * people)])
        mask[:people] |= row >= low
    return np.packbits(mask)


def _packed(person: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[person] = True
    return np.packbits(mask)


def packed_sorted(person: np.ndarray, size: int) -> np.ndarray:
    """``_packed`` for ascending, distinct people, in time proportional to their number:
    the bits of each byte are or-ed together, without a bool per person of the region and
    its packing (1 ms a rule at Stockholm 1.0, for a few thousand people)."""
    packed = np.zeros((size + 7) // 8, dtype=np.uint8)
    if not len(person):
        return packed
    byte = person >> 3
    bit = np.right_shift(np.uint8(0x80), (person & 7).astype(np.uint8))
    first = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
    packed[byte[first]] = np.bitwise_or.reduceat(bit, first)
    return packed


_NORMAL = (
    ("min_times_upper_normal", "range_high", True),
    ("max_times_upper_normal", "range_high", False),
    ("min_times_lower_normal", "range_low", True),
    ("max_times_lower_normal", "range_low", False),
)


def _normal_columns(value: ValueRange) -> list[str]:
    """The normal-range columns a value range compares (none for plain bounds)."""
    return sorted({c for key, c, _ in _NORMAL if getattr(value, key) is not None})


def _value_columns(t: _Table, value: ValueRange) -> bool:
    """Whether the table has the columns the value range compares (``Compiler._value_ok``
    matches nothing without normal ranges: a region without them keeps DuckDB's answer)."""
    needed = {"value"} | {c for key, c, _ in _NORMAL if getattr(value, key) is not None}
    return all(t.array(c) is not None for c in needed)


def _value_ok(take: Callable[[str], np.ndarray], value: ValueRange) -> np.ndarray:
    """``Compiler._value_ok`` on some rows (``take``: a column's values on them): NaN (no
    value) compares false everywhere."""
    v = take("value")
    ok = ~np.isnan(v)
    if value.min is not None:
        ok &= v >= value.min
    if value.max is not None:
        ok &= v <= value.max
    if value.above is not None:
        ok &= v > value.above
    if value.below is not None:
        ok &= v < value.below
    for key, column, at_least in _NORMAL:
        factor = getattr(value, key)
        if factor is not None:
            bound = take(column) * factor
            ok &= ~np.isnan(bound) & ((v >= bound) if at_least else (v <= bound))
    return ok


def open_codes(arrays: Path) -> CodeArrays | None:
    """The code arrays in a database's arrays folder (``optimize.arrays_path``), if any."""
    folder = arrays / code_arrays.FOLDER
    return CodeArrays(folder) if folder.is_dir() else None
