"""Equity: does prevention reach the groups with the most need? (the inverse care law)

For each deprivation quintile and each municipality: the need (share at high or very high
risk among people with complete inputs) and the reach (share of the target group that was
reached). A group is flagged *under-reached* when its need is at least the region's and its
reach is below ``margin`` times the region's reach: the people most in need get the least.

What counts as reached depends on what is given:

* a program plan: target = its eligible people, reached = invited within capacity;
* an invitation list (``person_id`` column): target = the scored population, reached = listed;
* nothing: target = the scored population, reached = has every risk input recorded
  (risk assessment reach: whose risk the health services know).

Every count passes the disclosure policy (under the Cell Key Method with the key of the people
counted, ``privacy.people``) as one table with secondary suppression: the groups of a dimension
add up to the region, and within a group the people without complete inputs, not at high risk,
not targeted or not reached are differences of shown counts, so a small one is protected like a
suppressed count (``privacy.people.PeopleTable``). Rates are computed from disclosed counts.
"""

from __future__ import annotations

__all__ = [
    "EQUITY_DIMENSIONS",
    "GROUP_LINES",
    "HIGH",
    "equity",
    "equity_charts",
    "equity_report",
    "need_reach_gradient",
]

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from brygga.errors import InputError
from brygga.prevention.stratify import PopulationRisk, group_keys
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.people import PeopleCounter, PeopleTable
from brygga.records.store import Region

EQUITY_DIMENSIONS = ("deprivation_quintile", "municipality")
HIGH = 1  # category index from which risk counts as high (SCORE2 categories: high, very-high)
# Within a group: each shown count and the never-shown rest of the set it is taken from.
GROUP_LINES = (
    ("people", ("complete_inputs", "incomplete")),
    ("complete_inputs", ("high_risk", "not_high")),
    ("people", ("target", "not_target")),
    ("target", ("reached", "not_reached")),
)


def _rate(num: dict[str, Any], den: dict[str, Any]) -> float | None:
    if num["value"] is None or not den["value"]:
        return None
    return round(num["value"] / den["value"], 3)


def equity(
    pr: PopulationRisk,
    target: np.ndarray,
    reached: np.ndarray,
    policy: DisclosurePolicy,
    *,
    reach_definition: str,
    municipality_names: dict[str, str] | None = None,
    margin: float = 0.8,
    units: np.ndarray | None = None,
) -> dict[str, Any]:
    """Need and reach per group, with inverse-care flags. ``target``/``reached``: bool per person;
    ``units``: their key units (``privacy.people.population_units``, for the cell key method)."""
    counter = PeopleCounter(policy, units)
    inside = pr.in_population
    complete = inside & (pr.category >= 0)
    high = complete & (pr.category >= HIGH)
    target = target & inside
    reached = reached & target
    table = PeopleTable(counter)
    # Shown per group, and the differences a reader can take between them (never shown).
    parts = {
        "people": lambda rows: rows,
        "complete_inputs": lambda rows: rows & complete,
        "high_risk": lambda rows: rows & high,
        "target": lambda rows: rows & target,
        "reached": lambda rows: rows & reached,
    }
    hidden = {
        "incomplete": lambda rows: rows & ~complete,
        "not_high": lambda rows: rows & complete & ~high,
        "not_target": lambda rows: rows & ~target,
        "not_reached": lambda rows: rows & target & ~reached,
    }

    def add_group(row: tuple, rows: np.ndarray) -> None:
        for name, part in parts.items():
            table.add((*row, name), part(rows))
        for name, part in hidden.items():
            table.add_hidden((*row, name), part(rows))
        for total, members in GROUP_LINES:
            table.line((*row, total), [(*row, m) for m in members])

    add_group(("overall",), inside)
    labels: dict[str, list[str]] = {}
    for dim in EQUITY_DIMENSIONS:  # each dimension's groups add up to the region
        keys = group_keys(pr.inputs, dim, municipality_names or {}).astype(str)
        labels[dim] = [str(label) for label in np.unique(keys[inside])]
        for label in labels[dim]:  # a loop over groups (<= 300), not people
            add_group((dim, label), inside & (keys == label))
        for name in (*parts, *hidden):
            table.line(("overall", name), [(dim, label, name) for label in labels[dim]])
    shown = table.disclose(keep=[("overall", "people")])

    def cell(row: tuple) -> dict[str, Any]:
        c: dict[str, Any] = {name: shown[(*row, name)] for name in parts}
        c["need"] = _rate(c["high_risk"], c["complete_inputs"])
        c["reach"] = _rate(c["reached"], c["target"])
        return c

    overall = cell(("overall",))
    breakdowns: dict[str, dict[str, Any]] = {}
    for dim in EQUITY_DIMENSIONS:
        cells = {}
        for label in labels[dim]:
            c = cell((dim, label))
            c["under_reached"] = bool(
                c["need"] is not None
                and c["reach"] is not None
                and overall["need"] is not None
                and overall["reach"] is not None
                and c["need"] >= overall["need"]
                and c["reach"] < margin * overall["reach"]
            )
            cells[label] = c
        breakdowns[dim] = cells
    return {
        "index_date": pr.inputs.index_date.isoformat(),
        "model": pr.model_choice,
        "reach_definition": reach_definition,
        "need_definition": "share at high or very-high risk among people with complete inputs",
        "flag_rule": (
            f"under-reached: need >= the region's need and reach < {margin:g} x the region's reach"
        ),
        "raw": policy.raw,
        "disclosure": policy.description,
        "overall": overall,
        "breakdowns": breakdowns,
        "gradient": {dim: need_reach_gradient(breakdowns[dim]) for dim in EQUITY_DIMENSIONS},
        "under_reached": {
            dim: [k for k, c in breakdowns[dim].items() if c["under_reached"]]
            for dim in EQUITY_DIMENSIONS
        },
    }


def need_reach_gradient(cells: dict[str, Any]) -> dict[str, Any]:
    """Correlation across groups between need and reach (negative: the inverse care law)."""
    pairs = [(c["need"], c["reach"]) for c in cells.values()]
    pairs = [(n, r) for n, r in pairs if n is not None and r is not None]
    if len(pairs) < 3:
        # Rates rest on disclosed counts: a group whose counts are suppressed has none.
        return {"groups": len(pairs), "correlation": None, "reason": (
            f"{len(pairs)} of {len(cells)} groups have both need and reach shown (the others' "
            "counts are suppressed); a correlation needs at least 3"
        )}  # fmt: skip
    need, reach = np.array(pairs, dtype=float).T
    for name, values in (("need", need), ("reach", reach)):
        if values.std() == 0:
            return {"groups": len(pairs), "correlation": None, "reason": (
                f"{name} is the same ({values[0]:.0%}) in every group shown, so it cannot vary "
                "with the other"
            )}  # fmt: skip
    return {
        "groups": len(pairs),
        "correlation": round(float(np.corrcoef(need, reach)[0, 1]), 3),
        "reason": None,
    }


def equity_report(
    region: Region,
    policy: DisclosurePolicy,
    *,
    program_file: Path | None = None,
    invitations_file: Path | None = None,
    index_date: date | None = None,
    margin: float = 0.8,
    chart_dir: Path | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """``brygga equity``: need and reach by deprivation quintile and municipality.
    ``engine``: duckdb or spark (default: the configured engine)."""
    from brygga.prevention.evaluation import read_invitations
    from brygga.prevention.inputs import extract_inputs, input_engine
    from brygga.prevention.programs import load_program, plan_program
    from brygga.prevention.stratify import municipality_names, population_risk
    from brygga.privacy.people import population_units

    if program_file is not None and invitations_file is not None:
        raise InputError("give --program or --invitations, not both")
    if not 0 < margin <= 1:
        raise InputError("--margin must be above 0 and at most 1")
    runner = input_engine(region, engine)
    if program_file is not None:
        plan = plan_program(
            load_program(program_file), region, index_date=index_date, engine=runner
        )
        pr = plan.risk
        pid = pr.inputs["person_id"]
        target = np.isin(pid, plan.person_id)
        reached = np.isin(pid, plan.person_id[plan.invited])
        definition = f"invited within capacity among the eligible of program {plan.program.name!r}"
    else:
        pr = population_risk(extract_inputs(region, index_date=index_date, engine=runner))
        pid = pr.inputs["person_id"]
        target = pr.in_population
        if invitations_file is not None:
            reached = np.isin(pid, read_invitations(invitations_file).person_id)
            definition = "on the invitation list, among the scored population"
        else:
            reached = pr.category >= 0
            definition = "every risk input recorded (risk assessed), among the scored population"
    names = municipality_names(runner)
    units = population_units(policy, region, pid)
    doc = equity(pr, target, reached, policy, reach_definition=definition,
                 municipality_names=names, margin=margin, units=units)  # fmt: skip
    doc["region"] = region.name
    if chart_dir is not None:
        doc["charts"] = equity_charts(doc, chart_dir)
    return doc


def equity_charts(doc: dict[str, Any], out_dir: Path) -> list[str]:
    from brygga.prevention._charts import bar_chart

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for dim in EQUITY_DIMENSIONS:
        cells = doc["breakdowns"][dim]
        groups = [f"{k} (need {_pct(c['need'])})" for k, c in cells.items()]
        paths.append(
            str(
                bar_chart(
                    f"Reach by {dim.replace('_', ' ')} (red: under-reached, high need)\n"
                    f"{doc['region']} {doc['index_date']}; {doc['disclosure']}",
                    groups,
                    [c["reach"] for c in cells.values()],
                    f"reach: {doc['reach_definition']}",
                    out_dir / f"equity-{dim}.png",
                    flagged=[c["under_reached"] for c in cells.values()],
                )
            )
        )
    return paths


def _pct(value: float | None) -> str:
    return "suppressed" if value is None else f"{value:.0%}"
