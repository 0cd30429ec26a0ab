"""Live KPIs that need the region's health records: prevention reach and equity, and the
diversity of the enrolled against the eligible.

* Prevention reach: the share of the population a risk score applies to whose every risk input
  is recorded (risk assessed), from ``prevention.equity`` (already through the release gate),
  at the end of each year (the records' last day if sooner).
* Equity: the reach of the most deprived quintile as a share of the region's (1 = equal; the
  strategy wants "jämlik hälsa").
* Diversity: the residents enrolled against those matched (the eligible), by sex, age band and
  deprivation quintile, through the gate in one table (each dimension's groups add up, the
  enrolled are part of the eligible); the figure is the lowest representation ratio (a group's
  share of the enrolled / its share of the eligible; 1 = represented as among the eligible).

Prevention figures are computed for the last three years of a series only (each is a scoring
of the whole population).
"""

from __future__ import annotations

__all__ = ["PREVENTION_YEARS", "diversity_table"]

from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import select

from brygga.agenda.kpis import KPI, REGISTRY, Context, Series, point, series_of, to_date
from brygga.cohort.engines import query_engine
from brygga.prevention.equity import equity_report
from brygga.privacy.gate import CountTable
from brygga.registry.models import Resident
from brygga.studies.matching import records_date
from brygga.studies.models import Invitation

PREVENTION_YEARS = 3
SOURCE_RECORDS = "Regionens hälsodata (OMOP) via Brygga"
OWNER_PREVENTION = "Regionens hälso- och sjukvård (primärvården)"
AGE_BANDS = ((18, 39), (40, 64), (65, 79), (80, 120))
SEXES = {"female": ("Kvinnor", "Women"), "male": ("Män", "Men"), "unknown": ("Okänt", "Unknown")}
QUINTILE_NAMES = {
    "1": ("Kvintil 1 (minst utsatt)", "Quintile 1 (least deprived)"),
    "2": ("Kvintil 2", "Quintile 2"),
    "3": ("Kvintil 3", "Quintile 3"),
    "4": ("Kvintil 4", "Quintile 4"),
    "5": ("Kvintil 5 (mest utsatt)", "Quintile 5 (most deprived)"),
    "unknown": ("Okänd", "Unknown"),
}


def _equity(ctx: Context, year: int) -> dict[str, Any] | None:
    day = min(date(year, 12, 31), records_date(ctx.region, ctx.periods.as_of))
    if day.year != year:
        return None  # the records end before this year

    def make() -> dict[str, Any]:
        engine = ctx.platform.settings.engine if ctx.platform is not None else None
        return equity_report(ctx.region, ctx.policy, index_date=day, engine=engine)

    return ctx.once(f"equity:{day.isoformat()}", make)


def _yearly(ctx: Context, value_of: Any) -> Series:
    points = {}
    recent = ctx.periods.years[-PREVENTION_YEARS:]
    for p in ctx.periods.all():
        doc = _equity(ctx, int(p)) if "-Q" not in p and int(p) in recent else None
        points[p] = value_of(doc, p) if doc else point(p, None)
    series = series_of(ctx, points)
    series["quarters"] = []  # a scoring of the population per year, not per quarter
    return series


def prevention_reach(ctx: Context) -> Series:
    def value(doc: dict[str, Any], p: str) -> dict[str, Any]:
        cell = doc["overall"]
        pct = None if cell["reach"] is None else round(100 * cell["reach"], 1)
        return point(p, cell["target"], pct, index_date=doc["index_date"])

    return _yearly(ctx, value)


def prevention_equity(ctx: Context) -> Series:
    def value(doc: dict[str, Any], p: str) -> dict[str, Any]:
        overall = doc["overall"]
        most = doc["breakdowns"]["deprivation_quintile"].get("5")
        ratio = (
            round(most["reach"] / overall["reach"], 2)
            if most and most["reach"] is not None and overall["reach"]
            else None
        )
        return point(p, (most or overall)["target"], ratio, index_date=doc["index_date"])

    return _yearly(ctx, value)


def _groups(region: Any, person_ids: list[int], year: int) -> dict[str, np.ndarray]:
    """Sex, age band (at the year's end) and deprivation quintile of ``person_ids``."""
    engine = query_engine("duckdb", region)
    person = engine.table("person")
    ids = sorted(set(person_ids))
    rows = engine.to_arrow(
        person.filter(person.person_id.isin(ids)).select(
            "person_id", "gender_concept_id", "year_of_birth", "deprivation_quintile"
        )
    ).to_pydict()
    found = dict(zip(rows["person_id"], range(len(rows["person_id"])), strict=True))
    out: dict[str, list[str]] = {"sex": [], "age_band": [], "deprivation_quintile": []}
    for pid in person_ids:
        i = found.get(pid)
        if i is None:
            out["sex"].append("unknown")
            out["age_band"].append("unknown")
            out["deprivation_quintile"].append("unknown")
            continue
        g = rows["gender_concept_id"][i]
        out["sex"].append({8507: "male", 8532: "female"}.get(g, "unknown"))
        age = year - rows["year_of_birth"][i]
        band = next((f"{lo}-{hi}" for lo, hi in AGE_BANDS if lo <= age <= hi), "unknown")
        out["age_band"].append(band if band != "80-120" else "80+")
        q = rows["deprivation_quintile"][i]
        out["deprivation_quintile"].append(str(q) if q else "unknown")
    return {k: np.array(v, dtype=object) for k, v in out.items()}


def _labels(dim: str, key: str) -> dict[str, str]:
    names = {"sex": SEXES, "deprivation_quintile": QUINTILE_NAMES}.get(dim, {})
    if key in names:
        return {"sv": names[key][0], "en": names[key][1]}
    if key == "unknown":
        return {"sv": "Okänd", "en": "Unknown"}
    return {"sv": f"{key} år", "en": f"{key} years"}


def diversity_table(ctx: Context, year: int) -> dict[str, Any] | None:
    """The year's eligible (matched) and enrolled residents by group, disclosed; None without
    invitations that year."""
    rows = [
        r
        for r in ctx.session.execute(_invitations_query()).all()
        if r.person_id is not None and (d := to_date(r.created_at)) and d.year == year
    ]
    if not rows:
        return None
    pids = [int(r.person_id) for r in rows]
    won = np.array([r.outcome == "enrolled" for r in rows])
    groups = _groups(ctx.region, pids, year)
    table = CountTable(ctx.policy)
    table.add(("all", "eligible"), len(rows))
    table.add(("all", "enrolled"), int(won.sum()))
    table.hide(("all", "not"), int((~won).sum()))
    table.line(("all", "eligible"), [("all", "enrolled"), ("all", "not")])
    keys: dict[str, list[str]] = {}
    for dim, labels in groups.items():
        keys[dim] = sorted(set(labels.tolist()))
        for key in keys[dim]:
            rows_ = labels == key
            table.add((dim, key, "eligible"), int(rows_.sum()))
            table.add((dim, key, "enrolled"), int((rows_ & won).sum()))
            table.hide((dim, key, "not"), int((rows_ & ~won).sum()))
            table.line((dim, key, "eligible"), [(dim, key, "enrolled"), (dim, key, "not")])
        for part in ("eligible", "enrolled", "not"):
            table.line(("all", part), [(dim, k, part) for k in keys[dim]])
    shown = table.release(keep=[("all", "eligible")])
    dims = []
    lowest = None
    for dim, ks in keys.items():
        out = []
        for key in ks:
            e, n = shown[(dim, key, "eligible")], shown[(dim, key, "enrolled")]
            se = _frac(e, shown[("all", "eligible")])
            sn = _frac(n, shown[("all", "enrolled")])
            ratio = round(sn / se, 2) if se and sn is not None else None
            if ratio is not None and key != "unknown":
                lowest = ratio if lowest is None else min(lowest, ratio)
            out.append({"key": key, "label": _labels(dim, key), "eligible": e, "enrolled": n,
                        "eligible_share": se, "enrolled_share": sn, "ratio": ratio})  # fmt: skip
        dims.append({"id": dim, "groups": out})
    return {"eligible": shown[("all", "eligible")], "enrolled": shown[("all", "enrolled")],
            "lowest_ratio": lowest, "dimensions": dims}  # fmt: skip


def _frac(part: dict[str, Any], whole: dict[str, Any]) -> float | None:
    if part["value"] is None or not whole["value"]:
        return None
    return round(part["value"] / whole["value"], 3)


def diversity(ctx: Context) -> Series:
    points = {}
    last = ctx.periods.years[-1]
    detail = None
    for p in ctx.periods.all():
        if "-Q" in p:
            continue
        doc = diversity_table(ctx, int(p))
        if int(p) == last:
            detail = doc
        points[p] = point(p, doc["enrolled"], doc["lowest_ratio"]) if doc else point(p, None)
    series = series_of(ctx, {**points, **{q: point(q, None) for y in ctx.periods.years
                                          for q in ctx.periods.quarters(y)}})  # fmt: skip
    series["quarters"] = []
    if detail is not None:
        series["diversity"] = {"period": str(last), **detail}
    return series


def _invitations_query() -> Any:
    return select(Invitation.created_at, Invitation.outcome, Resident.person_id).join(
        Resident, Resident.id == Invitation.resident_id
    )


REGISTRY.add(
    KPI(
        id="prevention_reach",
        name_sv="Förebyggande arbetets räckvidd (riskbedömda)",
        name_en="Prevention reach (risk assessed)",
        definition_sv="Andel av befolkningen som en riskmodell (SCORE2, SCORE2-OP, "
        "SCORE2-Diabetes) gäller för, vars alla riskfaktorer finns registrerade (riskbedömda), "
        "vid årets slut (%).",
        definition_en="Share of the population a risk model (SCORE2, SCORE2-OP, "
        "SCORE2-Diabetes) applies to whose every risk input is recorded (risk assessed), at the "
        "year's end (%).",
        unit="percent",
        kind="live",
        source=SOURCE_RECORDS,
        owner=OWNER_PREVENTION,
        aggregation="level",
        needs_region=True,
        compute=prevention_reach,
        queries=lambda: [],
        inputs=(
            "person",
            "measurement (SBP, total cholesterol, HDL, HbA1c, eGFR)",
            "observation (smoking)",
            "condition_occurrence (diabetes, CVD)",
        ),
        method="prevention.equity.equity_report(region, policy, index_date=year end): reached "
        "/ target of the overall row, both disclosed counts. Last three years only.",
    )
)
REGISTRY.add(
    KPI(
        id="prevention_equity_ratio",
        name_sv="Jämlik räckvidd (mest utsatta kvintilen mot regionen)",
        name_en="Equity of reach (most deprived quintile against the region)",
        definition_sv="Räckvidden i den mest socioekonomiskt utsatta kvintilen delad med "
        "regionens räckvidd (1 = lika; under 1 = de med störst behov nås sämre).",
        definition_en="Reach in the most deprived quintile divided by the region's reach (1 = "
        "equal; below 1 = those most in need are reached less).",
        unit="ratio",
        kind="live",
        source=SOURCE_RECORDS,
        owner=OWNER_PREVENTION,
        aggregation="level",
        needs_region=True,
        compute=prevention_equity,
        queries=lambda: [],
        inputs=("person.deprivation_quintile", "the inputs of prevention_reach"),
        method="From the same equity report: reach of deprivation quintile 5 / overall reach, "
        "both rates of disclosed counts.",
    )
)
REGISTRY.add(
    KPI(
        id="enrolled_diversity",
        name_sv="Mångfald bland inkluderade mot behöriga",
        name_en="Diversity of the enrolled against the eligible",
        definition_sv="Lägsta representationskvot bland grupper efter kön, åldersgrupp och "
        "socioekonomisk kvintil: gruppens andel av de inkluderade delad med dess andel av de "
        "matchade (behöriga) invånarna som bjöds in under året (1 = representativt).",
        definition_en="Lowest representation ratio among groups by sex, age band and "
        "deprivation quintile: a group's share of the enrolled divided by its share of the "
        "matched (eligible) residents invited in the year (1 = representative).",
        unit="ratio",
        kind="live",
        source="Brygga (inbjudningar) och regionens hälsodata",
        owner="Regionens FoU-enhet (forskningsstöd)",
        aggregation="level",
        needs_region=True,
        compute=diversity,
        queries=lambda: [_invitations_query()],
        inputs=(
            "invitation.created_at",
            "invitation.outcome",
            "resident.person_id",
            "person.gender_concept_id",
            "person.year_of_birth",
            "person.deprivation_quintile",
        ),
        method="One table through the gate: eligible and enrolled per group, each dimension "
        "adding up to all, the enrolled part of the eligible; shares and ratios from the "
        "disclosed counts. Pseudonymous person_id only (no identity is read).",
    )
)
