"""Hälsoläget: the state of health of the region, for residents and business (Stockholm 4.3).

The main conditions' recorded prevalence among adults and the SCORE2 risk categories (the ESC
model a person's age and diabetes status assign: SCORE2, SCORE2-OP, SCORE2-Diabetes), by
municipality, sex and age band. Every count passes the release gate in one table per measure
family (``privacy.people.PeopleTable``): each dimension's groups add up to the region, each
municipality's age bands add up to the municipality, and the people *without* a condition (never
shown) are tied to the population, so no suppressed count can be worked out by subtraction.
Rates are computed from the disclosed counts.

Municipalities differ in age structure, so where they are compared the rates are
**age-standardised** (direct method): each municipality's age-band rates weighted by the
region's own adult population by age band (the standard population), computed from disclosed
counts; a municipality with a suppressed age band has no standardised rate. Crude rates are
given beside them.

A condition counts as present when a diagnosis with one of its ICD-10 codes (by prefix) was
recorded on or before the index date (recorded lifetime prevalence), among people alive and
under observation that day (``cohort.population``).
"""

from __future__ import annotations

__all__ = ["ADULT_BANDS", "CONDITIONS", "SCORE2_BANDS", "halsolaget", "standardised"]

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from brygga.agenda.snapshot import disclosure_rule
from brygga.cohort.population import population
from brygga.prevention.inputs import extract_inputs, input_engine
from brygga.prevention.stratify import municipality_names, population_risk
from brygga.privacy.people import PeopleCounter, PeopleTable, population_units
from brygga.studies.matching import records_date

# (id, Swedish, English, ICD-10 prefixes)
CONDITIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("diabetes", "Diabetes", "Diabetes", ("E10", "E11", "E12", "E13", "E14")),
    ("hypertension", "Högt blodtryck", "High blood pressure", ("I10", "I11", "I12", "I13", "I15")),
    ("ischaemic_heart_disease", "Kranskärlssjukdom", "Ischaemic heart disease",
     ("I20", "I21", "I22", "I23", "I24", "I25")),
    ("atrial_fibrillation", "Förmaksflimmer", "Atrial fibrillation", ("I48",)),
    ("heart_failure", "Hjärtsvikt", "Heart failure", ("I50",)),
    ("stroke", "Stroke", "Stroke", ("I60", "I61", "I62", "I63", "I64")),
    ("copd", "KOL", "COPD", ("J44",)),
    ("asthma", "Astma", "Asthma", ("J45", "J46")),
    ("depression", "Depression", "Depression", ("F32", "F33")),
    ("dementia", "Demens", "Dementia", ("F00", "F01", "F02", "F03", "G30")),
    ("cancer", "Cancer", "Cancer", ("C",)),
    ("obesity", "Fetma", "Obesity", ("E66",)),
)  # fmt: skip
ADULT_BANDS = ((18, 39), (40, 64), (65, 79), (80, 130))
SCORE2_BANDS = ((40, 49), (50, 59), (60, 69), (70, 79), (80, 89))
SEXES = ("female", "male")
SEX_NAMES = {"female": ("Kvinnor", "Women"), "male": ("Män", "Men")}
CATEGORY_NAMES = {
    "low-to-moderate": ("Låg till måttlig risk", "Low to moderate risk"),
    "high": ("Hög risk", "High risk"),
    "very-high": ("Mycket hög risk", "Very high risk"),
}


@dataclass(frozen=True)
class _Grid:
    """One population split by municipality, age band and sex (indices per person)."""

    muni: np.ndarray
    band: np.ndarray
    sex: np.ndarray
    munis: list[str]
    bands: list[str]

    def cells(self, counter: PeopleCounter, mask: np.ndarray) -> dict[Hashable, tuple[int, int]]:
        """(count, key sum) of the people in ``mask`` per cell: all, sex, band, municipality
        and municipality x band (disjoint bins add up, ``PeopleCounter.tally``)."""
        sub = counter.subset(mask)
        m, b = len(self.munis), len(self.bands)
        counts, sums = sub.tally(self.muni[mask] * b + self.band[mask], m * b)
        counts, sums = counts.reshape(m, b), sums.reshape(m, b)
        out: dict[Hashable, tuple[int, int]] = {("all",): (int(counts.sum()), int(sums.sum()))}
        for i in range(m):
            out[("muni", i)] = (int(counts[i].sum()), int(sums[i].sum()))
            for j in range(b):
                out[("mb", i, j)] = (int(counts[i, j]), int(sums[i, j]))
        for j in range(b):
            out[("band", j)] = (int(counts[:, j].sum()), int(sums[:, j].sum()))
        s_counts, s_sums = sub.tally(self.sex[mask], len(SEXES))
        for k in range(len(SEXES)):
            out[("sex", k)] = (int(s_counts[k]), int(s_sums[k]))
        return out

    def add(self, table: PeopleTable, name: str, cells: dict[Hashable, tuple[int, int]]) -> None:
        """A measure's cells and the lines inside it (groups add up to all; with the
        municipality x band cells, bands to their municipality and municipalities to their
        band). Sex ``unknown`` is not a group: the sexes add up to at most all, which no line
        claims."""
        for key, (count, key_sum) in cells.items():
            table.add_count((name, *key), count, key_sum)
        m, b = len(self.munis), len(self.bands)
        table.line((name, "all"), [(name, "muni", i) for i in range(m)])
        table.line((name, "all"), [(name, "band", j) for j in range(b)])
        if ("mb", 0, 0) not in cells:
            return
        for i in range(m):
            table.line((name, "muni", i), [(name, "mb", i, j) for j in range(b)])
        for j in range(b):
            table.line((name, "band", j), [(name, "mb", i, j) for i in range(m)])


def _margins(cells: dict[Hashable, tuple[int, int]]) -> dict[Hashable, tuple[int, int]]:
    """Without the municipality x band cells (a measure only shown by one dimension at a time:
    fewer cells for secondary suppression to weigh)."""
    return {k: v for k, v in cells.items() if k[0] != "mb"}


def _complement(
    table: PeopleTable,
    whole: str,
    part: str,
    whole_cells: dict[Hashable, tuple[int, int]],
    part_cells: dict[Hashable, tuple[int, int]],
) -> None:
    """The people of ``whole`` not in ``part``, never shown, tied by a line per cell."""
    rest = f"{part}:rest"
    for key, (count, key_sum) in whole_cells.items():
        p_count, p_sum = part_cells[key]
        table.add_hidden_count((rest, *key), count - p_count, key_sum - p_sum)
        table.line((whole, *key), [(part, *key), (rest, *key)])


def _rate(num: dict[str, Any], den: dict[str, Any]) -> float | None:
    if num["value"] is None or not den["value"]:
        return None
    return num["value"] / den["value"]


def standardised(
    nums: Sequence[dict[str, Any]], dens: Sequence[dict[str, Any]], weights: Sequence[float]
) -> float | None:
    """Directly age-standardised rate from disclosed counts per age band; None when a band
    with weight is hidden or empty."""
    total = 0.0
    for num, den, w in zip(nums, dens, weights, strict=True):
        if w == 0:
            continue
        rate = _rate(num, den)
        if rate is None:
            return None
        total += w * rate
    return total


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def _band_labels(bands: Sequence[tuple[int, int]]) -> list[str]:
    return [f"{lo}–{hi}" if hi < 100 else f"{lo}+" for lo, hi in bands]


def _grid(age: np.ndarray, sex: np.ndarray, muni: np.ndarray, bands: Sequence[tuple[int, int]],
          names: dict[str, str]) -> tuple[_Grid, np.ndarray]:  # fmt: skip
    """The grid of the people in one of ``bands`` (and the mask of those people)."""
    band = np.full(len(age), -1, np.int64)
    for j, (lo, hi) in enumerate(bands):
        band[(age >= lo) & (age <= hi)] = j
    inside = band >= 0
    codes = np.array(["" if c is None else str(c) for c in muni], dtype=object)
    munis = sorted(set(codes[inside].tolist()))
    index = {c: i for i, c in enumerate(munis)}
    muni_i = np.array([index.get(c, 0) for c in codes], np.int64)
    sex_i = np.array([SEXES.index(s) if s in SEXES else len(SEXES) for s in sex], np.int64)
    labels = [f"{c} {names[c]}" if c in names else (c or "–") for c in munis]
    return _Grid(muni_i, band, np.minimum(sex_i, len(SEXES)), labels, _band_labels(bands)), inside


def _groups(grid: _Grid, shown: dict, name: str, den: str, weights: list[float]) -> dict:
    """A measure's disclosed counts and rates per dimension; municipalities age-standardised."""

    def row(key: tuple, label: Any) -> dict[str, Any]:
        num, d = shown[(name, *key)], shown[(den, *key)]
        return {"label": label, "count": num, "population": d, "rate": _pct(_rate(num, d))}

    munis = []
    for i, label in enumerate(grid.munis):
        r = row(("muni", i), label)
        if (name, "mb", i, 0) not in shown:
            munis.append(r)  # a measure shown by one dimension at a time: crude only
            continue
        r["standardised"] = _pct(
            standardised(
                [shown[(name, "mb", i, j)] for j in range(len(grid.bands))],
                [shown[(den, "mb", i, j)] for j in range(len(grid.bands))],
                weights,
            )
        )
        munis.append(r)
    return {
        "overall": row(("all",), None),
        "by_sex": [
            row(("sex", k), dict(zip(("sv", "en"), SEX_NAMES[s], strict=True)))
            for k, s in enumerate(SEXES)
        ],
        "by_age": [row(("band", j), label) for j, label in enumerate(grid.bands)],
        "by_municipality": munis,
    }


def _weights(grid: _Grid, shown: dict, den: str) -> list[float]:
    """The standard population: the region's people by age band (disclosed counts)."""
    values = [shown[(den, "band", j)]["value"] or 0 for j in range(len(grid.bands))]
    total = sum(values)
    return [v / total if total else 0.0 for v in values]


def _matches(code: Any, prefixes: Sequence[str]) -> Any:
    """``code`` starts with one of ``prefixes`` (ICD-10 codes are stored without the dot),
    as IN-lists over the leading characters rather than a regular expression per row."""
    by_length: dict[int, list[str]] = {}
    for p in prefixes:
        by_length.setdefault(len(p), []).append(p)
    tests = [code.substr(0, n).isin(group) for n, group in sorted(by_length.items())]
    out = tests[0]
    for t in tests[1:]:
        out = out | t
    return out


def _prevalence(region: Any, runner: Any, day: date, policy: Any, names: dict) -> dict[str, Any]:
    pop = population(runner, day)
    co = runner.table("condition_occurrence")
    recorded = co.filter(co.condition_start_date <= day)
    code = recorded.condition_source_value
    flags = recorded.group_by("person_id").aggregate(
        **{cid: _matches(code, prefixes).any() for cid, _, _, prefixes in CONDITIONS}
    )
    joined = pop.left_join(flags, pop.person_id == flags.person_id).select(
        pop.person_id, pop.sex, pop.age, pop.municipality,
        *[flags[cid].fill_null(False).name(cid) for cid, *_ in CONDITIONS],
    )  # fmt: skip
    cols = runner.to_arrow(joined).to_pydict()
    pid = np.asarray(cols["person_id"], np.int64)
    grid, adults = _grid(np.asarray(cols["age"]), np.asarray(cols["sex"], dtype=object),
                         np.asarray(cols["municipality"], dtype=object), ADULT_BANDS, names)  # fmt: skip
    counter = PeopleCounter(policy, population_units(policy, region, pid))
    table = PeopleTable(counter)
    whole = grid.cells(counter, adults)
    grid.add(table, "adults", whole)
    for cid, *_ in CONDITIONS:
        mask = adults & np.asarray(cols[cid], bool)
        part = grid.cells(counter, mask)
        grid.add(table, cid, part)
        _complement(table, "adults", cid, whole, part)
    shown = table.disclose(keep=[("adults", "all")])
    weights = _weights(grid, shown, "adults")
    return {
        "population": shown[("adults", "all")],
        "age_bands": grid.bands,
        "weights": [round(w, 4) for w in weights],
        "conditions": [
            {
                "id": cid,
                "name": {"sv": sv, "en": en},
                "codes": list(prefixes),
                **_groups(grid, shown, cid, "adults", weights),
            }
            for cid, sv, en, prefixes in CONDITIONS
        ],
    }


def _score2(region: Any, runner: Any, day: date, policy: Any, names: dict) -> dict[str, Any]:
    pr = population_risk(extract_inputs(region, index_date=day, engine=runner))
    c = pr.inputs.columns
    pid = np.asarray(pr.inputs["person_id"], np.int64)
    grid, banded = _grid(np.asarray(c["age"]), np.asarray(c["sex"], dtype=object),
                         np.asarray(c["municipality_code"], dtype=object), SCORE2_BANDS, names)  # fmt: skip
    complete = banded & (pr.category >= 0)
    counter = PeopleCounter(policy, population_units(policy, region, pid))
    table = PeopleTable(counter)
    whole = grid.cells(counter, complete)
    grid.add(table, "complete", whole)
    # The categories by one dimension at a time; "high or above" also by municipality x age
    # band, for the age-standardised shares (tied to the people assessed by its complement).
    for k, cat in enumerate(pr.categories):
        grid.add(table, cat, _margins(grid.cells(counter, complete & (pr.category == k))))
    for key in _margins(whole):  # the categories partition the people with complete inputs
        table.line(("complete", *key), [(cat, *key) for cat in pr.categories])
    high = grid.cells(counter, complete & (pr.category >= 1))
    grid.add(table, "high_or_above", high)
    for key in _margins(whole):
        table.line(("high_or_above", *key), [(cat, *key) for cat in pr.categories[1:]])
    mb = {k: v for k, v in whole.items() if k[0] == "mb"}
    _complement(table, "complete", "high_or_above", mb, {k: high[k] for k in mb})
    shown = table.disclose(keep=[("complete", "all")])
    weights = _weights(grid, shown, "complete")
    by_cat = {cat: _groups(grid, shown, cat, "complete", weights) for cat in pr.categories}
    return {
        "model": pr.model_choice,
        "age_bands": grid.bands,
        "weights": [round(w, 4) for w in weights],
        "categories": [
            {
                "id": cat,
                "name": dict(zip(("sv", "en"), CATEGORY_NAMES.get(cat, (cat, cat)), strict=True)),
                **by_cat[cat],
            }
            for cat in pr.categories
        ],
        "high_or_above": _groups(grid, shown, "high_or_above", "complete", weights),
    }


def halsolaget(
    region: Any, policy: Any, *, index_date: date | None = None, engine: Any = None
) -> dict[str, Any]:
    """The state of health of ``region`` on ``index_date`` (default: its records' last day)."""
    day = index_date or records_date(region)
    runner = input_engine(region, engine)
    names = municipality_names(runner)
    return {
        "region": region.name,
        "index_date": day.isoformat(),
        "disclosure": policy.description,
        "disclosure_rule": disclosure_rule(policy),
        "raw": bool(getattr(policy, "raw", False)),
        "prevalence": _prevalence(region, runner, day, policy, names),
        "score2": _score2(region, runner, day, policy, names),
    }
