"""Local recoding: Mondrian-style multidimensional partitioning over the hierarchies.

Global recoding (``search.py``) publishes one level per column for the whole extract, so one
rare combination can force a column to '*' for everybody. Local recoding gives every
equivalence class its own levels (LeFevre, DeWitt & Ramakrishnan, "Mondrian multidimensional
k-anonymity", ICDE 2006), here with every attribute split along its hierarchy, so that every
published value is a label of the configured hierarchy and the output reads like a global
recoding's, only finer where the data allows (ARX's local recoding also keeps to its
hierarchies).

Top-down: all records start in one partition with every quasi-identifier at its top level.
A partition is split by specializing one quasi-identifier one level down its hierarchy: the
records are grouped by their label one level lower, and every group that satisfies the
criteria (>= k records, l-diversity, t-closeness) becomes a partition of its own; the groups
that do not are pooled in a remainder that keeps the coarser label (merged with the smallest
good group if the pool alone fails). Of the quasi-identifiers, the split taken is the one that
lowers the certainty penalty (NCP, ``metrics.label_loss``) the most per partition it makes:
Mondrian's greedy choice, scored on the measure the release is judged by. A partition that
cannot be split further is a class.

Each partition satisfies the criteria when it is made, so no record needs to be suppressed;
``run.py`` still checks the published classes afresh before anything is written.
"""

from __future__ import annotations

__all__ = ["LocalOutcome", "partition", "whole_ok"]

from dataclasses import dataclass

import numpy as np

from brygga.privacy.anonymize.criteria import Pairs
from brygga.privacy.anonymize.engine import Problem


@dataclass
class LocalOutcome:
    levels: np.ndarray  # (records, quasi-identifiers): the level published for each cell
    partitions: int  # classes made by the partitioning


@dataclass
class _Split:
    parts: list[np.ndarray]  # groups one level finer, each satisfying the criteria
    rest: np.ndarray | None  # records keeping the coarser label
    gain: float  # certainty penalty taken off, summed over the moved records


def _ok(problem: Problem, idx: np.ndarray, group: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Which groups (ids 0..len(sizes)-1 of the records ``idx``) satisfy every criterion."""
    ok = sizes >= problem.k
    for s in problem.sensitive:
        if not ok.any():
            break
        key = group.astype(np.int64) * s.n_values + s.codes[idx]
        pair, counts = np.unique(key, return_counts=True)
        ok &= s.monotone_ok(
            Pairs(pair // s.n_values, pair % s.n_values, counts, sizes), without_suppression=True
        )
    return ok


def whole_ok(problem: Problem, idx: np.ndarray) -> bool:
    """Whether the records ``idx`` as one class satisfy every criterion."""
    return bool(_ok(problem, idx, np.zeros(len(idx), np.int64), np.array([len(idx)]))[0])


def _split(
    problem: Problem, idx: np.ndarray, q: int, level: int, loss: list[np.ndarray]
) -> _Split | None:
    """Specialize quasi-identifier ``q`` of the partition ``idx`` from ``level`` one level down."""
    h = problem.hierarchies[q]
    values = problem.records[q][idx]
    codes = h.codes[level - 1][values]
    sizes = np.bincount(codes, minlength=h.cardinality(level - 1))
    present = np.flatnonzero(sizes)
    if len(present) < 2:
        return None
    dense = np.zeros(len(sizes), dtype=np.int64)
    dense[present] = np.arange(len(present))
    group = dense[codes]
    sizes = sizes[present]
    ok = _ok(problem, idx, group, sizes)
    if not ok.any():
        return None
    rest = ~ok[group]
    if rest.any() and not whole_ok(problem, idx[rest]):
        # The pool fails on its own: it takes the smallest good group, which then keeps the
        # coarser label too.
        good = np.flatnonzero(ok)
        ok[good[np.argmin(sizes[good])]] = False
        rest = ~ok[group]
        if not ok.any() or not whole_ok(problem, idx[rest]):
            return None
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(sizes) + 1))
    parts = [idx[order[bounds[g] : bounds[g + 1]]] for g in np.flatnonzero(ok)]
    parent = loss[level][h.codes[level][values[0]]]
    gain = float((sizes[ok] * (parent - loss[level - 1][present[ok]])).sum())
    return _Split(parts, idx[rest] if rest.any() else None, gain)


def _lowest_common(problem: Problem, idx: np.ndarray, q: int, level: int) -> int:
    """The lowest level <= ``level`` at which every record of ``idx`` has the same label."""
    h = problem.hierarchies[q]
    values = problem.records[q][idx]
    for lv in range(level):
        c = h.codes[lv][values]
        if (c == c[0]).all():
            return lv
    return level


def partition(problem: Problem, loss: list[list[np.ndarray]]) -> LocalOutcome:
    """Partition the records top-down; ``loss[q][level][label]`` is a label's NCP."""
    m = len(problem.hierarchies)
    levels = np.zeros((problem.n, m), dtype=np.int8)
    top = [h.height - 1 for h in problem.hierarchies]
    # (records, level per quasi-identifier, whether it may still be specialized)
    stack: list[tuple[np.ndarray, list[int], list[bool]]] = [
        (np.arange(problem.n), top, [True] * m)
    ]
    classes = 0
    while stack:
        idx, lv, open_ = stack.pop()
        # A label every record shares costs nothing to publish finer.
        lv = [_lowest_common(problem, idx, q, lv[q]) if lv[q] else 0 for q in range(m)]
        best: tuple[float, int, _Split] | None = None
        if len(idx) >= 2 * problem.k:  # smaller partitions cannot make two classes
            for q in range(m):
                if lv[q] == 0 or not open_[q]:
                    continue
                found = _split(problem, idx, q, lv[q], loss[q])
                if found is None:
                    open_[q] = False  # no subset of these records splits on q either
                    continue
                score = found.gain / (len(found.parts) + (found.rest is not None))
                if best is None or score > best[0]:
                    best = (score, q, found)
        if best is None:
            levels[idx] = lv
            classes += 1
            continue
        _, q, split = best
        for part in split.parts:
            child = list(lv)
            child[q] -= 1
            stack.append((part, child, list(open_)))
        if split.rest is not None:
            closed = list(open_)
            closed[q] = False  # its groups were too small on q; smaller subsets are too
            stack.append((split.rest, lv, closed))
    return LocalOutcome(levels=levels, partitions=classes)
