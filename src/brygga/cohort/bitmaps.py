"""Rule person sets as bitmaps over the population at an index date (the DuckDB engine).

Feasibility questions are refined one rule at a time and share rules (type 2 diabetes, a
recent visit, smoking status), so the engine keeps, per index date:

* the **population**: everyone alive and under observation, sorted by ``person_id`` (its dense
  index), with age, sex and municipality, and each person's breakdown cell
  (sex, 10-year age band, municipality) as an index into a short list of cells;
* one **bitmap per rule** (packed bits over that dense index: 300 kB for 2.4 million people),
  computed once by DuckDB from the rule's person set (``compile.Compiler.rule``).

A question is then NumPy work: the demographics as a mask, the attrition as successive AND /
AND-NOT with a popcount per step, the breakdowns as one ``bincount`` of the cells of the final
mask. Groups (``any_of``, ``all_of``, ``at_least``) combine the bitmaps of their rules, so
every leaf rule is computed once whatever group it appears in. Bitmaps are bounded in total
bytes and dropped least recently used first; the answers are those of ``Compiled.summary``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from brygga.cohort.compile import Compiler
from brygga.cohort.criteria import SEX_CONCEPTS, Criteria, Demographics, Model, rule_body, rule_kind
from brygga.cohort.engines import Evaluation, IbisEngine, alive_and_observed_step
from brygga.privacy.cellkey import FeasibilityKeys, key_units

Cell = tuple[str, int, str | None]


@dataclass(frozen=True)
class Population:
    """The people alive and under observation at one index date, in ``person_id`` order."""

    ids: np.ndarray  # int64, sorted: position = dense index
    age: np.ndarray  # int32
    gender: np.ndarray  # int64 gender_concept_id
    municipality: np.ndarray  # int32 index into ``municipalities``; -1 when unknown
    municipalities: list[str]
    cell: np.ndarray  # int32 index into ``cells``
    cells: list[Cell]
    table: str  # DuckDB temporary table in person_id order: row id = dense index

    @classmethod
    def from_arrow(cls, table: pa.Table, name: str) -> Population:
        """From ``Compiler.population()`` ordered by person_id, kept in DuckDB as ``name``."""
        ids = table.column("person_id").to_numpy().astype(np.int64)
        if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
            raise AssertionError("the population must be sorted by person_id, without repeats")
        if not np.array_equal(table.column("i").to_numpy(), np.arange(len(ids))):
            raise AssertionError("the population's dense index must be its row order")
        municipality, municipalities = _codes(table.column("municipality"))
        sex, sexes = _codes(table.column("sex"))
        band = table.column("age_band").to_numpy().astype(np.int64)
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
            ids=ids,
            age=table.column("age").to_numpy().astype(np.int32),
            gender=table.column("gender_concept_id").to_numpy().astype(np.int64),
            municipality=municipality,
            municipalities=municipalities,
            cell=cell.astype(np.int32),
            cells=cells,
            table=name,
        )

    @property
    def size(self) -> int:
        return len(self.ids)

    def bitmap(self, positions: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        mask[positions] = True
        return np.packbits(mask)

    @cached_property
    def everyone(self) -> np.ndarray:
        return np.packbits(np.ones(self.size, dtype=bool))

    def demographics(self, d: Demographics) -> np.ndarray:
        """As ``Compiler.demographics``: an unknown municipality fails a municipality filter."""
        mask = np.ones(self.size, dtype=bool)
        if d.age is not None and d.age.min is not None:
            mask &= self.age >= d.age.min
        if d.age is not None and d.age.max is not None:
            mask &= self.age <= d.age.max
        if d.sex is not None:
            mask &= np.isin(self.gender, [SEX_CONCEPTS[s] for s in d.sex])
        if d.municipalities is not None:
            wanted = set(d.municipalities)
            codes = [i for i, m in enumerate(self.municipalities) if m in wanted]
            mask &= np.isin(self.municipality, codes)
        return np.packbits(mask)

    def mask(self, bits: np.ndarray) -> np.ndarray:
        return np.unpackbits(bits, count=self.size).view(bool)

    def cell_counts(self, bits: np.ndarray) -> dict[Cell, int]:
        counts = np.bincount(self.cell[self.mask(bits)], minlength=len(self.cells))
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


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for small non-negative ints, without a sort."""
    if len(values) == 0 or values.max() >= 1 << 26:
        return np.unique(values, return_inverse=True)
    present = np.zeros(int(values.max()) + 1, dtype=bool)
    present[values] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present), rank[values]


def count(bits: np.ndarray) -> int:
    return int(np.bitwise_count(bits).sum())


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes (-1 for null) and the dictionary."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return indices.astype(np.int32), encoded.dictionary.to_pylist()


class Kept:
    """Populations (a few index dates) and rule bitmaps, least recently used dropped first."""

    def __init__(
        self, max_bytes: int, max_dates: int, forget: Callable[[Population], None]
    ) -> None:
        self.max_bytes, self.max_dates, self.forget = max_bytes, max_dates, forget
        self.populations: OrderedDict[date, Population] = OrderedDict()
        self.bitmaps: OrderedDict[tuple[date, str], np.ndarray] = OrderedDict()
        self.units: dict[date, np.ndarray] = {}
        self.bytes = 0

    def population(self, index_date: date, build: Callable[[], Population]) -> Population:
        if index_date in self.populations:
            self.populations.move_to_end(index_date)
        else:
            self.populations[index_date] = build()
            while len(self.populations) > self.max_dates:
                old, population = self.populations.popitem(last=False)
                self.forget(population)
                self.units.pop(old, None)
                for key in [k for k in self.bitmaps if k[0] == old]:
                    self.bytes -= self.bitmaps.pop(key).nbytes
        return self.populations[index_date]

    def drop_bitmaps(self) -> None:
        self.bitmaps.clear()
        self.bytes = 0

    def bitmap(self, key: tuple[date, str], build: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self.bitmaps:
            self.bitmaps.move_to_end(key)
            return self.bitmaps[key]
        bits = build()
        self.bitmaps[key] = bits
        self.bytes += bits.nbytes
        while self.bytes > self.max_bytes and len(self.bitmaps) > 1:
            _, dropped = self.bitmaps.popitem(last=False)
            self.bytes -= dropped.nbytes
        return bits


class BitmapEngine(IbisEngine):
    """DuckDB computes each rule's person set once; NumPy answers the questions.

    Still an ``IbisEngine`` (``compile``, ``tables``, ``run_sql``), so code that needs the
    compiled plan keeps working. One engine may be shared between threads: every question
    holds the engine's lock (one DuckDB connection, one set of kept bitmaps).
    """

    MAX_BYTES = 512 * 2**20  # kept bitmaps: about 1,700 rules at 2.4 million people
    MAX_DATES = 3

    def __init__(
        self,
        tables: Any,
        to_sql: Callable[[Any], str],
        run_sql: Callable[[str], list[dict[str, Any]]],
        fetch: Callable[[str], pa.Table],
        execute: Callable[[str], None],
    ) -> None:
        super().__init__("duckdb", tables, to_sql, run_sql)
        self.fetch, self.execute = fetch, execute
        self.kept = Kept(self.MAX_BYTES, self.MAX_DATES, self._drop)

    def population(self, index_date: date) -> Population:
        def build() -> Population:
            # DuckDB keeps the population too, so that rule queries return dense indexes:
            # person ids are 63-bit pseudonyms, and mapping millions of them in NumPy (sorted
            # search or hashing) costs seconds of cache misses, DuckDB's join a fraction.
            name = f"brygga_population_{index_date:%Y%m%d}"
            people = self.to_sql(Compiler(self.tables, index_date).population())
            # Inserted in person_id order, so the row id is the dense index (checked on
            # reading; numbering rows with a window function cost three times as much).
            self.execute(
                f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM ({people}) "
                "ORDER BY person_id"
            )
            rows = self.fetch(f"SELECT *, rowid::INTEGER AS i FROM {name}")
            return Population.from_arrow(rows, name)

        return self.kept.population(index_date, build)

    def _drop(self, population: Population) -> None:
        self.execute(f"DROP TABLE IF EXISTS {population.table}")

    def positions(self, population: Population, sql: str) -> np.ndarray:
        """Dense indexes of the population's people among the ``person_id``s ``sql`` returns."""
        found = self.fetch(
            f"SELECT p.rowid::INTEGER AS i FROM {population.table} p SEMI JOIN ({sql}) r ON p.person_id = r.person_id"
        )
        return found.column("i").to_numpy()

    def rule_bits(self, rule: Model, index_date: date, population: Population) -> np.ndarray:
        kind, body = rule_kind(rule), rule_body(rule)
        if kind in ("any_of", "all_of"):
            parts = [self.rule_bits(r, index_date, population) for r in body]
            combine = np.bitwise_or if kind == "any_of" else np.bitwise_and
            return combine.reduce(parts)
        if kind == "at_least":
            held = np.zeros(population.size, dtype=np.int32)
            for r in body.of:
                held += population.mask(self.rule_bits(r, index_date, population))
            return np.packbits(held >= body.n)
        canonical = json.dumps(
            [type(rule).__name__, rule.model_dump(mode="json")],
            sort_keys=True,
            separators=(",", ":"),
        )
        key = (index_date, hashlib.sha256(canonical.encode()).hexdigest())

        def build() -> np.ndarray:
            expr = Compiler(self.tables, index_date).rule(rule)
            return population.bitmap(self.positions(population, self.to_sql(expr)))

        return self.kept.bitmap(key, build)

    def steps(self, criteria: Criteria, index_date: date) -> tuple[Population, list[np.ndarray]]:
        """The population and the cumulative bitmap of every attrition step."""
        population = self.population(index_date)
        d = criteria.demographics
        demographics = self.kept.bitmap(
            (index_date, "demographics " + d.model_dump_json()),
            lambda: population.demographics(d),
        )
        steps = [population.everyone, demographics]
        for kind, _, rule in criteria.steps()[1:]:
            assert rule is not None
            bits = self.rule_bits(rule, index_date, population)
            steps.append(steps[-1] & (bits if kind == "include" else ~bits))
        return population, steps

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            descriptions = [alive_and_observed_step(index_date)]
            descriptions += [d for _, d, _ in criteria.steps()]
            return Evaluation(
                index_date=index_date,
                steps=[(d, count(b)) for d, b in zip(descriptions, steps, strict=True)],
                cells=population.cell_counts(steps[-1]),
            )

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            return population.ids[population.mask(steps[-1])].tolist()

    def keys(self, criteria: Criteria, index_date: date) -> FeasibilityKeys:
        """Record-key sums per attrition step and per cell (``cellkey.feasibility_keys``)."""
        with self.lock:
            population, steps = self.steps(criteria, index_date)
            units = self.kept.units.get(index_date)
            if units is None:
                # A person without a key adds nothing (the left join's null in the SQL sum).
                keys = self.fetch(
                    f"SELECT p.rowid::INTEGER AS i, k.record_key FROM {population.table} p "
                    f"JOIN ({self.to_sql(self.table_or_fail('person_key'))}) k "
                    "ON p.person_id = k.person_id WHERE k.record_key IS NOT NULL"
                )
                units = np.zeros(population.size, dtype=np.int64)
                units[keys.column("i").to_numpy()] = key_units(keys.column("record_key").to_numpy())
                self.kept.units[index_date] = units
            sums = [int(units[population.mask(b)].sum()) for b in steps]
            return FeasibilityKeys(sums, population.cell_sums(steps[-1], units))

    def table_or_fail(self, name: str) -> Any:
        table = self.tables.table(name)
        if table is None:
            raise AssertionError(f"region has no {name} table")
        return table.select("person_id", "record_key")
