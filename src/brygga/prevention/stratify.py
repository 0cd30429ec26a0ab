"""Population stratification: risk categories by sex, age band, municipality and deprivation.

``population_risk`` scores everyone a model applies to (from ``inputs.extract_inputs``);
``stratify`` counts people per risk category in each group and passes every count through the
disclosure policy before it leaves the process (under the Cell Key Method with the key of the
people counted, ``privacy.people``), as one table: every group adds up over its categories and
every dimension's groups add up to the region, so cells are suppressed in addition to the small
ones until none can be worked out by subtraction (``privacy.people.PeopleTable``). Shares are
computed from the disclosed counts, so they reveal nothing the counts do not.

With ``model="applicable"`` (the default) each person gets the score the ESC assigns them and
the categories are merged into the three groups the ESC uses for treatment decisions:
SCORE2-Diabetes "low" and "moderate" both count as ``low-to-moderate``.
"""

from __future__ import annotations

__all__ = [
    "AGE_BANDS",
    "DIMENSIONS",
    "MODEL_CHOICES",
    "PopulationRisk",
    "group_keys",
    "municipality_names",
    "population_risk",
    "risk_report",
    "stratify",
]

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from brygga.cohort.engines import IbisEngine
from brygga.errors import InputError
from brygga.prevention.inputs import EXCLUSION_LABELS, MISSING_NAMES, Exclusion, RiskInputs
from brygga.prevention.scores import (
    DIABETES_CATEGORIES,
    MODEL_KEYS,
    MODELS,
    SCORE2_CATEGORIES,
    PopulationScores,
    score_population,
)
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.people import PeopleCounter, PeopleTable
from brygga.records.store import Region

MODEL_CHOICES = ("applicable", *MODEL_KEYS)
AGE_BANDS = ((40, 49), (50, 59), (60, 69), (70, 79), (80, 89))
DIMENSIONS = ("sex", "age_band", "municipality", "deprivation_quintile")
MISSING, INVALID, OUTSIDE = -2, -3, -1  # statuses besides a category index


@dataclass(frozen=True)
class PopulationRisk:
    """Scores and one category per person (``category``: index, or MISSING/INVALID/OUTSIDE)."""

    inputs: RiskInputs
    scores: PopulationScores
    model_choice: str
    categories: tuple[str, ...]
    category: np.ndarray

    @property
    def in_population(self) -> np.ndarray:
        return self.category != OUTSIDE

    @property
    def risk_percent(self) -> np.ndarray:
        return self.scores.risk_percent


def population_risk(
    inputs: RiskInputs, *, model: str = "applicable", risk_region: str = "moderate"
) -> PopulationRisk:
    if model not in MODEL_CHOICES:
        raise InputError(f"--model must be one of {', '.join(MODEL_CHOICES)}, not {model!r}")
    c = inputs.columns
    scores = score_population(
        age=c["age"], sex=np.where(c["sex"] == "unknown", "male", c["sex"]), smoker=c["smoker"],
        sbp=c["sbp"], total_chol=c["total_chol"], hdl=c["hdl"], diabetes=c["diabetes"],
        established_cvd=inputs.model < 0, age_at_diagnosis=c["age_at_diagnosis"],
        hba1c=c["hba1c"], egfr=c["egfr"], risk_region=risk_region,
    )  # fmt: skip
    if model == "applicable":
        categories = SCORE2_CATEGORIES
        # SCORE2-Diabetes low (0) and moderate (1) -> low-to-moderate; high, very-high shift down.
        merged = np.where(
            scores.model == MODEL_KEYS.index("score2-diabetes"),
            np.maximum(scores.category - 1, np.minimum(scores.category, 0)),
            scores.category,
        )
        chosen = inputs.model >= 0
    else:
        categories = DIABETES_CATEGORIES if model == "score2-diabetes" else SCORE2_CATEGORIES
        merged = scores.category
        chosen = inputs.model == MODEL_KEYS.index(model)
    category = np.select(
        [~chosen, inputs.missing > 0, merged < 0], [OUTSIDE, MISSING, INVALID], merged
    ).astype(np.int8)
    return PopulationRisk(inputs, scores, model, categories, category)


def _age_band(age: np.ndarray) -> np.ndarray:
    labels = np.full(len(age), "other", dtype=object)
    for lo, hi in AGE_BANDS:
        labels[(age >= lo) & (age < hi + 1)] = f"{lo}-{hi}"
    return labels


def group_keys(inputs: RiskInputs, dimension: str, names: dict[str, str]) -> np.ndarray:
    """The group label of every person for one dimension."""
    c = inputs.columns
    if dimension == "sex":
        return c["sex"].astype(object)
    if dimension == "age_band":
        return _age_band(c["age"])
    if dimension == "municipality":
        codes = np.where(c["municipality_code"] == None, "unknown", c["municipality_code"])  # noqa: E711
        return np.array([f"{k} {names[k]}" if k in names else k for k in codes], dtype=object)
    if dimension == "deprivation_quintile":
        q = c["deprivation_quintile"]
        return np.where(q > 0, q.astype(str), "unknown").astype(object)
    raise InputError(f"unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}")


def _add_row(
    table: PeopleTable, row: tuple, counts: np.ndarray, sums: np.ndarray, categories: tuple
) -> None:
    """One group's cells (counts and key sums: [per category..., missing, invalid]) and the
    lines inside it: people = complete + missing + invalid, complete = the categories."""
    k = len(categories)
    for i, status in enumerate((*categories, "missing", "invalid")):
        table.add_count((*row, status), int(counts[i]), int(sums[i]))
    table.add_count((*row, "complete"), int(counts[:k].sum()), int(sums[:k].sum()))
    table.add_count((*row, "people"), int(counts.sum()), int(sums.sum()))
    table.line((*row, "complete"), [(*row, label) for label in categories])
    table.line((*row, "people"), [(*row, s) for s in ("complete", "missing", "invalid")])


def _cell(shown: dict, row: tuple, categories: tuple[str, ...]) -> dict[str, Any]:
    """A group's disclosed counts, with shares computed from them."""
    cats = {label: shown[(*row, label)] for label in categories}
    total, missing = shown[(*row, "people")], shown[(*row, "missing")]
    known = shown[(*row, "complete")]["value"]
    shares = {
        label: (round(v["value"] / known, 3) if known and v["value"] is not None else None)
        for label, v in cats.items()
    }
    missing_share = (
        round(missing["value"] / total["value"], 3)
        if total["value"] and missing["value"] is not None
        else None
    )
    return {
        "people": total,
        "complete_inputs": shown[(*row, "complete")],
        "categories": cats,
        "missing_inputs": missing,
        "invalid_inputs": shown[(*row, "invalid")],
        "shares": shares,
        "missing_share": missing_share,
    }


def _status_index(pr: PopulationRisk) -> np.ndarray:
    k = len(pr.categories)
    return np.where(pr.category == MISSING, k, np.where(pr.category == INVALID, k + 1, pr.category))


def stratify(
    pr: PopulationRisk,
    policy: DisclosurePolicy,
    *,
    municipality_names: dict[str, str] | None = None,
    region_name: str = "",
    units: np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole stratification as one JSON-ready document; every count disclosed.

    ``units``: the key units of ``pr``'s people (``privacy.people.population_units``), which
    the Cell Key Method needs.
    """
    names = municipality_names or {}
    everyone = PeopleCounter(policy, units)
    inside = pr.in_population
    counter = everyone.subset(inside)
    status = _status_index(pr)[inside]
    width = len(pr.categories) + 2
    statuses = (*pr.categories, "missing", "invalid", "complete", "people")
    table = PeopleTable(everyone)
    overall, overall_sums = counter.tally(status, width)
    _add_row(table, ("overall",), overall, overall_sums, pr.categories)
    groups: dict[str, list[str]] = {}
    for dim in DIMENSIONS:  # each dimension splits the same people: its groups add up to overall
        keys = group_keys(pr.inputs, dim, names)[inside]
        labels, group = np.unique(keys.astype(str), return_inverse=True)
        counts, sums = counter.tally(group * width + status, len(labels) * width)
        counts, sums = counts.reshape(len(labels), width), sums.reshape(len(labels), width)
        groups[dim] = [str(label) for label in labels]
        for i, label in enumerate(groups[dim]):
            _add_row(table, (dim, label), counts[i], sums[i], pr.categories)
        for s in statuses:
            table.line(("overall", s), [(dim, label, s) for label in groups[dim]])
    _add_population(table, pr, inside)
    miss = pr.inputs.missing[inside]
    for flag, name in MISSING_NAMES.items():  # overlapping sets: no line ties them
        table.add_count(("missing_input", name), *_count(counter, (miss & flag) > 0))
    shown = table.disclose(keep=[("overall", "people"), ("population", "alive")])
    return {
        "region": region_name,
        "index_date": pr.inputs.index_date.isoformat(),
        "model": pr.model_choice,
        "model_names": [MODELS[k].name for k in _models_used(pr.model_choice)],
        "risk_region": pr.scores.risk_region,
        "categories": list(pr.categories),
        "raw": policy.raw,
        "disclosure": policy.description,
        "imputation": pr.inputs.imputation,
        "lookback_days": pr.inputs.lookback.as_dict(),
        "population": {
            "alive_and_observed": shown[("population", "alive")],
            "scored_population": shown[("overall", "people")],
            "not_scored": {k: shown[("not_scored", k)] for k in EXCLUSION_LABELS.values()},
        },
        "missing_inputs": {
            "any": shown[("overall", "missing")],  # the same people as the overall cell
            **{name: shown[("missing_input", name)] for name in MISSING_NAMES.values()},
        },
        "overall": _cell(shown, ("overall",), pr.categories),
        "breakdowns": {
            dim: {label: _cell(shown, (dim, label), pr.categories) for label in labels}
            for dim, labels in groups.items()
        },
    }


def _count(counter: PeopleCounter, rows: np.ndarray) -> tuple[int, int]:
    return int(np.count_nonzero(rows)), counter.key_sum(rows)


def _add_population(table: PeopleTable, pr: PopulationRisk, inside: np.ndarray) -> None:
    """Everyone alive and observed = the scored + each exclusion + people another model
    scores (never shown; zero with ``applicable``)."""
    everyone = np.ones(len(pr.inputs), bool)
    table.add(("population", "alive"), everyone)
    excluded = [
        table.add(("not_scored", label), pr.inputs.exclusion == code)
        for code, label in EXCLUSION_LABELS.items()
    ]
    other = table.add_hidden(
        ("not_scored", "other"), ~inside & (pr.inputs.exclusion == Exclusion.NONE)
    )
    table.line(("population", "alive"), [("overall", "people"), *excluded, other])


def _models_used(choice: str) -> tuple[str, ...]:
    return MODEL_KEYS if choice == "applicable" else (choice,)


def municipality_names(engine: IbisEngine) -> dict[str, str]:
    """Municipality code -> name, from the region's ``location`` table (if it has one)."""
    location = engine.table("location")
    if location is None:
        return {}
    rows = engine.to_arrow(location.select("location_source_value", "city")).to_pydict()
    pairs = zip(rows["location_source_value"], rows["city"], strict=True)
    return {str(code): str(city) for code, city in pairs if code and city}


def risk_report(
    region: Region,
    policy: DisclosurePolicy,
    *,
    model: str = "applicable",
    index_date: date | None = None,
    risk_region: str = "moderate",
    impute: bool = False,
    chart_dir: Path | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """``brygga risk``: stratify a region; optionally write one PNG chart per dimension.
    ``engine``: duckdb or spark (default: the configured engine); the same document on both."""
    from brygga.prevention._charts import risk_charts
    from brygga.prevention.inputs import extract_inputs, input_engine
    from brygga.privacy.people import population_units

    if model not in MODEL_CHOICES:
        raise InputError(f"--model must be one of {', '.join(MODEL_CHOICES)}, not {model!r}")
    runner = input_engine(region, engine)
    inputs = extract_inputs(region, index_date=index_date, impute=impute, engine=runner)
    pr = population_risk(inputs, model=model, risk_region=risk_region)
    units = population_units(policy, region, inputs["person_id"])
    doc = stratify(
        pr, policy, municipality_names=municipality_names(runner), region_name=region.name,
        units=units,
    )  # fmt: skip
    if chart_dir is not None:
        doc["charts"] = [str(p) for p in risk_charts(doc, chart_dir)]
    return doc
