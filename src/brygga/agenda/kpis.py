"""The KPI registry: every key performance indicator defined once, in one place.

A ``KPI`` has an id, a Swedish and English name and definition, a unit, its kind (``live``:
computed by Brygga from the operational database and the region; ``imported``: a series read
from a CSV file, ``agenda.imported``), its source and its owner. The modules that compute live
KPIs (``agenda.studies_kpis``, ``agenda.registry_kpis``, ``agenda.prevention_kpis``) and the
imported series (``agenda.imported``) each add theirs with ``REGISTRY.add``;
``agenda.catalogue.registry()`` imports them all and is what callers use.

A live KPI is a series by year and quarter (``Periods``). Every count in it passes the release
gate (``privacy.gate.CountTable``) with the policy the platform chose, with the lines that tie
a year to its quarters, so no suppressed quarter can be worked out from its year (secondary
suppression). Shares, rates and medians are computed from disclosed counts or shown only when
the count they rest on is shown.
"""

from __future__ import annotations

__all__ = [
    "ENGLISH",
    "KINDS",
    "KPI",
    "REGISTRY",
    "Context",
    "Periods",
    "Registry",
    "Series",
    "flow_series",
    "median_series",
    "point",
    "release_with_years",
    "series_of",
    "share",
    "stock_series",
    "to_date",
]

import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from brygga.errors import NotFoundError
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.gate import CountTable

KINDS = ("live", "imported")
# Sources and owners are written in Swedish where they are descriptions rather than names;
# their English, for the English report and pages (names of organizations stay as they are).
ENGLISH = {
    "Brygga (studieregistret)": "Brygga (study register)",
    "Brygga (invånarregistret)": "Brygga (resident register)",
    "Brygga (inbjudningar) och regionens hälsodata": "Brygga (invitations) and the region's health records",
    "Regionens hälsodata (OMOP) via Brygga": "The region's health records (OMOP) through Brygga",
    "Regionens FoU-enhet (forskningsstöd)": "The region's R&D unit (research support)",
    "Regionens FoU-enhet (ärendelogg för förfrågningar)": "The region's R&D unit (request log)",
    "Regionens e-tjänst för deltagande i kliniska studier": "The region's e-service for taking part in clinical studies",
    "Regionens hälso- och sjukvård (primärvården)": "The region's health care (primary care)",
    "Regionens hälsodataförvaltning": "The region's health data stewards",
    "Regionens näringslivsutveckling": "The region's business development",
    "Innovationsstödsaktörerna (innovationskontoren)": "Innovation support (the innovation offices)",
    "Infrastrukturerna och deras stödfunktioner": "The infrastructures and their support functions",
    "Infrastrukturernas årsrapporter": "The infrastructures' annual reports",
    "Lärosätena": "The universities",
    "Lärosätenas antagningsstatistik (UHR)": "The universities' admission statistics (UHR)",
    "Medicon Valley Alliance / regionen": "Medicon Valley Alliance / the region",
    "Migrationsverket (arbetstillståndsstatistik)": "Swedish Migration Agency (work permit statistics)",
    "SCB utrikeshandelsstatistik": "Statistics Sweden, foreign trade statistics",
    "PRV / EPO patentstatistik": "PRV / EPO patent statistics",
    "Läkemedelsverket / EU CTIS": "Swedish Medical Products Agency / EU CTIS",
    "Invest in Skåne / Invest Stockholm (årsrapport)": "Invest in Skåne / Invest Stockholm (annual report)",
    "Vinnova/Tillväxtanalys: Life science-sektorns utveckling (årlig statistik)": "Vinnova/Growth Analysis: the life-science sector's development (yearly statistics)",
    "Tillväxtanalys riskkapitalstatistik / branschorganisationernas sammanställning": "Growth Analysis venture capital statistics / industry associations' compilations",
}
_SWEDEN = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Periods:
    """The years a series covers and their quarters, up to ``as_of`` (no future quarter)."""

    years: tuple[int, ...]
    as_of: date

    @classmethod
    def ending(cls, year: int, as_of: date, back: int = 4) -> Periods:
        return cls(tuple(range(year - back, year + 1)), as_of)

    def quarters(self, year: int) -> list[str]:
        return [f"{year}-Q{q}" for q in range(1, 5) if _quarter_start(year, q) <= self.as_of]

    def all(self) -> list[str]:
        return [p for y in self.years for p in (str(y), *self.quarters(y))]

    @staticmethod
    def bounds(period: str) -> tuple[date, date]:
        """First and last day of a period (``2026`` or ``2026-Q3``)."""
        if "-Q" in period:
            year, q = int(period[:4]), int(period[-1])
            start = _quarter_start(year, q)
            end = _quarter_start(year + 1, 1) if q == 4 else _quarter_start(year, q + 1)
            return start, end - timedelta(days=1)
        year = int(period)
        return date(year, 1, 1), date(year, 12, 31)

    def end(self, period: str) -> date:
        """The day a stock is counted on: the period's last day, or ``as_of`` if sooner."""
        return min(self.bounds(period)[1], self.as_of)

    def of(self, day: date) -> tuple[str, str] | None:
        """The (year, quarter) ``day`` falls in, if covered."""
        if day.year not in self.years or day > self.as_of:
            return None
        return str(day.year), f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _quarter_start(year: int, q: int) -> date:
    return date(year, 3 * (q - 1) + 1, 1)


def to_date(moment: datetime | date | None) -> date | None:
    """The Swedish calendar day of a stored timestamp (naive ones are UTC, as stored)."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        return moment.astimezone(_SWEDEN).date()
    return moment


@dataclass
class Context:
    """What a live KPI is computed from: a read session of the operational database, the
    disclosure policy, optionally the region (for KPIs on the health records) and the periods."""

    session: Any
    policy: DisclosurePolicy
    periods: Periods
    region: Any = None
    platform: Any = None
    cache: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """A value several KPIs share (one equity report for reach and the equity gap)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


Series = dict[str, Any]


@dataclass(frozen=True)
class KPI:
    """One indicator. ``compute(ctx) -> Series`` for a live one; ``queries()`` the statements
    it runs (``brygga kpi explain``); ``inputs`` the tables and columns it reads."""

    id: str
    name_sv: str
    name_en: str
    definition_sv: str
    definition_en: str
    unit: str  # people | studies | questions | percent | days | ratio | count | msek
    kind: str
    source: str
    owner: str
    aggregation: str = "flow"  # flow (per period) | stock (at period end) | share | median | level
    needs_region: bool = False
    inputs: tuple[str, ...] = ()
    compute: Callable[[Context], Series] | None = None
    queries: Callable[[], Sequence[Any]] | None = None
    method: str = ""  # how it is computed beyond the queries (shown by explain)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_sv

    def definition(self, lang: str) -> str:
        return self.definition_en if lang == "en" else self.definition_sv

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": {"sv": self.name_sv, "en": self.name_en},
            "kind": self.kind,
            "definition": {"sv": self.definition_sv, "en": self.definition_en},
            "unit": self.unit,
            "aggregation": self.aggregation,
            "source": self.source,
            "source_en": ENGLISH.get(self.source, self.source),
            "owner": self.owner,
            "owner_en": ENGLISH.get(self.owner, self.owner),
            "needs_region": self.needs_region,
        }


class Registry:
    """Every KPI by id; adding one twice is a bug."""

    def __init__(self) -> None:
        self._kpis: dict[str, KPI] = {}

    def add(self, kpi: KPI) -> KPI:
        if kpi.id in self._kpis:
            raise ValueError(f"KPI {kpi.id!r} defined twice")  # a bug in the repository
        if kpi.kind not in KINDS:
            raise ValueError(f"KPI {kpi.id!r}: kind must be one of {KINDS}")
        if (kpi.kind == "live") != (kpi.compute is not None):
            raise ValueError(f"KPI {kpi.id!r}: a live KPI is computed, an imported one is not")
        self._kpis[kpi.id] = kpi
        return kpi

    def get(self, kpi_id: str) -> KPI:
        try:
            return self._kpis[kpi_id]
        except KeyError:
            raise NotFoundError(
                f"no KPI {kpi_id!r}; `brygga kpi list` shows the {len(self._kpis)} defined"
            ) from None

    def __contains__(self, kpi_id: object) -> bool:
        return kpi_id in self._kpis

    def __iter__(self) -> Iterator[KPI]:
        return iter(sorted(self._kpis.values(), key=lambda k: k.id))

    def __len__(self) -> int:
        return len(self._kpis)

    def ids(self) -> list[str]:
        return sorted(self._kpis)


REGISTRY = Registry()


# --- Series, every count through the release gate ------------------------------------------


def point(period: str, disclosed: dict[str, Any] | None, value: Any = ..., **extra: Any) -> dict:
    """One point of a series: ``value`` (None when suppressed) and its ``display``."""
    if disclosed is None:
        return {"period": period, "value": None, "display": "–", **extra}
    shown = disclosed["value"] if value is ... else value
    display = disclosed["display"] if value is ... else _display(value, disclosed)
    return {"period": period, "value": shown, "display": display, **extra}


def _display(value: Any, disclosed: dict[str, Any]) -> str:
    if value is None:
        return disclosed["display"] if disclosed["value"] is None else "–"
    if isinstance(value, float):
        # A share, ratio or median is never mistaken for a count: it always has a decimal.
        text = f"{value:g}"
        return text if "." in text or "e" in text else f"{text}.0"
    return str(value)


def series_of(ctx: Context, points: dict[str, dict[str, Any]]) -> Series:
    periods = ctx.periods
    return {
        "years": [points[str(y)] for y in periods.years],
        "quarters": [points[q] for y in periods.years for q in periods.quarters(y)],
        "disclosure": ctx.policy.description,
        "raw": bool(getattr(ctx.policy, "raw", False)),
    }


def flow_series(ctx: Context, days: Iterable[date | None]) -> Series:
    """Events per year and quarter (a year is the sum of its quarters: one table, one line per
    year, so a suppressed quarter cannot be worked out from the others)."""
    counts = {p: 0 for p in ctx.periods.all()}
    for day in days:
        where = ctx.periods.of(day) if day else None
        if where:
            counts[where[0]] += 1
            counts[where[1]] += 1
    shown = release_with_years(ctx, counts)
    return series_of(ctx, {p: point(p, shown[p]) for p in counts})


def release_with_years(ctx: Context, counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    table = CountTable(ctx.policy)
    table.add_all(counts, {})
    for year in ctx.periods.years:
        quarters = ctx.periods.quarters(year)
        # Only a complete year is the sum of four published quarters; a year in progress is
        # the sum of its quarters so far, which the line holds as well.
        if quarters:
            table.line(str(year), quarters)
    return table.release()


def stock_series(ctx: Context, spans: Iterable[tuple[date | None, date | None]]) -> Series:
    """How many spans (start, end: None = still open) are open at each period's end."""
    spans = [(s, e) for s, e in spans if s is not None]
    table = CountTable(ctx.policy)
    for p in ctx.periods.all():
        day = ctx.periods.end(p)
        table.add(p, sum(1 for s, e in spans if s <= day and (e is None or e > day)))
    shown = table.release()
    return series_of(ctx, {p: point(p, shown[p]) for p in ctx.periods.all()})


def share(numerator: dict[str, Any], denominator: dict[str, Any]) -> float | None:
    """A percentage from two disclosed counts (None when either is hidden or zero)."""
    if numerator["value"] is None or not denominator["value"]:
        return None
    return round(100 * numerator["value"] / denominator["value"], 1)


def median_series(ctx: Context, values: Iterable[tuple[date | None, float]]) -> Series:
    """The median of values (days) per period, each with how many it rests on (through the
    gate); the median is shown only when that count is shown, so it never describes a few."""
    by_period: dict[str, list[float]] = {p: [] for p in ctx.periods.all()}
    for day, value in values:
        where = ctx.periods.of(day) if day else None
        if where:
            by_period[where[0]].append(value)
            by_period[where[1]].append(value)
    shown = release_with_years(ctx, {p: len(v) for p, v in by_period.items()})
    points = {}
    for p, vals in by_period.items():
        n = shown[p]
        median = round(statistics.median(vals), 1) if vals and n["value"] else None
        points[p] = point(p, n, median, n=n["display"])
    return series_of(ctx, points)
