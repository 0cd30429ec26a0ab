"""Optimal search over the generalization lattice, with pruning.

The lattice holds every combination of levels; node A <= B when each level of A is <= B's.
Two properties make most nodes unnecessary to evaluate:

1. *Monotonicity* (Flash / OLA's predictive tagging). k-anonymity and distinct l-diversity with
   suppression are monotone: generalizing only merges classes, so if a node is within the
   suppression limit, so is every node above it, and if it is not, no node below it is. Entropy
   l-diversity and t-closeness are monotone only without suppression; with suppression they are
   checked at each candidate (the monotone part still prunes). Tags are written into an array
   shaped like the lattice, so tagging an up-set or down-set is one numpy slice assignment.
2. *Bounds* on the metric. Nodes are visited in order of a data-independent lower bound (the
   generalization intensity for precision) and the search stops when it reaches the best value
   found; every evaluated node also bounds all nodes above it, which are pruned once that bound
   reaches the best value.

Unknown nodes are resolved as in Flash: a path is walked upward through unknown nodes and
binary-searched for the boundary, so that a failure found high up tags a large down-set.
Frequency sets of evaluated nodes are cached and each node is rolled up from the smallest cached
frequency set below it.
"""

from __future__ import annotations

__all__ = ["Outcome", "Search", "evaluate_node"]

import math
from dataclasses import dataclass

import numpy as np

from brygga.privacy.anonymize.engine import Evaluation, FreqSet, Node, Problem, evaluate
from brygga.privacy.anonymize.metrics import Metrics, measure, node_bounds, successor_bound

UNKNOWN, PASSES, FAILS = 0, 1, 2
_CACHE_ROWS = 4_000_000  # frequency-set rows kept for roll-ups, besides the bottom's


@dataclass
class Outcome:
    node: Node | None
    metrics: Metrics | None
    lattice_size: int
    evaluated: int
    checked_for_metric: int


@dataclass
class _Summary:
    anonymous: bool
    bound: float
    metrics: Metrics | None


class _Cache:
    """Frequency sets of evaluated nodes, for roll-ups; the oldest go first when over budget."""

    def __init__(self, bottom: FreqSet) -> None:
        self.nodes = np.zeros((64, len(bottom.node)), dtype=np.int16)
        self.sizes = np.zeros(64, dtype=np.float64)
        self.sets: list[FreqSet | None] = []
        self.rows = 0
        self.oldest = 1
        self.add(bottom)

    def add(self, fs: FreqSet) -> None:
        i = len(self.sets)
        if i == len(self.sizes):
            self.nodes = np.concatenate([self.nodes, np.zeros_like(self.nodes)])
            self.sizes = np.concatenate([self.sizes, np.zeros_like(self.sizes)])
        self.nodes[i] = fs.node
        self.sizes[i] = fs.size
        self.sets.append(fs)
        if i:  # the bottom (index 0) is never evicted
            self.rows += fs.size
        while self.rows > _CACHE_ROWS and self.oldest < i:
            old = self.sets[self.oldest]
            if old is not None:
                self.rows -= old.size
                self.sets[self.oldest] = None
                self.sizes[self.oldest] = np.inf
            self.oldest += 1

    def best_source(self, node: Node) -> FreqSet:
        """The smallest cached frequency set at a node <= ``node``."""
        m = len(self.sets)
        below = (self.nodes[:m] <= np.asarray(node, dtype=np.int16)).all(axis=1)
        i = int(np.argmin(np.where(below, self.sizes[:m], np.inf)))
        fs = self.sets[i]
        assert fs is not None and below[i]  # the bottom is always there
        return fs


class Search:
    def __init__(self, problem: Problem, bottom: FreqSet, metric: str) -> None:
        self.problem = problem
        self.metric = metric
        self.shape = problem.heights
        self.status = np.zeros(self.shape, dtype=np.int8)
        self.pruned = np.zeros(self.shape, dtype=bool)
        self.lower = node_bounds(metric, self.shape)
        self.cache = _Cache(bottom)
        self.summaries: dict[Node, _Summary] = {}
        self.best = math.inf
        self.best_node: Node | None = None
        self.checked = 0

    # --- tagging ---------------------------------------------------------------------------

    def _upset(self, node: Node) -> tuple[slice, ...]:
        return tuple(slice(level, None) for level in node)

    def _downset(self, node: Node) -> tuple[slice, ...]:
        return tuple(slice(0, level + 1) for level in node)

    def _evaluate(self, node: Node) -> _Summary:
        if node in self.summaries:
            return self.summaries[node]
        ev = evaluate(self.problem, self.cache.best_source(node), node)
        self.cache.add(ev.freq)
        if ev.monotone_ok:
            self.status[self._upset(node)] = PASSES
        else:
            self.status[self._downset(node)] = FAILS
        summary = _Summary(ev.anonymous, successor_bound(self.metric, self.problem, ev), None)
        if ev.anonymous:
            summary.metrics = measure(self.problem, ev)
            self._offer(node, summary.metrics.value(self.metric))
        self.summaries[node] = summary
        if summary.bound >= self.best:
            self.pruned[self._upset(node)] = True
        return summary

    def _offer(self, node: Node, value: float) -> None:
        if value < self.best:
            self.best, self.best_node = value, node
            for other, s in self.summaries.items():
                if s.bound >= value:
                    self.pruned[self._upset(other)] = True

    # --- Flash-style resolution of an unknown node ----------------------------------------

    def _path_up(self, node: Node) -> list[Node]:
        """A chain upward from ``node`` through unknown nodes, cheapest step first."""
        path = [node]
        current = node
        while True:
            steps = []
            for q, level in enumerate(current):
                if level + 1 < self.shape[q]:
                    nxt = (*current[:q], level + 1, *current[q + 1 :])
                    if self.status[nxt] == UNKNOWN:
                        steps.append((self.lower[nxt], q, nxt))
            if not steps:
                return path
            current = min(steps)[2]
            path.append(current)

    def _resolve(self, node: Node) -> None:
        path = self._path_up(node)
        lo, hi = 0, len(path) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.status[path[mid]] == UNKNOWN:
                self._evaluate(path[mid])
            if self.status[path[mid]] == PASSES:
                hi = mid - 1
            else:
                lo = mid + 1
        if lo > 0:
            self._climb(path[lo - 1])

    def _climb(self, node: Node) -> None:
        """From a failing node, step up through failing successors to a maximal failing node.

        A failing node's down-set is tagged failing, so a higher failure tags more; on Adult a
        few dozen maximal failing nodes cover every failing node below the optimum.
        """
        current = node
        while True:
            for q in self._step_order(current):
                nxt = (*current[:q], current[q] + 1, *current[q + 1 :])
                if self.status[nxt] == UNKNOWN:
                    self._evaluate(nxt)
                if self.status[nxt] == FAILS:
                    current = nxt
                    break
            else:
                return

    def _step_order(self, node: Node) -> list[int]:
        steps = []
        for q, level in enumerate(node):
            if level + 1 < self.shape[q]:
                nxt = (*node[:q], level + 1, *node[q + 1 :])
                steps.append((self.lower[nxt], q))
        return [q for _, q in sorted(steps)]

    # --- the search ------------------------------------------------------------------------

    def run(self) -> Outcome:
        top = tuple(h - 1 for h in self.shape)
        self._evaluate(top)  # often anonymous: an early bound for pruning
        flat_lower = self.lower.ravel()
        intensity = np.indices(self.shape).reshape(len(self.shape), -1).sum(axis=0)
        order = np.lexsort((intensity, flat_lower))
        status, pruned = self.status.ravel(), self.pruned.ravel()  # views: see later tags
        for flat in order:
            if flat_lower[flat] >= self.best:
                break
            if status[flat] == FAILS or pruned[flat]:
                continue
            node = tuple(int(x) for x in np.unravel_index(flat, self.shape))
            if status[flat] == UNKNOWN:
                self._resolve(node)
                if status[flat] == FAILS or pruned[flat]:
                    continue
            if node not in self.summaries:
                self._evaluate(node)
            self.checked += 1
        return Outcome(
            node=self.best_node,
            metrics=self.summaries[self.best_node].metrics if self.best_node else None,
            lattice_size=int(np.prod(self.shape)),
            evaluated=len(self.summaries),
            checked_for_metric=self.checked,
        )


def evaluate_node(problem: Problem, bottom: FreqSet, node: Node) -> Evaluation:
    """Evaluate one node straight from the bottom (for the final output)."""
    return evaluate(problem, bottom, node)
