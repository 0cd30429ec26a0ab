"""The annual report: a strategy's priorities, measures, owners and figures, as HTML and PDF.

Rendered from a snapshot only (``agenda.snapshot``): the same snapshot gives the same HTML,
byte for byte, so the 2026 report saved with its ``snapshot.json`` renders identically next
year. ``view`` turns a snapshot into what a page shows (the public ``/agenda`` page uses it
too, so the report and the page show the same figures and charts): per priority its measures
and owners, and per indicator the figure's value, target, trend chart (SVG with its table),
definition, source, date, live or imported badge and disclosure note.

The PDF is made from the same HTML by WeasyPrint (charts are inline SVG, fonts the system's).
"""

from __future__ import annotations

__all__ = ["health_view", "render_html", "render_pdf", "status", "view", "write"]

import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from brygga import charts
from brygga.agenda import snapshot as snapshots
from brygga.errors import OutputExistsError
from brygga.messages import translate
from brygga.util import atomic_write_bytes, atomic_write_text


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("brygga.agenda", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["t"] = translate
    return env


def _number(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0")
    else:
        text = f"{int(value):,}"
    text = text.replace(",", " ")
    return text.replace(".", ",") if lang == "sv" else text.replace(" ", ",")


_DERIVED = ("percent", "ratio", "days")


def _display(point: dict[str, Any], unit: str, lang: str) -> str:
    """A point as shown: the disclosed display for counts, formatted numbers otherwise."""
    value = point["value"]
    if value is None:
        shown = point.get("display") or "–"
        # A hidden count shows the policy's text ("<8"); a share, ratio or median resting on a
        # hidden count says it is hidden (a percentage is not "<8").
        if shown == "suppressed" or (shown.startswith("<") and unit in _DERIVED):
            return translate("agenda_suppressed", lang)
        return shown
    text = _number(value, lang)
    return f"{text} %" if unit == "percent" else text


def status(series: dict[str, Any], target: dict[str, Any] | None, year: str) -> str:
    """How the year's value stands against the target: met, not_met, better, worse, same or
    unknown (a direction-only target is judged against the year before)."""
    if not target:
        return "none"
    points = {p["period"]: p["value"] for p in series.get("years", [])}
    value = points.get(year)
    if value is None:
        return "unknown"
    direction, goal = target["direction"], target.get("value")
    if direction == "at_most" and goal is not None:
        return "met" if value <= goal else "not_met"
    if direction == "at_least" and goal is not None:
        return "met" if value >= goal else "not_met"
    before = points.get(str(int(year) - 1))
    if before is None:
        return "unknown"
    if value == before:
        return "same"
    up = value > before
    return "better" if up == (direction in ("increase", "at_least")) else "worse"


def _disclosure_note(figure: dict[str, Any], snap: dict[str, Any], lang: str) -> str:
    series = figure["series"]
    if figure["kind"] == "imported":
        return translate("agenda_note_imported", lang)
    rule = snap.get("disclosure_rule", {})
    method = rule.get("method")
    if method == "raw":
        return translate("agenda_note_raw", lang)
    if method == "rounding":
        text = translate("agenda_note_rounding", lang).format(
            low=rule["threshold"] - 1, rounding=rule["rounding"]
        )
    elif method == "cell-key":
        text = translate("agenda_note_cellkey", lang).format(
            low=rule["threshold"] - 1, perturbation=rule["perturbation"]
        )
    else:
        text = series.get("disclosure", "")
    if figure["unit"] in ("percent", "ratio"):
        text += " " + translate("agenda_note_derived", lang)
    if figure["aggregation"] == "median":
        text += " " + translate("agenda_note_median", lang)
    return text


def _chart(figure: dict[str, Any], name: str, lang: str) -> charts.Chart | None:
    years = figure["series"].get("years", [])
    if not any(p["value"] is not None for p in years):
        return None
    unit = translate(f"agenda_unit_{figure['unit']}", lang)
    return charts.line(
        name,
        [p["period"] for p in years],
        {name: [p["value"] for p in years]},
        {name: [_display(p, figure["unit"], lang) for p in years]},
        period_title=translate("agenda_year", lang),
        value_title=unit,
        lang=lang,
    )


def _figure(snap: dict[str, Any], indicator: dict[str, Any], lang: str) -> dict[str, Any]:
    strategy = snap["strategy"]
    figure = snap["figures"][snapshots.figure_key(indicator, strategy)]
    year = str(snap["year"])
    series = figure["series"]
    name = figure["name"][lang]
    current = next((p for p in series.get("years", []) if p["period"] == year), None)
    target = indicator.get("target")
    sources = series.get("sources") or []
    # Live: the day the figures describe; imported: the newest publication date of the values.
    date = (
        snap["as_of"]
        if figure["kind"] == "live"
        else max((s["date"] for s in sources), default=None)
    )
    return {
        "id": figure["id"],
        "name": name,
        "definition": figure["definition"][lang],
        "unit": figure["unit"],
        "unit_name": translate(f"agenda_unit_{figure['unit']}", lang),
        "kind": figure["kind"],
        "badge": translate(f"agenda_badge_{figure['kind']}", lang),
        "area_name": translate(f"agenda_area_{figure['area'].replace('-', '_')}", lang),
        "source": figure.get("source_en", figure["source"]) if lang == "en" else figure["source"],
        "owner": figure.get("owner_en", figure["owner"]) if lang == "en" else figure["owner"],
        "area": figure["area"],
        "other_area": figure["area"] != strategy["region"],
        "value": _display(current, figure["unit"], lang) if current else "–",
        "year": year,
        "target": target,
        "target_text": target["text"][lang] if target else None,
        "status": (state := status(series, target, year)),
        "status_name": translate(f"agenda_status_{state}", lang),
        "target_kind": translate(f"agenda_target_{target['kind']}", lang) if target else None,
        "baseline": indicator.get("baseline"),
        "baseline_value": _number(indicator["baseline"]["value"], lang)
        if indicator.get("baseline")
        else None,
        "cite": indicator["cite"],
        "chart": _chart(figure, name, lang),
        "quarters": _quarter_grid(series, figure["unit"], lang),
        "years": [
            (p["period"], _display(p, figure["unit"], lang)) for p in series.get("years", [])
        ],
        "breakdowns": _breakdowns(series, figure["unit"], lang),
        "diversity": _diversity(series.get("diversity"), lang),
        "sources": sources,
        "date": date,
        "note": _disclosure_note(figure, snap, lang),
        "unavailable": series.get("unavailable"),
    }


def _quarter_grid(series: dict[str, Any], unit: str, lang: str) -> list[tuple[str, list[str]]]:
    """Quarters as one row per year (Q1..Q4; empty where the quarter has not begun)."""
    shown = {p["period"]: _display(p, unit, lang) for p in series.get("quarters", [])}
    years = [p["period"] for p in series.get("years", [])]
    grid = [(y, [shown.get(f"{y}-Q{q}", "") for q in range(1, 5)]) for y in years]
    return [(y, row) for y, row in grid if any(row)]


def _diversity(doc: dict[str, Any] | None, lang: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    dims = [
        {**d, "name": translate(f"agenda_dimension_{d['id']}", lang)} for d in doc["dimensions"]
    ]
    return {**doc, "dimensions": dims}


def _breakdowns(series: dict[str, Any], unit: str, lang: str) -> list[dict[str, Any]]:
    b = series.get("breakdowns")
    if not b:
        return []
    return [
        {
            "name": d["name"][lang],
            "period": b["period"],
            # Groups with none are left out (a zero reveals nothing, it only takes room).
            "rows": [
                (g["label"][lang], _display(g, unit, lang)) for g in d["groups"] if g["value"] != 0
            ],
        }
        for d in b["dimensions"]
    ]


def view(snap: dict[str, Any], lang: str) -> dict[str, Any]:
    """What a page shows of a snapshot, in ``lang``."""
    strategy = snap["strategy"]
    themes = {t["id"]: t["name"][lang] for t in strategy.get("themes", [])}
    priorities = []
    for p in strategy["priorities"]:
        priorities.append(
            {
                "id": p["id"],
                "kind": p["kind"],
                "number": p["number"],
                "name": p["name"][lang],
                "summary": p["summary"][lang],
                "cite": p["cite"],
                "kind_name": translate(f"agenda_kind_{p['kind']}", lang),
                "sdg_names": [translate(f"agenda_sdg_{n}", lang) for n in p.get("sdgs", [])],
                "themes": [themes[t] for t in p.get("themes", [])],
                "measures": [
                    {
                        "id": m["id"],
                        "text": m["text"][lang],
                        "owners": m["owners"],
                        "cite": m["cite"],
                    }
                    for m in p.get("measures", [])
                ],
                "figures": [_figure(snap, i, lang) for i in p.get("indicators", [])],
            }
        )
    return {
        "lang": lang,
        "year": snap["year"],
        "as_of": snap["as_of"],
        "region": snap.get("region"),
        "strategy": strategy,
        "name": strategy["name"][lang],
        "goals": [{"name": g["name"][lang], "cite": g["cite"]} for g in strategy.get("goals", [])],
        "themes": [
            {"name": t["name"][lang], "cite": t["cite"]} for t in strategy.get("themes", [])
        ],
        "ways": [
            {"name": t["name"][lang], "cite": t["cite"]}
            for t in strategy.get("ways_of_working", [])
        ],
        "sdg_names": [translate(f"agenda_sdg_{n}", lang) for n in strategy.get("sdgs", [])],
        "sdg_basis_text": translate(
            f"agenda_sdg_basis_{strategy.get('sdg_basis', 'strategy')}", lang
        ),
        "sdg_cite": strategy.get("sdg_cite"),
        "priorities": priorities,
        "raw": snap.get("raw", False),
    }


def render_html(snap: dict[str, Any], lang: str) -> str:
    """The report's HTML: a function of the snapshot and the language only."""
    return _env().get_template("annual.html").render(v=view(snap, lang), lang=lang)


def render_pdf(html: str, base: Path) -> bytes:
    from weasyprint import HTML  # imported on use: a second or two of start-up

    return HTML(string=html, base_url=str(base)).write_pdf()


def write(snap: dict[str, Any], out: Path, lang: str, *, force: bool = True) -> dict[str, Any]:
    """DIR/index.html, DIR/report.pdf and DIR/snapshot.json."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    html = render_html(snap, lang)
    atomic_write_text(out / "index.html", html)
    snapshots.save(snap, out / "snapshot.json")
    rendered = time.perf_counter()
    atomic_write_bytes(out / "report.pdf", render_pdf(html, out))
    done = time.perf_counter()
    return {
        "html": str(out / "index.html"),
        "pdf": str(out / "report.pdf"),
        "snapshot": str(out / "snapshot.json"),
        "strategy": snap["strategy"]["id"],
        "year": snap["year"],
        "figures": len(snap["figures"]),
        "seconds": round(done - started, 2),
        "seconds_html": round(rendered - started, 2),
        "seconds_pdf": round(done - rendered, 2),
    }


def _pct_text(value: float | None, lang: str) -> str:
    return "–" if value is None else f"{_number(value, lang)} %"


def _rate_rows(rows: list[dict[str, Any]], lang: str, standardised: bool = False) -> list[tuple]:
    out = []
    for r in rows:
        label = r["label"][lang] if isinstance(r["label"], dict) else r["label"]
        row = (label, r["count"]["display"], r["population"]["display"], _pct_text(r["rate"], lang))
        out.append((*row, _pct_text(r.get("standardised"), lang)) if standardised else row)
    return out


def _rate_chart(title: str, rows: list[dict[str, Any]], key: str, label_title: str,
                lang: str) -> charts.Chart:  # fmt: skip
    labels = [r["label"][lang] if isinstance(r["label"], dict) else r["label"] for r in rows]
    values = [r[key] for r in rows]
    return charts.bar(
        title, labels, values, [_pct_text(v, lang) for v in values],
        label_title=label_title, value_title=translate("agenda_percent", lang), lang=lang,
    )  # fmt: skip


def _measure_view(measure: dict[str, Any], name: str, lang: str) -> dict[str, Any]:
    muni = translate("agenda_hl_municipality", lang)
    return {
        "overall": _pct_text(measure["overall"]["rate"], lang),
        "overall_count": measure["overall"]["count"]["display"],
        "by_municipality": _rate_chart(
            translate("agenda_hl_chart_municipality", lang).format(name=name),
            measure["by_municipality"],
            "standardised",
            muni,
            lang,
        ),
        "by_sex": _rate_chart(
            translate("agenda_hl_chart_sex", lang).format(name=name),
            measure["by_sex"],
            "rate",
            translate("agenda_hl_sex", lang),
            lang,
        ),
        "by_age": _rate_chart(
            translate("agenda_hl_chart_age", lang).format(name=name),
            measure["by_age"],
            "rate",
            translate("agenda_hl_age", lang),
            lang,
        ),
        "municipality_rows": _rate_rows(measure["by_municipality"], lang, standardised=True),
    }


def health_view(doc: dict[str, Any], condition: str | None, lang: str) -> dict[str, Any]:
    """What the Hälsoläget page shows of ``agenda.halsolaget``'s document: one condition at a
    time (``condition``; default the first) and the SCORE2 risk categories."""
    conditions = doc["prevalence"]["conditions"]
    chosen = next((c for c in conditions if c["id"] == condition), conditions[0])
    name = chosen["name"][lang]
    score2 = doc["score2"]
    high_name = translate("agenda_hl_high", lang)
    categories = [
        {"name": c["name"][lang],
         "by_age": _rate_rows(c["by_age"], lang), "by_sex": _rate_rows(c["by_sex"], lang)}
        for c in score2["categories"]
    ]  # fmt: skip
    return {
        "index_date": doc["index_date"],
        "region": doc["region"],
        "conditions": [(c["id"], c["name"][lang]) for c in conditions],
        "condition": chosen["id"],
        "condition_name": name,
        "codes": ", ".join(chosen["codes"]),
        "prevalence": _measure_view(chosen, name, lang),
        "population": doc["prevalence"]["population"]["display"],
        "age_bands": doc["prevalence"]["age_bands"],
        "weights": [_pct_text(100 * w, lang) for w in doc["prevalence"]["weights"]],
        "score2": _measure_view(score2["high_or_above"], high_name, lang),
        "score2_bands": score2["age_bands"],
        "score2_weights": [_pct_text(100 * w, lang) for w in score2["weights"]],
        "categories": categories,
        "note": _disclosure_note(
            {"kind": "live", "unit": "percent", "aggregation": "level", "series": {}}, doc, lang
        ),
        "raw": doc.get("raw", False),
    }
