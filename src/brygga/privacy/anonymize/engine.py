"""Frequency sets and the evaluation of one lattice node.

A *node* is a tuple of generalization levels, one per quasi-identifier. A *frequency set* at a
node is the table's distinct rows (quasi-identifier codes at the node's levels, sensitive values)
with their record counts. A node's frequency set can be computed from any finer node's by mapping
each column's codes one level map up and re-grouping: the roll-up that ARX uses, so that most nodes
are evaluated from a few hundred rows rather than from every record.

Grouping is vectorized: columns are combined into one int64 key (mixed radix, compressed to dense
ids whenever it would overflow) and dense ids come from a bincount when the key space is small or
from np.unique otherwise.
"""

from __future__ import annotations

__all__ = [
    "Evaluation",
    "FreqSet",
    "Node",
    "Problem",
    "SensitiveModel",
    "combine",
    "dense_ids",
    "evaluate",
]

from dataclasses import dataclass

import numpy as np

from brygga.privacy.anonymize.criteria import (
    EPS,
    Pairs,
    distinct_l,
    emd_equal,
    emd_hierarchical,
    emd_ordered,
    entropy_l,
)
from brygga.privacy.anonymize.hierarchy import Hierarchy

Node = tuple[int, ...]


def _small(space: int, rows: int) -> bool:
    return space <= 4 * rows + 4096


def dense_ids(key: np.ndarray, space: int) -> tuple[np.ndarray, int]:
    """Map keys in [0, space) to dense ids 0..m-1 (same key, same id)."""
    if _small(space, len(key)):  # a lookup table, no sorting
        present = np.zeros(space, dtype=bool)
        present[key] = True
        remap = np.cumsum(present, dtype=np.int64) - 1
        return remap[key], int(remap[-1]) + 1 if space else 0
    uniq, inverse = np.unique(key, return_inverse=True)
    return inverse.astype(np.int64, copy=False), len(uniq)


def combine(columns: list[np.ndarray], cards: list[int]) -> tuple[np.ndarray, int]:
    """Dense group ids for the rows' combination of column codes.

    The key grows column by column (mixed radix) and is compressed to dense ids whenever the
    next column would make the key space larger than a few times the rows, so every
    compression is a table lookup and nothing is ever sorted.
    """
    rows = len(columns[0])
    key = columns[0].astype(np.int64)
    space = cards[0]
    for col, card in zip(columns[1:], cards[1:], strict=True):
        if card == 1:
            continue
        if not _small(space * card, rows):
            key, space = dense_ids(key, space)
        key *= card
        key += col
        space *= card
    return dense_ids(key, space)


@dataclass
class SensitiveModel:
    column: str
    codes: np.ndarray  # per record
    n_values: int
    l: int | None = None  # noqa: E741
    diversity: str = "distinct"
    t: float | None = None
    distance: str = "equal"
    rank: np.ndarray | None = None  # ordered distance: position of each value
    tree: list[np.ndarray] | None = None  # hierarchical distance: codes per level
    q: np.ndarray | None = None  # the whole table's distribution

    def __post_init__(self) -> None:
        counts = np.bincount(self.codes, minlength=self.n_values)
        self.q = counts / counts.sum()

    def monotone_ok(self, pairs: Pairs, without_suppression: bool) -> np.ndarray:
        """Classes passing the criteria that are monotone under generalization.

        Distinct l-diversity always is. Entropy l-diversity and t-closeness are only when no
        record may be suppressed (a merged class can pass while one of its parts fails).
        """
        ok = np.ones(pairs.n_classes, dtype=bool)
        if self.l is not None and self.diversity == "distinct":
            ok &= distinct_l(pairs) >= self.l
        if without_suppression:
            ok &= self.other_ok(pairs)
        return ok

    def other_ok(self, pairs: Pairs) -> np.ndarray:
        ok = np.ones(pairs.n_classes, dtype=bool)
        if self.l is not None and self.diversity == "entropy":
            ok &= entropy_l(pairs) >= self.l - EPS
        if self.t is not None:
            ok &= self.emd(pairs) <= self.t + EPS
        return ok

    def emd(self, pairs: Pairs) -> np.ndarray:
        assert self.q is not None
        if self.distance == "ordered":
            assert self.rank is not None
            return emd_ordered(pairs, self.q, self.rank)
        if self.distance == "hierarchical":
            assert self.tree is not None
            return emd_hierarchical(pairs, self.q, self.tree)
        return emd_equal(pairs, self.q)

    @property
    def has_nonmonotone(self) -> bool:
        return self.t is not None or (self.l is not None and self.diversity == "entropy")


@dataclass
class FreqSet:
    node: Node
    qi: list[np.ndarray]  # int32 codes per quasi-identifier at the node's levels
    sens: np.ndarray  # int64 combined sensitive code (0 when there is none)
    counts: np.ndarray  # int64 records per row

    @property
    def size(self) -> int:
        return len(self.counts)


@dataclass
class Problem:
    n: int
    names: list[str]
    hierarchies: list[Hierarchy]
    records: list[np.ndarray]  # level-0 code per record per quasi-identifier
    sensitive: list[SensitiveModel]
    k: int
    max_suppressed: int

    def __post_init__(self) -> None:
        self.heights: Node = tuple(h.height for h in self.hierarchies)
        # One combined code for all sensitive attributes; ``split[i][s]`` recovers attribute i.
        if self.sensitive:
            self.sens_records, self.n_sens = combine(
                [s.codes for s in self.sensitive], [s.n_values for s in self.sensitive]
            )
            rep = np.zeros(self.n_sens, dtype=np.int64)
            rep[self.sens_records] = np.arange(self.n)
            self.split = [s.codes[rep].astype(np.int64) for s in self.sensitive]
        else:
            self.sens_records, self.n_sens = np.zeros(self.n, dtype=np.int64), 1
            self.split = []
        self.nonmonotone = self.max_suppressed > 0 and any(
            s.has_nonmonotone for s in self.sensitive
        )

    def cards(self, node: Node) -> list[int]:
        return [h.cardinality(level) for h, level in zip(self.hierarchies, node, strict=True)]

    def bottom(self) -> tuple[FreqSet, np.ndarray]:
        """The frequency set of the original data, and each record's row in it."""
        ids, m = combine(
            [*self.records, self.sens_records], [*self.cards(self.bottom_node), self.n_sens]
        )
        return _group(
            self.bottom_node, ids, m, self.records, self.sens_records, np.ones(self.n, np.int64)
        ), ids

    @property
    def bottom_node(self) -> Node:
        return tuple(0 for _ in self.hierarchies)


def _group(
    node: Node, ids: np.ndarray, m: int, qi: list[np.ndarray], sens: np.ndarray, counts: np.ndarray
) -> FreqSet:
    """The rows grouped by ``ids`` (dense, 0..m-1), counts summed."""
    rep = np.zeros(m, dtype=np.int64)
    rep[ids] = np.arange(len(ids))
    summed = np.bincount(ids, weights=counts, minlength=m).astype(np.int64)
    return FreqSet(node, [c[rep] for c in qi], sens[rep], summed)


@dataclass
class Evaluation:
    node: Node
    freq: FreqSet  # the node's frequency set
    source_class: np.ndarray  # class id of each row of the source frequency set
    sizes: np.ndarray  # records per class
    ok: np.ndarray  # classes kept (pass every criterion checked)
    monotone_ok: bool  # within the suppression limit on the monotone criteria
    anonymous: bool  # within the suppression limit on all criteria
    suppressed: int  # records in classes failing the criteria checked

    @property
    def n_classes(self) -> int:
        return len(self.sizes)


def evaluate(problem: Problem, src: FreqSet, node: Node) -> Evaluation:
    """Roll ``src`` (at a node <= ``node``) up to ``node`` and check the criteria."""
    codes = []
    for q, h in enumerate(problem.hierarchies):
        a, b = src.node[q], node[q]
        codes.append(src.qi[q] if a == b else h.up_map(a, b)[src.qi[q]])
    cls, c = combine(codes, problem.cards(node))
    if problem.sensitive:
        pair, m = dense_ids(cls * problem.n_sens + src.sens, c * problem.n_sens)
    else:
        pair, m = cls, c
    freq = _group(node, pair, m, codes, src.sens, src.counts)
    row_class = _group_class(pair, m, cls)
    sizes = np.bincount(row_class, weights=freq.counts, minlength=c).astype(np.int64)

    ok = sizes >= problem.k
    all_pairs = [_pairs(problem, freq, row_class, sizes, i) for i in range(len(problem.sensitive))]
    for s, pairs in zip(problem.sensitive, all_pairs, strict=True):
        ok &= s.monotone_ok(pairs, without_suppression=problem.max_suppressed == 0)
    suppressed = int(sizes[~ok].sum())
    monotone_ok = suppressed <= problem.max_suppressed
    if monotone_ok and problem.nonmonotone:
        for s, pairs in zip(problem.sensitive, all_pairs, strict=True):
            ok &= s.other_ok(pairs)
        suppressed = int(sizes[~ok].sum())
    anonymous = monotone_ok and suppressed <= problem.max_suppressed
    return Evaluation(node, freq, cls, sizes, ok, monotone_ok, anonymous, suppressed)


def _group_class(pair: np.ndarray, m: int, cls: np.ndarray) -> np.ndarray:
    """Class id of each grouped row (rows of one group share the class)."""
    out = np.zeros(m, dtype=np.int64)
    out[pair] = cls
    return out


def _pairs(
    problem: Problem, freq: FreqSet, row_class: np.ndarray, sizes: np.ndarray, i: int
) -> Pairs:
    """Histogram entries (class, value, count) of sensitive attribute ``i``."""
    values = problem.split[i][freq.sens]
    if len(problem.sensitive) == 1:  # rows are already one per (class, value)
        return Pairs(row_class, values, freq.counts, sizes)
    n_values = problem.sensitive[i].n_values
    ids, m = dense_ids(row_class * n_values + values, len(sizes) * n_values)
    rep = np.zeros(m, dtype=np.int64)
    rep[ids] = np.arange(len(ids))
    counts = np.bincount(ids, weights=freq.counts, minlength=m).astype(np.int64)
    return Pairs(row_class[rep], values[rep], counts, sizes)
