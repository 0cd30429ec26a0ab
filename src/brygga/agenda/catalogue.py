"""The KPI catalogue: the registry with every module's KPIs added, and what each one is for.

``registry()`` imports the modules that add KPIs (so callers never depend on import order);
``describe`` adds the priorities of the bundled strategies that follow a KPI; ``compute`` gives
a KPI's series (live: computed through the release gate; imported: the stored values).
"""

from __future__ import annotations

__all__ = ["compute", "describe", "explain", "priorities_of", "registry"]

from functools import cache
from typing import Any

from sqlalchemy.dialects import sqlite

from brygga.agenda import imported, region_kpis, registry_kpis, studies_kpis
from brygga.agenda.kpis import KPI, REGISTRY, Context, Registry, Series, point, series_of
from brygga.agenda.strategy import Strategy, bundled, check_kpis

_MODULES = (studies_kpis, registry_kpis, region_kpis, imported)  # each adds its KPIs


def registry() -> Registry:
    """Every KPI (the modules in ``_MODULES`` added theirs when imported)."""
    return REGISTRY


@cache
def _strategies() -> tuple[Strategy, ...]:
    found = tuple(bundled())
    for s in found:
        check_kpis(s, REGISTRY.ids())
    return found


def priorities_of(kpi_id: str, strategies: tuple[Strategy, ...] | None = None) -> list[str]:
    """``strategy:priority`` of every priority that follows the KPI."""
    return [
        f"{s.id}:{p.id}"
        for s in strategies or _strategies()
        for p in s.priorities
        if any(i.kpi == kpi_id for i in p.indicators)
    ]


def describe(kpi: KPI, lang: str | None = None) -> dict[str, Any]:
    """What ``brygga kpi list --json`` shows of a KPI (``lang``: one language's texts)."""
    doc = kpi.describe()
    if lang is not None:
        doc["name"], doc["definition"] = kpi.name(lang), kpi.definition(lang)
    doc["priorities"] = priorities_of(kpi.id)
    return doc


def explain(kpi: KPI) -> dict[str, Any]:
    """Definition, the queries it runs (SQL as sent to SQLite) and its inputs."""
    statements = []
    for q in kpi.queries() if kpi.queries else ():
        compiled = q.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        statements.append(str(compiled))
    return {
        **describe(kpi),
        "queries": statements,
        "inputs": list(kpi.inputs),
        "method": kpi.method,
    }


def compute(kpi: KPI, ctx: Context, area: str) -> Series:
    """The KPI's series: live ones through the release gate, imported ones from the store.
    A live KPI that needs the region's records and has none says so (``unavailable``)."""
    if kpi.kind == "imported":
        return imported.series(ctx, kpi, area)
    if kpi.needs_region and ctx.region is None:
        out = series_of(ctx, {p: point(p, None) for p in ctx.periods.all()})
        out["unavailable"] = "needs a region (--region)"
        return out
    assert kpi.compute is not None
    return kpi.compute(ctx)
