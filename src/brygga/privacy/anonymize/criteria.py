"""Privacy criteria on equivalence classes: l-diversity and t-closeness.

Everything works on a class's sensitive-value histogram given as "pairs": parallel arrays of
(class id, sensitive value code, count), one entry per value present in a class. Distances follow
Li, Li & Venkatasubramanian, "t-Closeness" (ICDE 2007): Earth Mover's Distance to the whole
table's distribution with equal, ordered or hierarchical ground distance.
"""

from __future__ import annotations

__all__ = [
    "EPS",
    "Pairs",
    "distinct_l",
    "emd_equal",
    "emd_hierarchical",
    "emd_ordered",
    "entropy_l",
]

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# A criterion compared against a float: a class exactly at the threshold passes.
EPS = 1e-9
_DENSE_CELLS = 1 << 22  # cells of a (classes x values) matrix built at once


@dataclass
class Pairs:
    cls: np.ndarray  # class id
    value: np.ndarray  # sensitive value code
    count: np.ndarray  # records
    sizes: np.ndarray  # records per class (indexed by class id)

    @property
    def n_classes(self) -> int:
        return len(self.sizes)

    def share(self) -> np.ndarray:
        return self.count / self.sizes[self.cls]


def distinct_l(pairs: Pairs) -> np.ndarray:
    """Number of distinct sensitive values per class."""
    return np.bincount(pairs.cls, minlength=pairs.n_classes)


def entropy_l(pairs: Pairs) -> np.ndarray:
    """exp(entropy) per class: the class is entropy-l-diverse when this is >= l."""
    p = pairs.share()
    h = np.bincount(pairs.cls, weights=-p * np.log(p), minlength=pairs.n_classes)
    return np.exp(h)


def emd_equal(pairs: Pairs, q: np.ndarray) -> np.ndarray:
    """Equal ground distance: half the L1 distance, summed only over values present.

    sum_v |p_v - q_v| = sum_{v present} (|p_v - q_v| - q_v) + 1, since sum_v q_v = 1.
    """
    p = pairs.share()
    qv = q[pairs.value]
    total = np.bincount(pairs.cls, weights=np.abs(p - qv) - qv, minlength=pairs.n_classes)
    return np.clip(0.5 * (total + 1.0), 0.0, 1.0)


def _dense_chunks(pairs: Pairs, n_values: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first class, matrix of shares) for blocks of classes, bounded in memory."""
    c = pairs.n_classes
    step = max(1, _DENSE_CELLS // max(1, n_values))
    order = np.argsort(pairs.cls, kind="stable")
    cls, value, share = pairs.cls[order], pairs.value[order], pairs.share()[order]
    bounds = np.searchsorted(cls, np.arange(0, c + step, step))
    for i, lo in enumerate(range(0, c, step)):
        hi = min(c, lo + step)
        a, b = bounds[i], bounds[i + 1]
        flat = (cls[a:b] - lo) * n_values + value[a:b]
        dense = np.bincount(flat, weights=share[a:b], minlength=(hi - lo) * n_values)
        yield lo, dense.reshape(hi - lo, n_values)


def emd_ordered(pairs: Pairs, q: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Ordered ground distance |i - j| / (m - 1): the normalized sum of |cumulative differences|.

    ``rank[v]`` is the position of value code ``v`` in the order.
    """
    m = len(q)
    out = np.zeros(pairs.n_classes)
    if m < 2:
        return out
    q_ordered = np.empty(m)
    q_ordered[rank] = q
    ranked = Pairs(pairs.cls, rank[pairs.value], pairs.count, pairs.sizes)
    for lo, dense in _dense_chunks(ranked, m):
        cum = np.cumsum(dense - q_ordered, axis=1)[:, :-1]
        out[lo : lo + len(dense)] = np.abs(cum).sum(axis=1) / (m - 1)
    return out


def emd_hierarchical(pairs: Pairs, q: np.ndarray, levels: list[np.ndarray]) -> np.ndarray:
    """Hierarchical ground distance (height of the lowest common ancestor / tree height).

    ``levels[j][v]`` is the code at level j of the node above value v (levels[0] is the values
    themselves); the last level is the root. At each inner node the cost is its height times
    min(positive extra, negative extra) of its children, as in the t-closeness paper.
    """
    height = len(levels) - 1
    out = np.zeros(pairs.n_classes)
    if height < 1:
        return out
    # Indicator matrices child (level j-1) -> parent (level j).
    joins = []
    for j in range(1, height + 1):
        child = np.zeros(int(levels[j - 1].max()) + 1, dtype=np.int64)
        child[levels[j - 1]] = levels[j]
        a = np.zeros((len(child), int(levels[j].max()) + 1))
        a[np.arange(len(child)), child] = 1.0
        joins.append(a)
    for lo, dense in _dense_chunks(pairs, len(q)):
        extra = dense - q
        cost = np.zeros(len(dense))
        for j, a in enumerate(joins, start=1):
            pos = np.maximum(extra, 0.0) @ a
            neg = np.maximum(-extra, 0.0) @ a
            cost += (j / height) * np.minimum(pos, neg).sum(axis=1)
            extra = extra @ a
        out[lo : lo + len(dense)] = cost
    return out
