"""PNG charts of disclosed figures (matplotlib, Agg backend: no display needed).

Charts are drawn only from documents whose counts have already passed the disclosure policy;
a group with a suppressed count is drawn as an empty bar labelled "suppressed".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brygga.util import atomic_path

COLOURS = {
    "low": "#1a9850",
    "low-to-moderate": "#1a9850",
    "moderate": "#fee08b",
    "high": "#fc8d59",
    "very-high": "#d73027",
}
TITLES = {
    "sex": "sex",
    "age_band": "age band",
    "municipality": "municipality",
    "deprivation_quintile": "deprivation quintile (1 least, 5 most deprived)",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def risk_chart(doc: dict[str, Any], dimension: str, path: Path) -> Path:
    """Stacked horizontal bars: share of each risk category per group of ``dimension``."""
    plt = _pyplot()
    cells = doc["breakdowns"][dimension]
    groups = list(cells)
    height = max(2.5, 0.32 * len(groups) + 1.6)
    fig, ax = plt.subplots(figsize=(9, height))
    try:
        for y, group in enumerate(groups):
            left = 0.0
            shares = cells[group]["shares"]
            if all(v is None for v in shares.values()):
                ax.text(0.01, y, "suppressed (small counts)", va="center", fontsize=8)
                continue
            for label in doc["categories"]:
                w = shares[label] or 0.0
                ax.barh(y, w, left=left, color=COLOURS.get(label, "#999999"))
                left += w
        from matplotlib.patches import Patch

        handles = [Patch(color=COLOURS.get(c, "#999999"), label=c) for c in doc["categories"]]
        ax.set_yticks(range(len(groups)), [_group_label(g, cells[g]) for g in groups], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of people with complete inputs")
        title = f"10-year CVD risk category by {TITLES.get(dimension, dimension)}"
        ax.set_title(
            f"{title}\n{doc['region']} {doc['index_date']}, model: {doc['model']}", fontsize=10
        )
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        note = doc["disclosure"] + ("; inputs imputed" if doc.get("imputation") else "")
        fig.text(0.01, 0.005, note, fontsize=7, color="#555555")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


def _group_label(group: str, cell: dict[str, Any]) -> str:
    return f"{group} (n {cell['people']['display']})"


def risk_charts(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """One PNG per dimension of a stratification document."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [risk_chart(doc, dim, out_dir / f"risk-{dim}.png") for dim in doc["breakdowns"]]


def bar_chart(
    title: str, groups: list[str], values: list[float | None], xlabel: str, path: Path,
    flagged: list[bool] | None = None,
) -> Path:  # fmt: skip
    """One horizontal bar per group (None: suppressed); flagged groups drawn in red."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(groups) + 1.6)))
    try:
        flagged = flagged or [False] * len(groups)
        for y, (v, f) in enumerate(zip(values, flagged, strict=True)):
            if v is None:
                ax.text(0.0, y, " suppressed (small counts)", va="center", fontsize=8)
            else:
                ax.barh(y, v, color="#d73027" if f else "#4575b4")
        ax.set_yticks(range(len(groups)), groups, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path
