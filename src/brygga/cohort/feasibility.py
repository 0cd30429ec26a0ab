"""Feasibility: how many people meet the criteria, how they fall out, and who they are by group.

``feasibility()`` returns counts that have passed the disclosure policy (the only form in which
counts leave the platform). ``eligible_persons()`` returns pseudonymous person ids for internal
use by matching and prevention; the CLI never prints them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from brygga.cohort.criteria import Criteria
from brygga.cohort.engines import Evaluation, open_engine
from brygga.privacy.disclosure import DisclosurePolicy, policy_for
from brygga.records.store import Region

SEXES = ("female", "male")


@dataclass(frozen=True)
class FeasibilityResult:
    name: str
    region: str
    index_date: date
    engine: str
    raw: bool
    disclosure: str
    count: dict[str, Any]
    attrition: list[dict[str, Any]]
    breakdowns: dict[str, dict[str, dict[str, Any]]]
    elapsed_ms: int
    fingerprint: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "region": self.region,
            "index_date": self.index_date.isoformat(),
            "count": self.count,
            "raw": self.raw,
            "disclosure": self.disclosure,
            "attrition": self.attrition,
            "breakdowns": self.breakdowns,
            "engine": self.engine,
            "elapsed_ms": self.elapsed_ms,
            "fingerprint": self.fingerprint,
            "warnings": self.warnings,
        }


def _region(region: Region | str | Path) -> Region:
    return region if isinstance(region, Region) else Region.open(region)


def feasibility(
    criteria: Criteria,
    region: Region | str | Path,
    *,
    engine: str = "duckdb",
    index_date: date | None = None,
    raw: bool = False,
) -> FeasibilityResult:
    """Count, attrition and breakdowns, every count disclosed under the region's policy."""
    region = _region(region)
    policy = policy_for(synthetic=region.synthetic, raw=raw)  # refuse --raw before any work
    effective = criteria.effective_index_date(index_date)
    started = time.perf_counter()
    evaluation = open_engine(engine, region).evaluate(criteria, effective)
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    warnings = []
    if criteria.whole_region:
        warnings.append(
            "no demographics, include or exclude rules: this is the whole region (everyone "
            f"alive and under observation on {effective.isoformat()})"
        )
    if evaluation.steps[0][1] == 0:
        period = region.manifest.get("period") or {}
        covered = (
            f"the region's records cover {period['start']} to {period['end']}"
            if "start" in period and "end" in period
            else "is the index date inside the period the region's records cover?"
        )
        warnings.append(
            f"nobody is alive and under observation on {effective.isoformat()}; {covered}"
        )
    return FeasibilityResult(
        name=criteria.name,
        region=region.name,
        index_date=effective,
        engine=engine,
        raw=policy.raw,
        disclosure=policy.description,
        count=policy.apply(evaluation.count),
        attrition=[{"step": step, "count": policy.apply(n)} for step, n in evaluation.steps],
        breakdowns=breakdowns(evaluation, policy),
        elapsed_ms=elapsed_ms,
        fingerprint=criteria.fingerprint(effective),
        warnings=warnings,
    )


def breakdowns(evaluation: Evaluation, policy: DisclosurePolicy) -> dict[str, Any]:
    """Eligible people by sex, 10-year age band and municipality, each cell disclosed."""
    sex: dict[str, int] = dict.fromkeys(SEXES, 0)
    bands: dict[int, int] = {}
    municipalities: dict[str, int] = {}
    for (s, band, municipality), n in evaluation.cells.items():
        sex[s] = sex.get(s, 0) + n
        bands[band] = bands.get(band, 0) + n
        key = municipality or "unknown"
        municipalities[key] = municipalities.get(key, 0) + n
    return {
        "sex": {k: policy.apply(n) for k, n in sex.items()},
        "age_band": {f"{b}-{b + 9}": policy.apply(bands[b]) for b in sorted(bands)},
        "municipality": {k: policy.apply(municipalities[k]) for k in sorted(municipalities)},
    }


def eligible_persons(
    criteria: Criteria,
    region: Region | str | Path,
    *,
    engine: str = "duckdb",
    index_date: date | None = None,
) -> list[int]:
    """Pseudonymous ids of eligible people, sorted. Internal use only: never print them."""
    region = _region(region)
    return open_engine(engine, region).persons(criteria, criteria.effective_index_date(index_date))
