"""Information-loss metrics, and the lower bounds that let the search stop early.

All are to be minimized. Suppressed records count as fully generalized (precision), as
indistinguishable from all n records (discernibility) and as one extra class (AECS), as in ARX.

- ``precision``: Sweeney's Prec loss, ARX's "generalization intensity": the mean over cells of
  level / maximum level; 0 = original data, 1 = everything '*'.
- ``discernibility``: sum of squared class sizes, plus n per suppressed record.
- ``aecs``: average equivalence class size, records / classes.
"""

from __future__ import annotations

__all__ = ["Metrics", "intensity", "intensity_grid", "measure", "node_bounds", "successor_bound"]

from dataclasses import asdict, dataclass

import numpy as np

from brygga.privacy.anonymize.engine import Evaluation, Node, Problem


@dataclass
class Metrics:
    precision: float
    discernibility: float
    aecs: float
    classes: int
    suppressed: int

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
