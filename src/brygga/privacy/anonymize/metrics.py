"""Information-loss metrics, and the lower bounds that let the search stop early.

All are to be minimized. Suppressed records count as fully generalized (precision), as
indistinguishable from all n records (discernibility) and as one extra class (AECS), as in ARX.

- ``precision``: Sweeney's Prec loss, ARX's "generalization intensity": the mean over cells of
  level / maximum level; 0 = original data, 1 = everything '*'.
- ``discernibility``: sum of squared class sizes, plus n per suppressed record.
- ``aecs``: average equivalence class size, records / classes.

Reported beside them (not searched on):

- ``ncp``: the normalized certainty penalty (Xu et al., "Utility-based anonymization", KDD 2006;
  also called GCP): a published label standing for a set S of the column's values loses
  (|S| - 1) / (|domain| - 1), or for numbers the range of S over the range of the domain; mean
  over cells, a suppressed record losing 1. It judges global and local recoding alike (a local
  recoding's levels differ by class, so the level-based ``precision`` is coarser there), and it
  is the measure ``bench/anonymize.py`` scores brygga and anonypy's Mondrian on.
- per column (``ColumnUtility``): how much of it is generalized, removed ('*') and the
  information lost in bits (the entropy of the original value left given the published label).
"""

from __future__ import annotations

__all__ = [
    "ColumnUtility",
    "Metrics",
    "column_utility",
    "entropy_bits",
    "intensity",
    "intensity_grid",
    "label_loss",
    "measure",
    "node_bounds",
    "successor_bound",
]

from dataclasses import asdict, dataclass

import numpy as np

from brygga.privacy.anonymize.engine import Evaluation, Node, Problem
from brygga.privacy.anonymize.hierarchy import Hierarchy


@dataclass
class Metrics:
    precision: float
    discernibility: float
    aecs: float
    classes: int
    suppressed: int
    ncp: float = 0.0

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def intensity(problem: Problem, node: Node) -> float:
    """Mean of level / maximum level over the quasi-identifiers."""
    return sum(lv / (h - 1) for lv, h in zip(node, problem.heights, strict=True)) / len(node)


def intensity_grid(heights: Node) -> np.ndarray:
    """``intensity`` for every node of the lattice, as an array shaped like it."""
    grid = np.zeros(heights)
    for q, h in enumerate(heights):
        shape = [1] * len(heights)
        shape[q] = h
        grid = grid + (np.arange(h) / (h - 1)).reshape(shape)
    return grid / len(heights)


def measure(problem: Problem, ev: Evaluation) -> Metrics:
    n, s = problem.n, ev.suppressed
    kept = ev.sizes[ev.ok]
    g = intensity(problem, ev.node)
    return Metrics(
        precision=((n - s) * g + s) / n,
        discernibility=float(np.square(kept, dtype=np.float64).sum()) + float(s) * n,
        aecs=n / (len(kept) + (1 if s else 0)),
        classes=len(kept),
        suppressed=s,
    )


def node_bounds(metric: str, heights: Node) -> np.ndarray:
    """A lower bound of the metric at every node, known before looking at the data."""
    if metric == "precision":
        return intensity_grid(heights)  # suppression only adds to it
    return np.zeros(heights)


def successor_bound(metric: str, problem: Problem, ev: Evaluation) -> float:
    """A lower bound of the metric at every node >= ``ev.node`` (classes only merge upward)."""
    if metric == "precision":
        return intensity(problem, ev.node)
    if metric == "discernibility":
        # A kept record costs its class size, a suppressed one n >= its class size.
        return float(np.square(ev.sizes, dtype=np.float64).sum())
    # aecs: above this node there are at most as many classes, plus one for suppression.
    return problem.n / (ev.n_classes + 1)


def label_loss(h: Hierarchy, values: list[str]) -> list[np.ndarray]:
    """NCP of every label of every level: ``loss[level][label code]`` (0 for original values).

    A column whose every non-empty value is a number is scored by ranges, any other by the
    number of distinct values a label covers.
    """
    numbers: np.ndarray | None
    try:
        numbers = np.array([float(v) for v in values]) if values else None
    except ValueError:
        numbers = None
    if numbers is not None and not np.isfinite(numbers).all():
        numbers = None
    out = []
    for level in range(h.height):
        codes, card = h.codes[level], h.cardinality(level)
        if numbers is not None:
            span = float(numbers.max() - numbers.min())
            lo, hi = np.full(card, np.inf), np.full(card, -np.inf)
            np.minimum.at(lo, codes, numbers)
            np.maximum.at(hi, codes, numbers)
            out.append((hi - lo) / span if span > 0 else np.zeros(card))
        else:
            covered = np.bincount(codes, minlength=card)
            out.append((covered - 1) / max(1, len(values) - 1))
    return out


def entropy_bits(codes: np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution of ``codes`` (non-negative ints)."""
    if len(codes) == 0:
        return 0.0
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


@dataclass
class ColumnUtility:
    """How much one quasi-identifier was generalized, over the written records."""

    column: str
    max_level: int
    mean_level: float  # mean level of the written cells (the level itself in global recoding)
    generalized: float  # share of written cells above level 0
    removed: float  # share of written cells at the top level (usually '*')
    ncp: float  # mean certainty penalty of the column's cells, suppressed records counting 1
    bits_lost: float  # H(original | published): bits per record a reader no longer knows

    def as_dict(self) -> dict[str, float | int | str]:
        d = asdict(self)
        for key in ("mean_level", "generalized", "removed", "ncp", "bits_lost"):
            d[key] = round(d[key], 4)
        return d


def column_utility(
    column: str,
    h: Hierarchy,
    values: np.ndarray,
    levels: np.ndarray,
    keep: np.ndarray,
    loss: list[np.ndarray],
) -> ColumnUtility:
    """``values``: level-0 codes per record; ``levels``: the published level per record."""
    n = len(values)
    top = h.height - 1
    published = np.zeros(n, dtype=np.int64)
    cell_loss = np.ones(n)
    offset = 0
    for level in range(h.height):
        at = levels == level
        codes = h.codes[level][values[at]]
        published[at] = offset + codes
        cell_loss[at] = loss[level][codes]
        offset += h.cardinality(level)
    cell_loss[~keep] = 1.0
    # A suppressed record reveals nothing of the column: it counts as the top label.
    published[~keep] = offset - h.cardinality(top) + h.codes[top][values[~keep]]
    written = levels[keep]
    w = max(1, len(written))
    return ColumnUtility(
        column=column,
        max_level=top,
        mean_level=float(written.mean()) if len(written) else float(top),
        generalized=float((written > 0).sum() / w),
        removed=float((written == top).sum() / w) if top > 0 else 0.0,
        ncp=float(cell_loss.mean()),
        # H(original | published) = H(original, published) - H(published): what a reader no
        # longer knows of the value (in global recoding simply H(original) - H(published)).
        bits_lost=max(
            0.0, entropy_bits(published * (len(h.labels[0]) + 1) + values) - entropy_bits(published)
        ),
    )
