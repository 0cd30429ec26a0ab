"""Data requests (EHDS art. 69): anonymous statistics about a cohort, by the breakdowns asked.

A request is a cohort in the criteria language plus the tables wanted, each a list of up to
three dimensions (``sex``, ``age_band``, ``municipality``, ``deprivation``), and optionally a
measure (``visits``: care visits in the year before the index date, summed per cell).

Every number leaves through the release gate:

* without a permit, or under a permit without a privacy budget: the deployment's policy
  (``Brygga.policy``), all tables of one answer in one ``PeopleTable`` (cell keys of exactly
  the people counted; each table adds up to the total, so secondary suppression protects a
  small cell from subtraction); a measure's sums in their own ``CountTable``;
* under a permit with a differential-privacy budget: one OpenDP grouped count per table over
  public categories (never categories read from the data), charged to the permit's budget
  before it runs (``privacy.budget.ProjectQueries``), then through a ``CountTable`` with the
  noisy policy (values from 1 to threshold-1 withheld).

Under a donation-based permit only donors are counted (``donors``). Statistics under a permit
are written as an output that passes output checking (``checking``) before anyone sees them.
"""

from __future__ import annotations

__all__ = [
    "DIMENSIONS",
    "MEASURES",
    "RequestSpec",
    "Statistics",
    "categories",
    "disclosed_total",
    "dp_statistics",
    "gated_statistics",
]

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from brygga.access.people import People
from brygga.errors import InputError
from brygga.privacy.budget import TOLERANCE, BudgetExceeded, ProjectQueries, budget_status
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.gate import CountTable
from brygga.privacy.noise import NoisyPolicy
from brygga.privacy.people import PeopleTable, people_counter
from brygga.records.store import Region
from brygga.registry.geography import SEATS

DIMENSIONS = ("sex", "age_band", "municipality", "deprivation")
MEASURES = ("visits",)
Dimension = Literal["sex", "age_band", "municipality", "deprivation"]


class RequestSpec(BaseModel):
    """The tables and breakdowns wanted (the cohort comes as a criteria document)."""

    model_config = ConfigDict(extra="forbid")

    tables: list[list[Dimension]] = Field(min_length=1, max_length=10)
    measure: Literal["visits"] | None = None
    # The privacy loss each table may spend under a permit with a budget.
    epsilon: float = Field(default=0.1, gt=0, le=5)

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[list[str]]) -> list[list[str]]:
        for table in value:
            if not 1 <= len(table) <= 3:
                raise ValueError("a table has one to three dimensions")
            if len(set(table)) != len(table):
                raise ValueError("a table names a dimension twice")
        return value


def categories(dimension: str) -> list[str]:
    """The public categories of a dimension (fixed in advance, not read from the data)."""
    if dimension == "sex":
        return ["female", "male", "unknown"]
    if dimension == "age_band":
        return [f"{b}-{b + 9}" for b in range(0, 100, 10)] + ["100+"]
    if dimension == "municipality":
        return [*sorted(SEATS), "unknown"]
    return ["1", "2", "3", "4", "5", "unknown"]


def _values(people: People, dimension: str) -> np.ndarray:
    if dimension == "sex":
        return people.sex
    if dimension == "age_band":
        return people.age_band()
    if dimension == "municipality":
        return people.municipality
    return people.deprivation


@dataclass
class Statistics:
    """An answer: every value already disclosed; ``dominance`` holds, per measure cell, the
    share of its largest contributors (internal: for the automatic checks, never shown)."""

    disclosure: str
    total: dict[str, Any]
    tables: list[dict[str, Any]]
    noise: dict[str, Any] | None = None
    dominance: dict[str, float] = field(default_factory=dict)
    budget: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = {"disclosure": self.disclosure, "total": self.total, "tables": self.tables}
        if self.noise is not None:
            doc["noise"] = self.noise
        if self.budget is not None:
            doc["budget"] = self.budget
        return doc

    def csv_tables(self) -> dict[str, list[list[str]]]:
        """One CSV (rows, header first) per table, as ``<dims>.csv``: displayed values only."""
        files = {}
        for table in self.tables:
            dims = table["dimensions"]
            measure = [c for c in ("visits",) if any(c in r for r in table["rows"])]
            rows = [[*dims, "people", *measure]]
            for row in table["rows"]:
                rows.append(
                    [*(row[d] for d in dims), row["people"]["display"],
                     *(row[m]["display"] for m in measure)]
                )  # fmt: skip
            files["_".join(dims)] = rows
        return files


def disclosed_total(people: People, policy: DisclosurePolicy, region: Region) -> dict[str, Any]:
    """How many people, through the release gate (with their cell key under the cell key
    method): the feasibility count an applicant sees, the size of an extract."""
    table = PeopleTable(people_counter(policy, region, people.person_id))
    table.add("total", np.ones(len(people), dtype=bool))
    return table.disclose(keep=["total"])["total"]


def gated_statistics(
    spec: RequestSpec,
    people: People,
    policy: DisclosurePolicy,
    region: Region,
    *,
    visits: np.ndarray | None = None,
    dominance_n: int = 2,
) -> Statistics:
    """Counts (and the measure's sums) through the deployment's policy, as one table."""
    counter = people_counter(policy, region, people.person_id)
    table = PeopleTable(counter)
    everyone = np.ones(len(people), dtype=bool)
    table.add("total", everyone)
    layouts = []
    for t, dims in enumerate(spec.tables):
        values = [_values(people, d) for d in dims]
        combos = sorted({tuple(v[i] for v in values) for i in range(len(people))})
        cells = []
        for combo in combos:
            mask = np.logical_and.reduce([v == c for v, c in zip(values, combo, strict=True)])
            cells.append(table.add((t, combo), mask))
        if cells:
            table.line("total", cells)
        layouts.append((dims, combos, values))
    shown = table.disclose(keep=["total"])
    sums: dict[Any, dict[str, Any]] = {}
    dominance: dict[str, float] = {}
    if visits is not None:
        sum_table = CountTable(policy)
        for t, (dims, combos, values) in enumerate(layouts):
            for combo in combos:
                mask = np.logical_and.reduce([v == c for v, c in zip(values, combo, strict=True)])
                contributions = np.sort(visits[mask])[::-1]
                total = int(contributions.sum())
                sum_table.add((t, combo), total)
                if total > 0:
                    top = float(contributions[:dominance_n].sum()) / total
                    dominance["/".join(dims) + ":" + "/".join(combo)] = top
        sums = sum_table.release()
    tables = []
    for t, (dims, combos, _) in enumerate(layouts):
        rows = []
        for combo in combos:
            row: dict[str, Any] = dict(zip(dims, combo, strict=True))
            row["people"] = shown[(t, combo)]
            if visits is not None:
                row["visits"] = sums[(t, combo)]
            rows.append(row)
        tables.append({"dimensions": list(dims), "rows": rows})
    return Statistics(policy.description, shown["total"], tables, dominance=dominance)


def dp_statistics(
    spec: RequestSpec, people: People, queries: ProjectQueries, threshold: int
) -> Statistics:
    """One noisy grouped count per table (and the total), each charged to the permit's
    budget before it runs, then through the release gate with the noisy policy."""
    if spec.measure is not None:
        raise InputError(
            "measure: sums are not available as noisy answers under a privacy budget; ask for "
            "counts only"
        )
    # Refuse before anything is charged when the whole request cannot be paid for (each
    # query is charged on its own, and a request cut short would spend budget for nothing).
    needed = spec.epsilon * (1 + len(spec.tables))
    left = budget_status(queries.project_id, url=queries.url).epsilon_left
    if needed > left + TOLERANCE:
        raise BudgetExceeded(
            f"project {queries.project_id!r}: this request needs epsilon {needed:.4g} "
            f"({spec.epsilon:g} for the total and for each of {len(spec.tables)} tables), but "
            f"only {left:.4g} is left; nothing was run"
        )
    total = queries.count(list(people.person_id), spec.epsilon)
    results = []
    for dims in spec.tables:
        values = [_values(people, d) for d in dims]
        combos = list(itertools.product(*(categories(d) for d in dims)))
        labels = ["|".join(c) for c in combos]
        groups = ["|".join(str(v[i]) for v in values) for i in range(len(people))]
        results.append((dims, combos, labels, queries.grouped_count(groups, labels, spec.epsilon)))
    # Laplace noise on a count (sensitivity 1): 95 % within ln(20) / epsilon of the truth.
    error95 = round(math.log(20) / spec.epsilon, 1)
    description = (
        f"laplace noise (epsilon {spec.epsilon:g} per table, charged to the permit's budget), "
        f"results below {threshold} withheld; 95 % of answers within ±{error95:g}"
    )
    gate = CountTable(NoisyPolicy(threshold, error95, description))

    def add(cell: Any, value: int | None) -> None:
        # A withheld noisy value (None) is below the threshold: the gate shows it suppressed.
        gate.add(cell, 0, 1.0 if value is None else float(value))

    add("total", total.value)
    for t, (_, combos, labels, result) in enumerate(results):
        for combo, label in zip(combos, labels, strict=True):
            add((t, combo), result.value[label])
    shown = gate.release()
    tables = [
        {
            "dimensions": list(dims),
            "rows": [
                dict(zip(dims, combo, strict=True)) | {"people": shown[(t, combo)]}
                for combo in combos
            ],
        }
        for t, (dims, combos, _, _) in enumerate(results)
    ]
    last = results[-1][3].budget if results else total.budget
    return Statistics(
        description,
        shown["total"],
        tables,
        noise={"mechanism": "laplace", "epsilon_per_table": spec.epsilon, "error95": error95},
        budget=last.as_dict(),
    )
