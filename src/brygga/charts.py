"""Charts for pages and reports: Vega-Lite specs built with Altair, rendered to SVG on the
server by vl-convert (no browser JavaScript, no CDN, works offline and in a PDF).

Each ``Chart`` carries its own text alternative: the SVG is one ``role="img"`` with the title as
its accessible name, and ``columns``/``rows`` are the same figures as a table, which every page
shows beside the chart (``components.html`` ``chart``). The figures passed in are already
disclosed (through the release gate): a chart draws the disclosed value, and a suppressed cell
(``None``) is left out of the bars and shown as its display text in the table.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import altair as alt
import vl_convert as vlc

__all__ = ["Chart", "bar", "line"]

# The theme's colours (frontend/brygga.scss) and the platform's fonts.
BRAND = "#00505c"
PALETTE = ["#00505c", "#d4351c", "#1d70b8", "#f47738", "#4c2c92", "#85994b"]
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"  # metric-compatible fonts: vl-convert measures labels as the browser draws them
WIDTH = 560


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _config(chart: alt.Chart | alt.LayerChart) -> alt.Chart | alt.LayerChart:
    return (
        chart.configure(font=FONT)
        .configure_axis(labelFontSize=13, titleFontSize=13, labelLimit=260, grid=False)
        .configure_view(stroke=None)
    )


@lru_cache(maxsize=256)
def _render(spec: str, lang: str) -> str:
    # Swedish numbers: 1 000 and 0,5 on the axes, as in the tables.
    return vlc.vegalite_to_svg(spec, format_locale="sv-SE" if lang == "sv" else "en-GB")


def _accessible(svg: str, title: str) -> str:
    """The whole drawing is one image named by its title (the table carries the detail).

    Vega's own ARIA attributes are removed: they are English ("X-axis titled ... for a
    discrete scale") and would make each axis and mark a separate element to read."""
    svg = re.sub(r'\s(?:role|aria-[a-z]+)="[^"]*"', "", svg)
    name = html.escape(title, quote=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{name}" focusable="false" ', 1)


def bar(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    displays: Sequence[str],
    *,
    label_title: str,
    value_title: str,
    lang: str = "sv",
    colour: str = BRAND,
) -> Chart:
    """Horizontal bars, one per label, in the given order (attrition steps, age bands ...)."""
    if not (len(labels) == len(values) == len(displays)):
        raise ValueError("labels, values and displays differ in length")
    # A suppressed cell keeps its row: no bar, its display text ("<8") at zero.
    data = [
        {"label": lab, "value": 0 if v is None else v, "display": d}
        for lab, v, d in zip(labels, values, displays, strict=True)
    ]
    base = alt.Chart(alt.Data(values=data)).encode(
        # No axis title beside the labels: long labels (attrition steps) need the room, and
        # the table under the chart names the column.
        y=alt.Y("label:N", sort=list(labels), title=None, axis=alt.Axis(labelLimit=240)),
        x=alt.X("value:Q", title=value_title),
    )
    layered = base.mark_bar(color=colour) + base.mark_text(
        align="left", dx=4, fontSize=12, color="#0b0c0c"
    ).encode(text="display:N")
    height = max(60, 28 * len(labels))
    spec = _config(layered.properties(width=WIDTH - 200, height=height)).to_json()
    rows = tuple((lab, d) for lab, d in zip(labels, displays, strict=True))
    return Chart(title, _accessible(_render(spec, lang), title), (label_title, value_title), rows)


def line(
    title: str,
    periods: Sequence[str],
    series: dict[str, Sequence[float | None]],
    displays: dict[str, Sequence[str]],
    *,
    period_title: str,
    value_title: str,
    lang: str = "sv",
) -> Chart:
    """One line per series over the periods (years, quarters), points marked."""
    data = [
        {"period": p, "series": name, "value": v}
        for name, values in series.items()
        for p, v in zip(periods, values, strict=True)
        if v is not None
    ]
    many = len(series) > 1
    enc = {
        "x": alt.X("period:O", sort=list(periods), title=period_title, axis=alt.Axis(labelAngle=0)),
        "y": alt.Y("value:Q", title=value_title),
    }
    if many:
        enc["color"] = alt.Color(
            "series:N",
            title=None,
            scale=alt.Scale(range=PALETTE),
            legend=alt.Legend(orient="bottom"),
        )
    mark = {"point": True} if many else {"point": True, "color": BRAND}
    chart = alt.Chart(alt.Data(values=data)).mark_line(**mark).encode(**enc)
    spec = json.loads(_config(chart.properties(width=WIDTH - 120, height=220)).to_json())
    svg = _render(json.dumps(spec, sort_keys=True), lang)
    names = list(series)
    rows = tuple((p, *(displays[n][i] for n in names)) for i, p in enumerate(periods))
    return Chart(title, _accessible(svg, title), (period_title, *names), rows)
