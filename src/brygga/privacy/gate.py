"""The release gate: the one way a table of counts leaves the platform (security property 2).

A ``CountTable`` collects the counts of one output: its cells (a count, and for the cell key
method the cell's key, or for a noisy policy its cached noisy value), the lines that tie them
(a total is the sum of its members), the cells that are never shown but could be worked out by
subtraction (``hidden``), and the headline cells to keep unless nothing else protects a small
one. ``release`` passes them all through the policy and secondary suppression
(``suppression.protect``) at once, so no suppressed count can be recovered from the counts
around it. Every output builds one: feasibility (``cohort.feasibility``), the recruitment
funnel (``studies.funnel``), the prevention tables (``privacy.people.PeopleTable``) and noisy
feasibility answers (with ``NoisyPolicy``). A single count is a table of one cell (``single``).

Which policy applies is decided once, by the platform (``platform.Brygga.policy``).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.suppression import Line, protect

__all__ = ["CountTable", "Line", "single"]


@dataclass
class CountTable:
    """One output's counts on their way out; add each cell once, then the lines."""

    policy: DisclosurePolicy
    counts: dict[Hashable, int] = field(default_factory=dict)
    keys: dict[Hashable, float] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    hidden_cells: set[Hashable] = field(default_factory=set)

    def add(self, cell: Hashable, count: int, key: float | None = None) -> Hashable:
        """A published cell; ``key``: its cell key (cell key method) or noisy value."""
        if cell in self.counts:
            raise ValueError(f"cell {cell!r} added twice")  # a bug in the caller
        self.counts[cell] = int(count)
        if key is not None:
            self.keys[cell] = key
        return cell

    def add_all(self, counts: Mapping[Hashable, int], keys: Mapping[Hashable, float]) -> None:
        for cell, count in counts.items():
            self.add(cell, count, keys.get(cell))

    def hide(self, cell: Hashable, count: int, key: float | None = None) -> Hashable:
        """A cell never shown that a reader could work out as a difference of shown cells
        (the people a rule removed; a group without complete inputs): a small one is
        protected like a suppressed cell."""
        self.hidden_cells.add(cell)
        return self.add(cell, count, key)

    def line(self, total: Hashable, members: Iterable[Hashable]) -> None:
        """``total`` is the sum of ``members`` (the caller's sets must partition it)."""
        members = tuple(members)
        if self.counts[total] != sum(self.counts[m] for m in members):
            raise ValueError(f"cell {total!r} is not the sum of its members")  # a bug
        self.lines.append(Line(total, members))

    def release(self, keep: Collection[Hashable] = ()) -> dict[Hashable, dict[str, Any]]:
        """Every published cell through the policy and secondary suppression; ``keep`` (the
        headline counts) suppressed only as a last resort. Hidden cells are left out."""
        shown = protect(
            self.policy, self.counts, self.lines, self.keys,
            unpublished=self.hidden_cells, keep=keep,
        )  # fmt: skip
        return {c: d for c, d in shown.items() if c not in self.hidden_cells}


def single(policy: DisclosurePolicy, count: int, key: float | None = None) -> dict[str, Any]:
    """One count on its own (no totals around it): a table of one cell."""
    table = CountTable(policy)
    table.add("count", count, key)
    return table.release()["count"]
