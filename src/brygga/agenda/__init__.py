"""The agenda: the regional strategies as data, the KPI registry and the annual report.

Public modules:

* ``strategy`` - a strategy (priorities, measures, owners, indicators, targets, SDGs) as a
  validated YAML document; the bundled strategies are in ``strategies/``;
* ``kpis`` - the KPI registry and the series helpers (every count through the release gate);
* ``studies_kpis``, ``registry_kpis``, ``region_kpis`` - the live KPIs each part adds;
* ``imported`` - imported KPI series (CSV with source, date and licence);
* ``catalogue`` - the registry with every KPI added, descriptions and ``explain``;
* ``snapshot`` - a strategy's figures for a year, frozen as a JSON document;
* ``report`` - the annual report (HTML and PDF) rendered from a snapshot;
* ``halsolaget`` - the state of health: prevalence and SCORE2 risk by municipality, sex, age;
* ``models`` - the imported series' table.

``agenda`` sits above ``studies`` and ``prevention`` (its KPIs read their data) and below the
platform (docs/architecture.md). The main names are re-exported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.agenda.catalogue import registry
    from brygga.agenda.strategy import Strategy, load_strategy

__all__ = ["Strategy", "load_strategy", "registry"]

__getattr__ = lazy_exports(
    __name__,
    {"Strategy": "strategy", "load_strategy": "strategy", "registry": "catalogue"},
)
