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
    idx: np.ndarray  # the partition's records
    group: np.ndarray  # each record's group one level finer
    ok: np.ndarray  # groups that become partitions (each satisfies the criteria)
    rest: np.ndarray  # records keeping the coarser label (mask over idx)
    gain: float  # certainty penalty taken off, summed over the moved records

    @property
    def n_parts(self) -> int:
        return int(self.ok.sum()) + bool(self.rest.any())

    def parts(self) -> list[np.ndarray]:
        """The good groups' records (built only for the split taken)."""
        order = np.argsort(self.group, kind="stable")
        bounds = np.searchsorted(self.group[order], np.arange(len(self.ok) + 1))
        return [self.idx[order[bounds[g] : bounds[g + 1]]] for g in np.flatnonzero(self.ok)]

    def remainder(self) -> np.ndarray | None:
        return self.idx[self.rest] if self.rest.any() else None


def _ok(problem: Problem, idx: np.ndarray, group: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Which groups (ids 0..len(sizes)-1 of the records ``idx``) satisfy every criterion."""
    ok = sizes >= problem.k
    for s in problem.sensitive:
        if not ok.any():
            break
        key = group.astype(np.int64) * s.n_values + s.codes[idx]
        space = len(sizes) * s.n_values
        if space <= 4 * len(idx) + 4096:  # a small key space: a bincount, no sorting
            counts = np.bincount(key, minlength=space)
            pair = np.flatnonzero(counts)
            counts = counts[pair]
        else:
            pair, counts = np.unique(key, return_counts=True)
        ok &= s.monotone_ok(
            Pairs(pair // s.n_values, pair % s.n_values, counts, sizes), without_suppression=True
        )
    return ok


def whole_ok(problem: Problem, idx: np.ndarray) -> bool:
    """Whether the records ``idx`` as one class satisfy every criterion."""
    if not problem.sensitive:
        return len(idx) >= problem.k
    return bool(_ok(problem, idx, np.zeros(len(idx), np.int64), np.array([len(idx)]))[0])


def _split(
    problem: Problem, idx: np.ndarray, q: int, level: int, loss: list[np.ndarray]
) -> tuple[int, _Split | None]:
    """Specialize quasi-identifier ``q`` of the partition ``idx`` from ``level`` one level down.

    Returns the level the partition can have for free (every record shares that label) and
    the split below it, if one satisfies the criteria."""
    h = problem.hierarchies[q]
    values = problem.records[q][idx]
    while True:
        codes = h.codes[level - 1][values]
        sizes = np.bincount(codes, minlength=h.cardinality(level - 1))
        present = np.flatnonzero(sizes)
        if len(present) >= 2:
            break
        level -= 1  # every record shares the finer label: publishing it costs nothing
        if level == 0:
            return level, None
    dense = np.zeros(len(sizes), dtype=np.int64)
    dense[present] = np.arange(len(present))
    group = dense[codes]
    sizes = sizes[present]
    ok = _ok(problem, idx, group, sizes)
    if not ok.any():
        return level, None
    rest = ~ok[group]
    if rest.any() and not whole_ok(problem, idx[rest]):
        # The pool fails on its own: it takes the smallest good group, which then keeps the
        # coarser label too.
        good = np.flatnonzero(ok)
        ok[good[np.argmin(sizes[good])]] = False
        rest = ~ok[group]
        if not ok.any() or not whole_ok(problem, idx[rest]):
            return level, None
    parent = loss[level][h.codes[level][values[0]]]
    gain = float((sizes[ok] * (parent - loss[level - 1][present[ok]])).sum())
    return level, _Split(idx, group, ok, rest, gain)


def _lowest_common(problem: Problem, levels: np.ndarray, cls: np.ndarray) -> None:
    """Lower each class's levels to the lowest at which all its records share the label.

    For all classes at once: a label shared at level l is shared at every level above it, so
    the lowest level whose per-class minimum and maximum code agree is the one.
    """
    order = np.argsort(cls, kind="stable")
    sorted_cls = cls[order]
    starts = np.flatnonzero(np.r_[True, sorted_cls[1:] != sorted_cls[:-1]])
    counts = np.diff(np.r_[starts, len(cls)])
    for q, h in enumerate(problem.hierarchies):
        values = problem.records[q][order]
        current = levels[order[starts], q].astype(np.int64)
        best = current.copy()
        for level in range(h.height - 2, -1, -1):
            codes = h.codes[level][values]
            same = np.minimum.reduceat(codes, starts) == np.maximum.reduceat(codes, starts)
            best = np.where(same & (level < current), level, best)
        levels[order, q] = np.repeat(best, counts)


def partition(problem: Problem, loss: list[list[np.ndarray]]) -> LocalOutcome:
    """Partition the records top-down; ``loss[q][level][label]`` is a label's NCP."""
    m = len(problem.hierarchies)
    levels = np.zeros((problem.n, m), dtype=np.int8)
    top = [h.height - 1 for h in problem.hierarchies]
    # (records, level per quasi-identifier, whether it may still be specialized)
    stack: list[tuple[np.ndarray, list[int], list[bool]]] = [
        (np.arange(problem.n), list(top), [True] * m)
    ]
    cls = np.zeros(problem.n, dtype=np.int64)
    classes = 0
    while stack:
        idx, lv, open_ = stack.pop()
        best: tuple[float, int, _Split] | None = None
        if len(idx) >= 2 * problem.k:  # smaller partitions cannot make two classes
            for q in range(m):
                if lv[q] == 0 or not open_[q]:
                    continue
                lv[q], found = _split(problem, idx, q, lv[q], loss[q])
                if found is None:
                    open_[q] = False  # no subset of these records splits on q either
                    continue
                score = found.gain / found.n_parts
                if best is None or score > best[0]:
                    best = (score, q, found)
        if best is None:
            levels[idx] = lv
            cls[idx] = classes
            classes += 1
            continue
        _, q, split = best
        for part in split.parts():
            child = list(lv)
            child[q] -= 1
            stack.append((part, child, list(open_)))
        rest = split.remainder()
        if rest is not None:
            closed = list(open_)
            closed[q] = False  # its groups were too small on q; smaller subsets are too
            stack.append((rest, lv, closed))
    _lowest_common(problem, levels, cls)
    return LocalOutcome(levels=levels, partitions=classes)
