"""Imported KPI series: figures Brygga cannot compute (employees, trial applications, patents,
venture capital ...), read from CSV files that name their source, date and licence.

The file (UTF-8, comma separated, a header line) has the columns

    kpi,area,period,value,source,source_date,licence

``kpi``: an imported KPI of the registry; ``area``: ``skane``, ``stockholm``,
``medicon-valley`` or ``sweden``; ``period``: ``2025`` or ``2025-Q3``; ``value``: a number
(decimal point or comma); ``source``: who published it (and where); ``source_date``: when
(YYYY-MM-DD); ``licence``: under which terms (e.g. ``CC0``, ``CC BY 4.0``). Every problem is
reported with the file, the line and the field; nothing is stored unless the whole file is
valid. A later import of the same KPI, area and period replaces the value.

Imported figures are aggregate statistics published by others (no person-level data), so they
do not pass the release gate; the report says where each one comes from.
"""

from __future__ import annotations

__all__ = ["AREAS", "COLUMNS", "ImportResult", "import_csv", "parse_csv", "series"]

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import clock
from brygga.agenda.kpis import KPI, REGISTRY, Context, Series, point, series_of
from brygga.agenda.models import SeriesValue
from brygga.errors import DocumentError, NotFoundError

COLUMNS = ("kpi", "area", "period", "value", "source", "source_date", "licence")
AREAS = ("skane", "stockholm", "medicon-valley", "sweden")
MAX_ROWS = 100_000
_PERIOD = re.compile(r"^\d{4}(-Q[1-4])?$")


@dataclass(frozen=True)
class ImportResult:
    file: str
    rows: int
    kpis: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "kpis": self.kpis}


def parse_csv(text: str, source: str) -> list[dict[str, Any]]:
    """Validated rows; a ``DocumentError`` naming file, line and field for every problem."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DocumentError(
            f"{source}: empty file (expected a header: {','.join(COLUMNS)})"
        ) from None
    header = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DocumentError(
            f"{source}: line 1: missing column(s) {', '.join(missing)} "
            f"(expected: {','.join(COLUMNS)})"
        )
    problems: list[tuple[str, int | None, str]] = []
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(rows) >= MAX_ROWS:
            problems.append(("", line, f"more than {MAX_ROWS} rows (the limit)"))
            break
        if len(values) != len(header):
            problems.append(("", line, f"{len(values)} fields, the header has {len(header)}"))
            continue
        raw = {h: v.strip() for h, v in zip(header, values, strict=True)}
        row, errors = _row(raw)
        problems.extend((f, line, t) for f, t in errors)
        if not errors:
            key = (row["kpi"], row["area"], row["period"])
            if key in seen:
                problems.append(
                    ("period", line, f"the same KPI, area and period as line {seen[key]}")
                )
            seen[key] = line
            rows.append(row)
    if problems:
        text_ = "\n  ".join(
            f"line {ln}: {f}: {t}" if f else f"line {ln}: {t}" for f, ln, t in problems[:50]
        )
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DocumentError(f"{source}: invalid KPI series:\n  {text_}{more}", problems)
    return rows


def _row(raw: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    errors: list[tuple[str, str]] = []
    kpi = raw["kpi"]
    if kpi not in REGISTRY:
        errors.append(("kpi", f"unknown KPI {kpi!r}"))
    elif REGISTRY.get(kpi).kind != "imported":
        errors.append(("kpi", f"{kpi!r} is computed by Brygga (live), not imported"))
    if raw["area"] not in AREAS:
        errors.append(("area", f"must be one of {', '.join(AREAS)}"))
    if not _PERIOD.match(raw["period"]):
        errors.append(("period", "must be a year (2025) or a quarter (2025-Q3)"))
    value: float | None = None
    try:
        value = float(raw["value"].replace(" ", "").replace(",", "."))
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError
    except ValueError:
        errors.append(("value", "must be a number"))
    for name, limit in (("source", 300), ("licence", 100)):
        if not raw[name]:
            errors.append((name, "must not be empty"))
        elif len(raw[name]) > limit:
            errors.append((name, f"is longer than {limit} characters (the limit)"))
    published: date | None = None
    try:
        published = date.fromisoformat(raw["source_date"])
    except ValueError:
        errors.append(("source_date", "must be a date (YYYY-MM-DD)"))
    row = {"kpi": kpi, "area": raw["area"], "period": raw["period"], "value": value,
           "source": raw["source"], "source_date": published, "licence": raw["licence"]}  # fmt: skip
    return row, errors


def import_csv(session: Session, path: str | Path) -> ImportResult:
    """Validate the whole file, then store (replacing the same KPI, area and period)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"KPI series file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError(f"{path}: not UTF-8 text") from None
    rows = parse_csv(text, str(path))
    now = clock.now()
    for row in rows:
        existing = session.scalar(
            select(SeriesValue).where(
                SeriesValue.kpi_id == row["kpi"],
                SeriesValue.area == row["area"],
                SeriesValue.period == row["period"],
            )
        )
        target = existing or SeriesValue(kpi_id=row["kpi"], area=row["area"], period=row["period"])
        target.value = row["value"]
        target.source = row["source"]
        target.source_date = row["source_date"]
        target.licence = row["licence"]
        target.file = path.name
        target.imported_at = now
        if existing is None:
            session.add(target)
    return ImportResult(path.name, len(rows), sorted({r["kpi"] for r in rows}))


def series(ctx: Context, kpi: KPI, area: str) -> Series:
    """An imported KPI's values for ``area`` over the context's periods, with their sources."""
    rows = ctx.session.scalars(
        select(SeriesValue).where(SeriesValue.kpi_id == kpi.id, SeriesValue.area == area)
    ).all()
    by_period = {r.period: r for r in rows}
    points = {}
    sources = {}
    for p in ctx.periods.all():
        r = by_period.get(p)
        if r is None:
            points[p] = point(p, None)
            continue
        value = int(r.value) if float(r.value).is_integer() else r.value
        points[p] = {"period": p, "value": value, "display": _number(value)}
        sources[(r.source, r.source_date.isoformat(), r.licence)] = None
    out = series_of(ctx, points)
    out["disclosure"] = "imported"
    out["raw"] = False
    out["quarters"] = [q for q in out["quarters"] if q["value"] is not None]
    out["sources"] = [{"source": s, "date": d, "licence": lic} for s, d, lic in sources]
    return out


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    return f"{value:,.1f}".replace(",", " ")


def _imported(kid: str, sv: str, en: str, dsv: str, den: str, unit: str, source: str,
              owner: str) -> None:  # fmt: skip
    REGISTRY.add(
        KPI(
            id=kid,
            name_sv=sv,
            name_en=en,
            definition_sv=dsv,
            definition_en=den,
            unit=unit,
            kind="imported",
            source=source,
            owner=owner,
            aggregation="level",
            inputs=("agenda_series_value (brygga kpi import)",),
            method="Imported from a CSV file with source, date and licence; not computed.",
        )
    )


_imported(
    "ls_employees", "Anställda inom life science", "Life-science employees",
    "Antal anställda i life science-företag i området (läkemedel, medicinteknik, bioteknik, "
    "tjänster), enligt den officiella sektorsstatistiken.",
    "Employees of life-science companies in the area (pharmaceuticals, medtech, biotech, "
    "services), from the official sector statistics.",
    "people", "Vinnova/Tillväxtanalys: Life science-sektorns utveckling (årlig statistik)",
    "Regionens näringslivsutveckling",
)  # fmt: skip
_imported(
    "ls_companies", "Life science-företag", "Life-science companies",
    "Antal life science-företag med säte eller verksamhet i området.",
    "Life-science companies with their seat or operations in the area.",
    "count", "Vinnova/Tillväxtanalys: Life science-sektorns utveckling (årlig statistik)",
    "Regionens näringslivsutveckling",
)  # fmt: skip
_imported(
    "clinical_trial_applications", "Ansökningar om kliniska läkemedelsprövningar",
    "Clinical trial applications",
    "Ansökningar om kliniska läkemedelsprövningar (CTIS) med minst en prövningsplats i området.",
    "Clinical trial applications (CTIS) with at least one trial site in the area.",
    "count", "Läkemedelsverket / EU CTIS", "Regionens FoU-enhet (forskningsstöd)",
)  # fmt: skip
_imported(
    "ls_patents", "Patentansökningar inom life science", "Life-science patent applications",
    "Patentansökningar inom life science-klasser med sökande eller uppfinnare i området.",
    "Patent applications in life-science classes with an applicant or inventor in the area.",
    "count", "PRV / EPO patentstatistik", "Innovationsstödsaktörerna (innovationskontoren)",
)  # fmt: skip
_imported(
    "ls_venture_capital", "Riskkapital till life science-bolag", "Venture capital to life science",
    "Investerat riskkapital i life science-bolag i området under perioden (MSEK).",
    "Venture capital invested in life-science companies in the area in the period (SEK m).",
    "msek", "Tillväxtanalys riskkapitalstatistik / branschorganisationernas sammanställning",
    "Invest in Skåne / Invest Stockholm",
)  # fmt: skip
_imported(
    "ls_foreign_establishments", "Utländska etableringar inom life science",
    "Foreign life-science establishments",
    "Utländska företag som etablerat eller utökat verksamhet inom life science i området.",
    "Foreign companies that established or expanded life-science operations in the area.",
    "count", "Invest in Skåne / Invest Stockholm (årsrapport)", "Invest in Skåne / Invest Stockholm",
)  # fmt: skip
_imported(
    "infrastructure_industry_users", "Företagsanvändare av forskningsinfrastrukturer",
    "Industry users of research infrastructures",
    "Företag som använt regionens forskningsinfrastrukturer (t.ex. MAX IV, ESS, SciLifeLab, "
    "GMP-faciliteter) under perioden.",
    "Companies that used the region's research infrastructures (e.g. MAX IV, ESS, SciLifeLab, "
    "GMP facilities) in the period.",
    "count", "Infrastrukturernas årsrapporter", "Infrastrukturerna och deras stödfunktioner",
)  # fmt: skip
_imported(
    "ls_pharma_export", "Exportvärde läkemedel", "Pharmaceutical export value",
    "Exportvärdet av läkemedel (MSEK) enligt handelsstatistiken.",
    "Export value of pharmaceuticals (SEK m) from the trade statistics.",
    "msek", "SCB utrikeshandelsstatistik", "Regionens näringslivsutveckling",
)  # fmt: skip
_imported(
    "ls_international_recruits", "Internationellt rekryterade specialister",
    "Internationally recruited specialists",
    "Arbetstillstånd beviljade för specialister inom life science med arbetsgivare i området.",
    "Work permits granted to life-science specialists with an employer in the area.",
    "people", "Migrationsverket (arbetstillståndsstatistik)", "Medicon Valley Alliance / regionen",
)  # fmt: skip
_imported(
    "ls_education_places", "Utbildningsplatser inom ATMP, AI och life science",
    "Education places in ATMP, AI and life science",
    "Platser på utbildningar och forskarskolor inom ATMP, precisionshälsa, AI och life science.",
    "Places in programmes and graduate schools in ATMP, precision health, AI and life science.",
    "count", "Lärosätenas antagningsstatistik (UHR)", "Lärosätena",
)  # fmt: skip
_imported(
    "site_feasibility_answer_days", "Dagar till svar på förfrågan om genomförbarhet",
    "Days to answer a site feasibility request",
    "Median av arbetsdagar från en sponsors förfrågan om genomförbarhet (kan studien göras här?) "
    "till regionens svar. Importeras tills förfrågningarna hanteras i Brygga med klockor.",
    "Median working days from a sponsor's site feasibility request (can the study be done "
    "here?) to the region's answer. Imported until the requests are handled in Brygga with "
    "clocks.",
    "days", "Regionens FoU-enhet (ärendelogg för förfrågningar)",
    "Regionens FoU-enhet (forskningsstöd)",
)  # fmt: skip
