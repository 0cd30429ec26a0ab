"""A strategy's figures for one year, frozen: the data the annual report is rendered from.

``build`` computes every KPI the strategy follows (live ones through the release gate, imported
ones from the store) over the five years ending with the report's year, and puts them with the
strategy itself into one JSON-ready document. The report and the public page render from this
document only, so a report saved with its ``snapshot.json`` renders the same next year, whatever
the database holds by then (``load``/``save``).
"""

from __future__ import annotations

__all__ = ["FORMAT", "build", "disclosure_rule", "figure_key", "load", "save"]

import json
from datetime import date
from pathlib import Path
from typing import Any

from brygga.agenda import catalogue
from brygga.agenda.kpis import Context, Periods
from brygga.agenda.strategy import Strategy, check_kpis
from brygga.documents import parse_json
from brygga.errors import DocumentError, NotFoundError
from brygga.util import atomic_write_text

FORMAT = 1


def build(
    strategy: Strategy,
    *,
    session: Any,
    policy: Any,
    year: int,
    today: date,
    region: Any = None,
    platform: Any = None,
    source: str = "",
) -> dict[str, Any]:
    """Every figure of ``strategy`` for ``year`` (and the four years before), disclosed."""
    registry = catalogue.registry()
    check_kpis(strategy, registry.ids(), source)
    as_of = min(today, date(year, 12, 31))
    ctx = Context(
        session=session,
        policy=policy,
        periods=Periods.ending(year, as_of),
        region=region,
        platform=platform,
    )
    figures: dict[str, Any] = {}
    for indicator in strategy.indicators:
        area = indicator.area or strategy.region
        key = _key(indicator.kpi, area, strategy.region)
        if key in figures:
            continue
        kpi = registry.get(indicator.kpi)
        figures[key] = {
            **catalogue.describe(kpi),
            "area": area,
            "series": catalogue.compute(kpi, ctx, area),
        }
    return {
        "format": FORMAT,
        "strategy": strategy.model_dump(mode="json"),
        "year": year,
        "as_of": as_of.isoformat(),
        "region": getattr(region, "name", None),
        "disclosure": policy.description,
        "disclosure_rule": disclosure_rule(policy),
        "raw": bool(getattr(policy, "raw", False)),
        "figures": figures,
    }


def disclosure_rule(policy: Any) -> dict[str, Any]:
    """The policy's rule as data, so a report can state it in the reader's language."""
    if getattr(policy, "raw", False):
        return {"method": "raw"}
    ptable = getattr(policy, "ptable", None)
    if ptable is not None:
        return {"method": "cell-key", "threshold": policy.threshold,
                "perturbation": ptable.max_perturbation}  # fmt: skip
    rounding = getattr(policy, "rounding", None)
    if rounding is not None:
        return {"method": "rounding", "threshold": policy.threshold, "rounding": rounding}
    return {"method": "other", "description": policy.description}


def _key(kpi_id: str, area: str, home: str) -> str:
    """A figure's key: the KPI id, with the area when it is not the strategy's region."""
    return kpi_id if area == home else f"{kpi_id}@{area}"


def figure_key(indicator: dict[str, Any], strategy: dict[str, Any]) -> str:
    return _key(indicator["kpi"], indicator.get("area") or strategy["region"], strategy["region"])


def save(snapshot: dict[str, Any], path: Path) -> None:
    """Sorted keys, fixed indentation: the same snapshot is the same bytes."""
    atomic_write_text(path, json.dumps(snapshot, ensure_ascii=False, indent=1, sort_keys=True))


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"snapshot file {str(path)!r} does not exist")
    doc = parse_json(path.read_text(encoding="utf-8"), str(path), count_nodes=False).data
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DocumentError(f"{path}: not an agenda snapshot of format {FORMAT}")
    for name in ("strategy", "year", "figures", "as_of"):
        if name not in doc:
            raise DocumentError(f"{path}: field {name}: missing")
    return doc
