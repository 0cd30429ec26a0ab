"""Counts of people computed in Python, disclosed under the policy with their cell keys.

Feasibility sums its cell keys where the data is (``cohort`` engines' ``keys``). The prevention
outputs (``brygga risk``, ``program``, ``equity``, ``evaluate``) count people with numpy over one
population: everyone alive and observed at an index date, in ``person_id`` order
(``prevention.inputs.RiskInputs``). A ``PeopleCounter`` holds that population's key units when
the policy is the Cell Key Method and discloses every count with the key of exactly the people
counted. So the same people get the same answer in every output and every command (the scored
population of ``brygga risk`` is the overall cell of ``brygga equity``), and no count falls
back to rounding. Under the other policies the units are not needed and not read.

A ``PeopleTable`` collects the counts of one output together with the additive lines between
them (a group is the sum of its categories, a region the sum of its groups) and discloses them
all at once through ``suppression.protect``, so that no suppressed count can be worked out by
subtraction from the totals around it.
"""

from __future__ import annotations

__all__ = ["ESTIMATE_SALT", "PeopleCounter", "PeopleTable", "people_counter", "population_units"]

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brygga.privacy.cellkey import SCALE, cell_key, region_units
from brygga.privacy.disclosure import DisclosurePolicy, require_record_keys
from brygga.privacy.suppression import Line, protect

# An estimated number of people (not a count of a set) is perturbed with the key of the people
# it is about plus this constant, so that it draws its own perturbation rather than repeating
# theirs (which would let a reader subtract the two exactly). The 32-bit golden ratio.
ESTIMATE_SALT = 0x9E3779B9
_HALF = 1 << 16


@dataclass(frozen=True)
class PeopleCounter:
    """Discloses counts of sets of people (boolean masks over one population)."""

    policy: DisclosurePolicy
    units: np.ndarray | None = None  # key units per person; needed by the cell key method

    def __post_init__(self) -> None:
        if self.policy.needs_record_keys and self.units is None:
            raise ValueError("the cell key method needs the record keys of the population")

    @property
    def raw(self) -> bool:
        return self.policy.raw

    @property
    def description(self) -> str:
        return self.policy.description

    def count(self, rows: np.ndarray) -> dict[str, Any]:
        """The disclosed number of people in ``rows`` (a boolean mask)."""
        return self.disclose(int(np.count_nonzero(rows)), self.key_sum(rows))

    def estimate(self, value: int, rows: np.ndarray) -> dict[str, Any]:
        """An estimated number of people (e.g. improvements a program caused) about the people
        in ``rows``: consistent for the same people, with its own perturbation."""
        return self.disclose(value, self.key_sum(rows) + ESTIMATE_SALT)

    def disclose(self, count: int, key_sum: int) -> dict[str, Any]:
        """A count whose people's key units add up to ``key_sum`` (see ``tally``)."""
        return self.policy.apply(count, None if self.units is None else cell_key(key_sum))

    def key_sum(self, rows: np.ndarray) -> int:
        if self.units is None:
            return 0
        return int(self.units[rows].sum()) % SCALE  # int64: exact for any population

    def tally(self, bins: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """People and key-unit sums (modulo 2**32) per bin; ``bins``: a bin per person.

        Sums of disjoint bins add up to the sum of their union, so a caller can disclose a
        row or a total of a table with ``disclose(counts[..].sum(), sums[..].sum())``.
        """
        counts = np.bincount(bins, minlength=size)
        if self.units is None:
            return counts, np.zeros(size, np.int64)
        # bincount sums in float64; 16-bit halves keep every partial sum exact.
        low = np.bincount(bins, weights=self.units % _HALF, minlength=size).astype(np.int64)
        high = np.bincount(bins, weights=self.units // _HALF, minlength=size).astype(np.int64)
        return counts, ((high % _HALF) * _HALF + low) % SCALE

    def subset(self, rows: np.ndarray) -> PeopleCounter:
        """The counter of a sub-population (a mask or indices, in the order given)."""
        return PeopleCounter(self.policy, None if self.units is None else self.units[rows])


@dataclass
class PeopleTable:
    """Counts of people with the lines that tie them, disclosed together (secondary
    suppression). Cells are any hashable ids; add each cell once, then the lines."""

    counter: PeopleCounter
    counts: dict[Hashable, int] = field(default_factory=dict)
    key_sums: dict[Hashable, int] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    unpublished: set[Hashable] = field(default_factory=set)

    def add(self, cell: Hashable, rows: np.ndarray) -> Hashable:
        """The people in ``rows`` (a boolean mask) as ``cell``."""
        return self.add_count(cell, int(np.count_nonzero(rows)), self.counter.key_sum(rows))

    def add_count(self, cell: Hashable, count: int, key_sum: int) -> Hashable:
        """A cell whose count and key-unit sum are known (``PeopleCounter.tally``)."""
        if cell in self.counts:
            raise ValueError(f"cell {cell!r} added twice")
        self.counts[cell] = count
        self.key_sums[cell] = key_sum % SCALE
        return cell

    def add_hidden(self, cell: Hashable, rows: np.ndarray) -> Hashable:
        """People who are never shown but can be worked out as a difference of shown counts
        (e.g. those in a group without complete inputs); a small one is protected."""
        self.unpublished.add(cell)
        return self.add(cell, rows)

    def line(self, total: Hashable, members: Iterable[Hashable]) -> None:
        """``total`` is the sum of ``members`` (the caller's sets must partition it)."""
        members = tuple(members)
        if self.counts[total] != sum(self.counts[m] for m in members):
            raise ValueError(f"cell {total!r} is not the sum of its members")  # a bug
        self.lines.append(Line(total, members))

    def disclose(self, keep: Collection[Hashable] = ()) -> dict[Hashable, dict[str, Any]]:
        """Every published cell through the policy and secondary suppression; ``keep`` (the
        headline counts) suppressed only as a last resort."""
        keys = None
        if self.counter.units is not None:
            keys = {c: cell_key(s) for c, s in self.key_sums.items()}
        shown = protect(
            self.counter.policy, self.counts, self.lines, keys,
            unpublished=self.unpublished, keep=keep,
        )  # fmt: skip
        return {c: d for c, d in shown.items() if c not in self.unpublished}


def population_units(
    policy: DisclosurePolicy, region: Any, person_ids: Sequence[int] | np.ndarray
) -> np.ndarray | None:
    """The key units of a population when the policy needs them, else None (nothing read)."""
    if not policy.needs_record_keys:
        return None
    require_record_keys(policy, region)
    return region_units(region, person_ids)


def people_counter(
    policy: DisclosurePolicy, region: Any, person_ids: Sequence[int] | np.ndarray
) -> PeopleCounter:
    """A counter over ``person_ids`` of ``region``."""
    return PeopleCounter(policy, population_units(policy, region, person_ids))
