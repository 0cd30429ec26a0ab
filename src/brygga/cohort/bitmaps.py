"""Rule person sets as bitmaps over the region's people (the DuckDB engine).

Feasibility questions are refined one rule at a time and share rules (type 2 diabetes, a
recent visit, smoking status), so the engine keeps:

* the **person index**: every person of the region in ``person_id`` order; a person's position
  is their *dense index*. An optimized region stores it (``person_index`` on every table a rule
  reads, ``records/optimize.py``); otherwise the engine numbers the ``person`` table once;
* per index date, the **population**: who is alive and under observation (a bitmap), with age,
  sex and municipality, and each person's breakdown cell (sex, 10-year age band,
  municipality) as an index into a short list of cells;
* one **bitmap per rule** (packed bits over the dense index: 400 kB for 3.3 million people),
  computed once from the rule's rows: DuckDB returns the dense index of every matching row
  (duplicates and all) and NumPy sets the bits, which costs a fraction of asking DuckDB for
  the distinct people. "latest" rules come back as one (person, date, hit) row per candidate
  record and are decided in NumPy by one ``maximum.at`` over (date, hit) keys; on an optimized
  region only each code's latest records compete, and with one competing code only the hits
  come back (``_latest_bits``). Rules on two dates come back as (person, day, twice) rows and
  are decided without grouping (``_two_dates_bits``).

A question is then NumPy work: the demographics as a mask within the population, the attrition
as successive AND / AND-NOT with a popcount per step, the breakdowns as one ``bincount`` of the
cells of the final mask. Groups (``any_of``, ``all_of``, ``at_least``) combine the bitmaps of
their rules, so every leaf rule is computed once whatever group it appears in. Bitmaps are
bounded in total bytes and dropped least recently used first; the answers are those of
``Compiled.summary``.

A question with an ``entry`` (each person's own index date) is kept the same way, per entry
definition instead of per index date (``_entrykeep.py``): its entered people are the population
(ages at each person's entry date) and its rules' bitmaps are relative to those dates.
"""

from __future__ import annotations

__all__ = ["BitmapEngine", "Cell", "Kept", "Population", "count"]

import ctypes
import hashlib
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from brygga.cohort._entrykeep import (
    days_sql,
    entries,
    entries_sql,
    entry_key,
    population_sql,
    table_name,
)
from brygga.cohort.codearrays import CodeArrays, packed_sorted
from brygga.cohort.compile import Compiler
from brygga.cohort.criteria import (
    SEX_CONCEPTS,
    Criteria,
    DeathSpec,
    Demographics,
    Entry,
    Model,
    ValuedSpec,
    rule_body,
    rule_kind,
)
from brygga.cohort.engine import Evaluation
from brygga.cohort.engines import IbisEngine
from brygga.cohort.population import step_description
from brygga.cohort.stored import StoredSets, numpy_column
from brygga.privacy.cellkey import FeasibilityKeys, key_units
from brygga.records.optimize import PERSON_INDEX
from brygga.util import lazy_module

# Imported on first use, for start-up time: only a rule DuckDB computes needs PyArrow's kernels.
pc = lazy_module("pyarrow.compute")

Cell = tuple[str, int, str | None]


@dataclass(frozen=True)
class Population:
    """The people alive and under observation at one index date, over the dense person index.

    Arrays have one entry per person of the region; only those in ``alive`` are meaningful.
    """

    alive: np.ndarray  # packed bits: alive and under observation at the index date
    age: np.ndarray  # int32
    gender: np.ndarray  # int64 gender_concept_id
    municipality: np.ndarray  # int32 index into ``municipalities``; -1 when unknown
    municipalities: list[str]
    cell: np.ndarray  # int32 index into ``cells``
    cells: list[Cell]
    # The people who count (dense indexes, ascending) when the population was built from
    # them; ``None`` when built from whole columns.
    at: np.ndarray | None = None

    @classmethod
    def from_arrow(cls, table: pa.Table, size: int) -> Population:
        """From ``Compiler.population()`` with each person's dense index ``i`` (ascending),
        among ``size`` people in all."""
        municipality, municipalities = _codes(table.column("municipality"))
        sex, sexes = _codes(table.column("sex"))
        return cls.from_arrays(
            at=table.column("i").to_numpy().astype(np.int64),
            age=table.column("age").to_numpy().astype(np.int32),
            age_band=table.column("age_band").to_numpy().astype(np.int64),
            gender=table.column("gender_concept_id").to_numpy(),
            sex=sex,
            sexes=sexes,
            municipality=municipality,
            municipalities=municipalities,
            size=size,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        at: np.ndarray,
        age: np.ndarray,
        age_band: np.ndarray,
        gender: np.ndarray,
        sex: np.ndarray,
        sexes: list[Any],
        municipality: np.ndarray,
        municipalities: list[Any],
        size: int,
    ) -> Population:
        """From NumPy columns of the people who count (dense index ``at``, ascending); sex and
        municipality as codes into their lists (-1: unknown municipality)."""
        if len(at) and (at[0] < 0 or at[-1] >= size or not np.all(at[1:] > at[:-1])):
            raise AssertionError("population indexes must ascend, without repeats, below size")
        band = age_band.astype(np.int64)
        # One integer per (sex, band, municipality); its distinct values are the cells.
        band_min = int(band.min()) if len(band) else 0
        span = int(band.max()) - band_min + 1 if len(band) else 1
        combined = (sex.astype(np.int64) * span + (band - band_min)) * (len(municipalities) + 1) + (
            municipality + 1
        )
        distinct, cell = _distinct(combined)
        cells: list[Cell] = []
        for value in distinct.tolist():
            rest, m = divmod(value, len(municipalities) + 1)
            s, b = divmod(rest, span)
            cells.append((sexes[s], b + band_min, municipalities[m - 1] if m else None))
        return cls(
            alive=_bits(at, size),
            age=_spread(at, age.astype(np.int32), size, 0),
            gender=_spread(at, gender, size, 0),
            municipality=_spread(at, municipality.astype(np.int32), size, -1),
            municipalities=municipalities,
            cell=_spread(at, cell.astype(np.int32), size, 0),
            cells=cells,
            at=at,
        )

    @classmethod
    def from_columns(
        cls,
        *,
        alive: np.ndarray,
        age: np.ndarray,
        gender: np.ndarray,
        sex: np.ndarray,
        sexes: list[Any],
        municipality: np.ndarray,
        municipalities: list[Any],
    ) -> Population:
        """``from_arrays`` from whole columns over everyone (``alive``: a bool per person, the
        people who count; the other columns' values of everyone else are ignored): the same
        population, without gathering the people who count and spreading them back."""
        # Everyone else is zeroed by multiplying with ``alive`` (one pass; a masked
        # assignment or ``np.where`` takes two to three times as long over millions).
        on = alive.view(np.int8)
        age = age.astype(np.int32, copy=False) * on
        band = age // np.int32(10)
        band *= np.int32(10)
        n_places = len(municipalities) + 1
        band_min = int(band.min()) if len(band) else 0
        span = int(band.max()) - band_min + 1 if len(band) else 1
        # The cell's integer as ``from_arrays`` orders it, plus one; 0 for everyone else.
        combined = sex.astype(np.int32)  # a copy, changed in place below
        combined *= np.int32(span)
        combined += band
        combined -= np.int32(band_min)
        combined *= np.int32(n_places)
        combined += municipality.astype(np.int32, copy=False)
        combined += np.int32(2)
        combined *= on
        present = np.bincount(combined)[1:] > 0
        rank = np.zeros(len(present) + 1, dtype=np.int32)  # everyone else: cell 0
        rank[1:] = np.cumsum(present) - 1
        cells: list[Cell] = []
        for value in np.flatnonzero(present).tolist():
            rest, m = divmod(value, n_places)
            s, b = divmod(rest, span)
            cells.append((sexes[s], b + band_min, municipalities[m - 1] if m else None))
        return cls(
            alive=np.packbits(alive),
            age=age,
            gender=gender * on,
            municipality=_zeroed(municipality.astype(np.int32) + np.int32(1), on) - np.int32(1),
            municipalities=municipalities,
            cell=rank[combined],
            cells=cells,
        )

    @property
    def size(self) -> int:
        return len(self.age)

    def demographics(self, d: Demographics) -> np.ndarray:
        """As ``Compiler.demographics``, within the population: an unknown municipality fails
        a municipality filter."""
        at = self._sparse()
        if at is None:
            passes = self._passes(
                d, self.mask(self.alive), self.age, self.gender, self.municipality
            )
            return np.packbits(passes)
        everyone = np.ones(len(at), dtype=bool)
        passes = self._passes(d, everyone, self.age[at], self.gender[at], self.municipality[at])
        return packed_sorted(at[passes], self.size)

    def _passes(
        self,
        d: Demographics,
        mask: np.ndarray,
        age: np.ndarray,
        gender: np.ndarray,
        municipality: np.ndarray,
    ) -> np.ndarray:
        """``mask`` (changed in place) and-ed with ``d`` over these people's columns."""
        if d.age is not None and d.age.min is not None:
            mask &= age >= d.age.min
        if d.age is not None and d.age.max is not None:
            mask &= age <= d.age.max
        if d.sex is not None:
            # Comparisons, not np.isin (which sorts): 3.3 M people in 4 ms instead of 50.
            mask &= np.logical_or.reduce([gender == SEX_CONCEPTS[s] for s in d.sex])
        if d.municipalities is not None:
            wanted = set(d.municipalities)
            allowed = np.array([False] + [m in wanted for m in self.municipalities])
            mask &= allowed[municipality + 1]  # -1 (unknown) -> False
        return mask

    def _sparse(self) -> np.ndarray | None:
        """The people who count, when they are few enough that working on them alone beats a
        pass over everyone: an entry's incident people are thousands among millions."""
        at = self.at
        return at if at is not None and len(at) * 8 < self.size else None

    def mask(self, bits: np.ndarray) -> np.ndarray:
        return np.unpackbits(bits, count=self.size).view(bool)

    def cell_counts(self, bits: np.ndarray) -> dict[Cell, int]:
        at = self._sparse()
        if at is None:
            cell = self.cell[self.mask(bits)]
        else:
            shift = (7 - (at & 7)).astype(np.uint8)
            cell = self.cell[at[((bits[at >> 3] >> shift) & 1).astype(bool)]]
        counts = np.bincount(cell, minlength=len(self.cells))
        return {self.cells[i]: int(counts[i]) for i in np.flatnonzero(counts)}

    def cell_sums(self, bits: np.ndarray, units: np.ndarray) -> dict[Cell, int]:
        """Exact per-cell sums of non-negative int64 ``units`` below 2**32 (record-key units):
        two float64 ``bincount``s of 16-bit halves, each exact below 2**53."""
        chosen = self.mask(bits)
        cell, u = self.cell[chosen], units[chosen]
        n = len(self.cells)
        high = np.bincount(cell, weights=(u >> 16).astype(np.float64), minlength=n)
        low = np.bincount(cell, weights=(u & 0xFFFF).astype(np.float64), minlength=n)
        people = np.bincount(cell, minlength=n)
        return {self.cells[i]: (int(high[i]) << 16) + int(low[i]) for i in np.flatnonzero(people)}


def _zeroed(values: np.ndarray, on: np.ndarray) -> np.ndarray:
    """``values`` (a new array) times ``on`` (0 or 1 per person), in place."""
    values *= on
    return values


def _bits(positions: np.ndarray, size: int) -> np.ndarray:
    """Packed bits, set at ``positions`` (repeats allowed)."""
    mask = np.zeros(size, dtype=bool)
    mask[positions] = True
    return np.packbits(mask)


def _spread(at: np.ndarray, values: np.ndarray, size: int, fill: int) -> np.ndarray:
    out = np.full(size, fill, dtype=values.dtype)
    out[at] = values
    return out


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for small non-negative ints, without a sort."""
    if len(values) == 0 or values.max() >= 1 << 26:
        return np.unique(values, return_inverse=True)
    present = np.zeros(int(values.max()) + 1, dtype=bool)
    present[values] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present), rank[values]


def _epoch_days(ymd: np.ndarray) -> np.ndarray:
    """Dates as YYYYMMDD integers to days since 1970-01-01 (int64)."""
    ymd = ymd.astype(np.int64)
    months = (ymd // 10000 - 1970) * 12 + (ymd // 100 % 100 - 1)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first + ymd % 100 - 1


# Arrays up to this size come from the heap once freed ones can serve them (glibc's
# ``mallopt``): otherwise glibc maps fresh pages for each and every page is faulted in again
# (a question never asked at 3.3 million people made 90,000 page faults in 8 runs and took
# 15 % more CPU, measured; 9,000 with the heap). Freed memory is kept up to ``_TRIM``.
_MMAP_THRESHOLD = 64 * 2**20
_TRIM = 256 * 2**20
_heap_set = False


def _arrays_from_the_heap() -> None:
    """Once per process, on Linux with glibc; quietly nothing elsewhere."""
    global _heap_set
    if _heap_set or not sys.platform.startswith("linux"):
        return
    _heap_set = True
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's name (``find_library`` runs ldconfig)
        libc.mallopt(-3, _MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, _TRIM)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its own allocator's defaults
        return


def _rule_hash(rule: Model) -> str:
    """A leaf rule's key among the kept bitmaps (in memory and on disk)."""
    canonical = json.dumps(
        [type(rule).__name__, rule.model_dump(mode="json")],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _leaf_rules(rules: list[Model]) -> list[Model]:
    """The leaf rules (not demographics) of ``rules``, groups walked, in order."""
    found: list[Model] = []
    for rule in rules:
        kind, body = rule_kind(rule), rule_body(rule)
        if kind in ("any_of", "all_of", "none_of"):
            found += _leaf_rules(body)
        elif kind == "at_least":
            found += _leaf_rules(body.of)
        elif kind != "demographics":
            found.append(rule)
    return found


def count(bits: np.ndarray) -> int:
    return int(np.bitwise_count(bits).sum())


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes (-1 for null) and the dictionary."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return indices.astype(np.int32), encoded.dictionary.to_pylist()


# What a population and its bitmaps are kept for: an index date, or an entry's key
# (``_entrykeep.entry_key``).
At = date | str


class Kept:
    """Populations (a few index dates or entry definitions) and rule bitmaps, least recently
    used dropped first."""

    def __init__(self, max_bytes: int, max_dates: int, stored: StoredSets | None = None) -> None:
        self.max_bytes, self.max_dates = max_bytes, max_dates
        self.stored = stored  # rule bitmaps kept on disk for later processes (``stored.py``)
        self.populations: OrderedDict[At, Population] = OrderedDict()
        self.bitmaps: OrderedDict[tuple[At, str], np.ndarray] = OrderedDict()
        self.bytes = 0

    def population(self, index_date: At, build: Callable[[], Population]) -> Population:
        if index_date in self.populations:
            self.populations.move_to_end(index_date)
        else:
            self.populations[index_date] = build()
            while len(self.populations) > self.max_dates:
                old, _ = self.populations.popitem(last=False)
                for key in [k for k in self.bitmaps if k[0] == old]:
                    self.bytes -= self.bitmaps.pop(key).nbytes
        return self.populations[index_date]

    def drop_bitmaps(self) -> None:
        self.bitmaps.clear()
        self.bytes = 0

    def bitmap(
        self,
        key: tuple[At, str],
        build: Callable[[], np.ndarray],
        *,
        nbytes: int | None = None,
    ) -> np.ndarray:
        """``key``'s bitmap, built once; with ``nbytes`` (a rule's) also kept on disk."""
        if key in self.bitmaps:
            self.bitmaps.move_to_end(key)
            return self.bitmaps[key]
        bits = None
        if self.stored is not None and nbytes is not None:
            bits = self.stored.bitmap(key, nbytes)
        if bits is None:
            bits = build()
            if self.stored is not None and nbytes is not None:
                self.stored.keep(key, bits)
        return self.put(key, bits)

    def put(self, key: tuple[At, str], bits: np.ndarray, *, keep: bool = False) -> np.ndarray:
        """Hold ``key``'s bitmap (with ``keep``, a rule's just computed: also on disk)."""
        if keep and self.stored is not None:
            self.stored.keep(key, bits)
        if key in self.bitmaps:
            self.bytes -= self.bitmaps.pop(key).nbytes
        self.bitmaps[key] = bits
        self.bytes += bits.nbytes
        while self.bytes > self.max_bytes and len(self.bitmaps) > 1:
            _, dropped = self.bitmaps.popitem(last=False)
            self.bytes -= dropped.nbytes
        return bits


# Days since this date, doubled, plus one for a hit: a "latest" rule's record key (int32).
_EPOCH = "DATE '1800-01-01'"


class BitmapEngine(IbisEngine):
    """DuckDB finds each rule's rows once; NumPy keeps them as bitmaps and answers questions.

    Still an ``IbisEngine`` (``compile``, ``tables``, ``run_sql``), so code that needs the
    compiled plan keeps working. One engine may be shared between threads: every question
    holds the engine's lock (one DuckDB connection, one set of kept bitmaps).
    """

    MAX_BYTES = 512 * 2**20  # kept bitmaps: about 1,300 rules at 3.3 million people
    MAX_DATES = 3
    INDEX_TABLE = "brygga_person_index"  # numbered here when the region has no person_index

    def __init__(
        self,
        tables: Any,
        to_sql: Callable[[Any], str],
        run_sql: Callable[[str], list[dict[str, Any]]],
        fetch: Callable[[str], pa.Table],
        execute: Callable[[str], None],
        *,
        stored: StoredSets | None = None,
        codes: CodeArrays | None = None,
        threads: int = 1,
    ) -> None:
        super().__init__("duckdb", tables, to_sql, run_sql, fetch)
        self.execute = execute
        self.stored = stored  # arrays and kept bitmaps of an optimized region (``stored.py``)
        self.codes = codes  # the rule tables as arrays: rules without DuckDB (``codearrays.py``)
        self.threads = threads  # rules found at once (``_side_by_side``)
        if stored is not None:  # NumPy over millions of people: large arrays, often
            _arrays_from_the_heap()
        self.kept = Kept(self.MAX_BYTES, self.MAX_DATES, stored)
        self._units: np.ndarray | None = None
        self._code_counts: dict[tuple[str, Any, bool], int] = {}
        self._entry_tables: set[str] = set()  # entries' temporary tables on the connection
        # Each kept entry's entered people (dense index, ascending) and entry days (since
        # 1970): what the code arrays answer its rules from (``CodeArrays.entry_bits``).
        self._entry_days: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def to_arrow(self, expr: Any) -> pa.Table:
        with self.lock:  # one DuckDB connection, shared between threads
            return super().to_arrow(expr)

    @property
    def indexed(self) -> bool:
        """Whether the region's tables carry ``person_index`` (an optimized region)."""
        return self.stored is not None or self.tables.table(PERSON_INDEX) is not None

    @cached_property
    def index_table(self) -> str:
        """The table of (person_id, person_index); a region without one has its person
        table numbered here, once."""
        if self.indexed:
            return PERSON_INDEX
        self.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.INDEX_TABLE} AS SELECT person_id, "
            f"(row_number() OVER (ORDER BY person_id) - 1)::INTEGER AS {PERSON_INDEX} "
            "FROM person"
        )
        return self.INDEX_TABLE

    @cached_property
    def ids(self) -> np.ndarray:
        """Every person's ``person_id``, by dense index."""
        if self.stored is not None:
            return self.stored.ids()
        found = self.fetch(f"SELECT person_id FROM {self.index_table} ORDER BY {PERSON_INDEX}")
        return found.column("person_id").to_numpy().astype(np.int64)

    def population(self, index_date: date) -> Population:
        def build() -> Population:
            if self.stored is not None:
                return Population.from_columns(**self.stored.population(index_date))
            people = self.to_sql(Compiler(self.tables, index_date).population())
            rows = self.fetch(
                f"SELECT x.{PERSON_INDEX} AS i, p.* FROM ({people}) p "
                f"JOIN {self.index_table} x ON p.person_id = x.person_id ORDER BY 1"
            )
            return Population.from_arrow(rows, len(self.ids))

        return self.kept.population(index_date, build)

    def entry_population(self, entry: Entry, index_date: date) -> Population:
        """The people entered by ``entry``, at their own entry dates (``_entrykeep.py``); their
        temporary table stays on the connection for the entry's rules."""

        key = entry_key(entry)

        def build() -> Population:
            if self.stored is not None:
                # Kept on disk like the rule bitmaps (and not when they are not): an earlier
                # process's entries need no query.
                disk = self.kept.stored
                kept = None if disk is None else disk.entries(key)
                if kept is None:
                    self._entry_table(entry, index_date)
                    found = self.fetch(days_sql(entry))
                    kept = numpy_column(found, "i").astype(np.int64), numpy_column(found, "ymd")
                    if disk is not None:
                        disk.keep_entries(key, *kept)
                for stale in [k for k in self._entry_days if k not in self.kept.populations]:
                    del self._entry_days[stale]
                self._entry_days[key] = (kept[0], _epoch_days(kept[1]))
                return Population.from_arrays(**self.stored.entered(*kept))
            self._entry_table(entry, index_date)
            rows = self.fetch(population_sql(self.tables, entry, index_date, self.to_sql))
            return Population.from_arrow(rows, len(self.ids))

        return self.kept.population(key, build)

    def _entry_table(self, entry: Entry, index_date: date) -> None:
        """The entry's temporary table on the connection, created unless it is there; those
        of entries no longer kept dropped. (Asking DuckDB's catalogue instead costs 10-20 ms
        a rule.)"""
        name = table_name(entry_key(entry))
        kept = {table_name(k) for k in self.kept.populations if isinstance(k, str)} | {name}
        for stale in sorted(self._entry_tables - kept):
            self.execute(f"DROP TABLE IF EXISTS {stale}")
            self._entry_tables.discard(stale)
        if name not in self._entry_tables:
            sql = entries_sql(self.tables, entry, index_date, self.index_table, self.to_sql)
            self.execute(sql)
            self._entry_tables.add(name)

    def rule_bits(
        self,
        rule: Model,
        index_date: date,
        population: Population,
        entry: Entry | None = None,
    ) -> np.ndarray:
        """The rule's bitmap at ``index_date``, or with ``entry`` at each person's entry date
        (``population`` is then ``entry_population``'s)."""
        kind, body = rule_kind(rule), rule_body(rule)
        if kind in ("any_of", "all_of"):
            parts = [self.rule_bits(r, index_date, population, entry) for r in body]
            combine = np.bitwise_or if kind == "any_of" else np.bitwise_and
            return combine.reduce(parts)
        if kind == "none_of":
            parts = [self.rule_bits(r, index_date, population, entry) for r in body]
            return ~np.bitwise_or.reduce(parts)  # the steps keep only the population
        if kind == "demographics":
            return population.demographics(body)
        if kind == "at_least":
            held = np.zeros(population.size, dtype=np.int32)
            for r in body.of:
                held += population.mask(self.rule_bits(r, index_date, population, entry))
            return np.packbits(held >= body.n)
        rule_hash = _rule_hash(rule)
        if entry is not None:
            return self.kept.bitmap(
                (entry_key(entry), rule_hash),
                lambda: self._entry_leaf_bits(body, index_date, entry, population.size),
                nbytes=(population.size + 7) // 8,
            )
        return self.kept.bitmap(
            (index_date, rule_hash),
            lambda: self._leaf_bits(body, index_date, population.size),
            nbytes=(population.size + 7) // 8,
        )

    def _entry_leaf_bits(self, spec: Any, index_date: date, entry: Entry, size: int) -> np.ndarray:
        """The compiler's rule relative to each entered person's entry date, read from the
        entry's temporary table (its dates are not found again); from the code arrays when
        they can answer it."""
        entered = self._entry_days.get(entry_key(entry))
        if self.codes is not None and entered is not None:
            bits = self.codes.entry_bits(spec, *entered, size)
            if bits is not None:
                return bits
        person = PERSON_INDEX if self.indexed else "person_id"
        self._entry_table(entry, index_date)  # a population read from disk needs it now
        compiler = Compiler(
            self.tables,
            index_date,
            key=person,
            distinct=False,
            entry=entry,
            entries=entries(entry, person),
        )
        return self._leaf_rows(compiler.leaf(spec), size)

    def _leaf_bits(self, spec: Any, index_date: date, size: int) -> np.ndarray:
        """From the code arrays when they can answer the rule; else one DuckDB query over the
        rule's rows, NumPy doing the per-person part."""
        if self.codes is not None and (bits := self.codes.bits(spec, index_date, size)) is not None:
            return bits
        return self._sql_leaf_bits(spec, index_date, size)

    def _sql_leaf_bits(self, spec: Any, index_date: date, size: int) -> np.ndarray:
        """A leaf rule through DuckDB."""
        person = PERSON_INDEX if self.indexed else "person_id"
        compiler = Compiler(self.tables, index_date, key=person, distinct=False)
        if isinstance(spec, ValuedSpec) and spec.latest:
            return self._latest_bits(compiler, spec, size)
        two_dates = not isinstance(spec, DeathSpec) and spec.min_count == 2
        if two_dates and (rows := compiler.date_rows(spec)) is not None:
            return self._two_dates_bits(rows, size)
        return self._leaf_rows(compiler.leaf(spec), size)

    def _two_dates_bits(self, rows: Any, size: int) -> np.ndarray:
        """``Compiler.dated_persons`` on two dates in NumPy, without grouping: a person has two dates when a
        row says so (``twice``) or their rows' days differ. Any one row's day, written for
        each person, differs from some other row's day exactly when the days are not all
        equal, whichever write wins."""
        found = self._indexed(self.to_sql(rows), f"(day - {_EPOCH})::INTEGER AS d", "twice")
        index, day, twice = found[PERSON_INDEX], found["d"], found["twice"]
        some_day = np.zeros(size, dtype=np.int32)
        some_day[index] = day
        return _bits(index[twice | (some_day[index] != day)], size)

    def _latest_bits(self, compiler: Compiler, spec: ValuedSpec, size: int) -> np.ndarray:
        """A "latest" rule by the cheapest exact route the region's tables allow."""
        state = compiler.latest_state(spec)
        if state is not None:
            found = self._indexed(self.to_sql(state), "among")
            index, among = found[PERSON_INDEX], found["among"]
            bits = _bits(index[among], size)
            others = _bits(index[~among], size)
            if others.any():  # latest days holding other codes only: look further back
                decided = self._leaf_rows(compiler.latest_state(spec, decided=True), size)
                bits |= self._latest_max(compiler, spec, size) & others & ~decided
            return bits
        if self._single_code(compiler, spec):
            return self._leaf_rows(compiler.latest_hits(spec), size)
        return self._latest_max(compiler, spec, size)

    def _leaf_rows(self, rows: Any, size: int) -> np.ndarray:
        """The bits of the people in ``rows`` (an Ibis table of the compiler's person key)."""
        return _bits(self._indexed(self.to_sql(rows))[PERSON_INDEX], size)

    def _latest_max(self, compiler: Compiler, spec: ValuedSpec, size: int) -> np.ndarray:
        """Every candidate record as (person, 2 x day + hit); the largest per person wins."""
        rows = self.to_sql(compiler.latest_candidates(spec))
        found = self._indexed(rows, f"(hit::INTEGER + 2 * (day - {_EPOCH}))::INTEGER AS k")
        best = np.full(size, -1, dtype=np.int32)
        np.maximum.at(best, found[PERSON_INDEX], found["k"])
        # The latest record matches when one of the records on the latest date is a hit.
        return np.packbits((best >= 0) & (best % 2 == 1))

    def _single_code(self, compiler: Compiler, spec: ValuedSpec) -> bool:
        """Whether at most one code competes (``Compiler.among_codes``). The answer depends
        on the region's codes only, so it is kept like the person index."""
        key = (spec.TABLE, spec.among_codeset, spec.exclude_codeset, spec.value is None)
        if key not in self._code_counts:
            codes = compiler.among_codes(spec)
            if codes is None:
                return False
            found = self.fetch(f"SELECT count(*) AS n FROM ({self.to_sql(codes)})")
            self._code_counts[key] = int(found.column("n")[0].as_py())
        return self._code_counts[key] <= 1

    def _indexed(self, rows: str, *extra: str) -> dict[str, np.ndarray]:
        """``rows`` (with the person column the compiler was given) as NumPy columns with
        ``person_index``; people missing from ``person`` are left out."""
        if self.indexed:
            index, source = f"r.{PERSON_INDEX}", f"({rows}) r WHERE r.{PERSON_INDEX} IS NOT NULL"
        else:
            index = f"x.{PERSON_INDEX}"
            source = f"({rows}) r JOIN {self.index_table} x ON r.person_id = x.person_id"
        sql = f"SELECT {', '.join((index, *extra))} FROM {source}"
        table = self.fetch(sql)
        return {name: numpy_column(table, name) for name in table.column_names}

    def _side_by_side(self, criteria: Criteria, index_date: date) -> None:
        """The population on ``index_date`` and the leaf rules no bitmap in memory holds, found
        on ``threads`` threads at once before the steps read them: each rule's kept bitmap on
        disk, else the code arrays' answer (NumPy releases the interpreter's lock for the
        passes over millions of rows), else, one by one here, DuckDB's. On an idle machine's
        two cores a question never asked before takes a little over its costliest part
        instead of their sum. Only with the code arrays (a database without them answers
        through one DuckDB connection)."""
        codes, stored = self.codes, self.stored
        if codes is None or stored is None or self.threads < 2:
            return
        size = len(stored.array("person_id"))
        nbytes = (size + 7) // 8
        todo: dict[tuple[At, str], Any] = {}
        for rule in _leaf_rules([*criteria.include, *criteria.exclude]):
            key = (index_date, _rule_hash(rule))
            if key not in self.kept.bitmaps:
                todo.setdefault(key, rule_body(rule))
        disk = self.kept.stored
        wanted = index_date not in self.kept.populations

        def population() -> Population:
            return Population.from_columns(**stored.population(index_date))

        def find(key: tuple[At, str], spec: Any) -> tuple[np.ndarray | None, bool]:
            # (bits, computed): read from disk, computed from the arrays, or None: DuckDB's.
            bits = disk.bitmap(key, nbytes) if disk is not None else None
            if bits is not None:
                return bits, False
            return codes.bits(spec, index_date, size), True

        if len(todo) + wanted < 2:
            return  # nothing to overlap: the steps find them one by one
        with ThreadPoolExecutor(self.threads) as pool:
            built = pool.submit(population) if wanted else None
            found = {key: pool.submit(find, key, spec) for key, spec in todo.items()}
            if built is not None:
                self.kept.population(index_date, built.result)
            for key, future in found.items():
                bits, computed = future.result()
                if bits is None:
                    bits = self._sql_leaf_bits(todo[key], index_date, size)
                self.kept.put(key, bits, keep=computed)

    def _read_ahead(self, criteria: Criteria, index_date: date) -> None:
        """Ask the kernel, on a thread of its own, to read what the population and the
        question's rules that nothing kept will read from the arrays (``CodeArrays.prefetch``),
        before the first is computed: when the page cache does not hold them (a new process
        after other work), the disk streams them while this thread computes, instead of each
        rule waiting for its own reads in turn. The thread only asks (``posix_fadvise``); it
        changes nothing the answer reads."""
        codes, stored = self.codes, self.stored
        if codes is None or stored is None:
            return
        disk, todo = self.kept.stored, []
        for rule in _leaf_rules([*criteria.include, *criteria.exclude]):
            key = (index_date, _rule_hash(rule))
            if key not in self.kept.bitmaps and (disk is None or not disk.has(key)):
                todo.append(rule_body(rule))
        population = index_date not in self.kept.populations
        if not todo and not population:
            return

        def read() -> None:
            try:
                if population:
                    stored.read_ahead()
                for spec in todo:
                    codes.prefetch(spec, index_date)
            # A hint never fails the question: the same reads raise these, where they matter,
            # on the question's own thread (a file gone, incomplete arrays).
            except (OSError, ValueError, KeyError, AssertionError):
                return

        threading.Thread(target=read, name="brygga-read-ahead", daemon=True).start()

    def steps(self, criteria: Criteria, index_date: date) -> tuple[Population, list[np.ndarray]]:
        """The population and the cumulative bitmap of every attrition step (with an entry:
        the entered people, and every step at their own entry dates)."""
        entry = criteria.entry
        if entry is None:
            at: At = index_date
            self._read_ahead(criteria, index_date)
            self._side_by_side(criteria, index_date)
            population = self.population(index_date)
        else:
            at = entry_key(entry)
            population = self.entry_population(entry, index_date)
        d = criteria.demographics
        demographics = self.kept.bitmap(
            (at, "demographics " + d.model_dump_json()),
            lambda: population.demographics(d),
        )
        steps = [population.alive, demographics]
        for kind, _, rule in criteria.steps()[1:]:
            assert rule is not None
            bits = self.rule_bits(rule, index_date, population, entry)
            steps.append(steps[-1] & (bits if kind == "include" else ~bits))
        return population, steps

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            descriptions = [step_description(index_date, criteria.entry)]
            descriptions += [d for _, d, _ in criteria.steps()]
            return Evaluation(
                index_date=index_date,
                steps=[(d, count(b)) for d, b in zip(descriptions, steps, strict=True)],
                cells=population.cell_counts(steps[-1]),
            )

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            return self.ids[population.mask(steps[-1])].tolist()

    def keys(self, criteria: Criteria, index_date: date) -> FeasibilityKeys:
        """Record-key sums per attrition step and per cell, over the kept bitmaps."""
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            units = self.units()
            sums = [int(units[population.mask(b)].sum()) for b in steps]
            return FeasibilityKeys(sums, population.cell_sums(steps[-1], units))

    def units(self) -> np.ndarray:
        """Every person's record-key units; a person without a key adds nothing (the left
        join's null in the SQL sum)."""
        if self._units is None and self.stored is not None:
            record_keys = self.stored.record_keys()
            if record_keys is not None:
                units = np.zeros(len(record_keys), dtype=np.int64)
                present = ~np.isnan(record_keys)
                units[present] = key_units(record_keys[present])
                self._units = units
        if self._units is None:
            keys = self.tables.table("person_key")
            if keys is None:
                raise AssertionError("region has no person_key table")
            rows = self.to_sql(
                keys.filter(keys.record_key.notnull()).select("person_id", "record_key")
            )
            found = self.fetch(
                f"SELECT x.{PERSON_INDEX} AS i, r.record_key FROM ({rows}) r "
                f"JOIN {self.index_table} x ON r.person_id = x.person_id"
            )
            units = np.zeros(len(self.ids), dtype=np.int64)
            units[found.column("i").to_numpy()] = key_units(found.column("record_key").to_numpy())
            self._units = units
        return self._units
