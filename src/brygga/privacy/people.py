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
all at once through the release gate (``gate.CountTable``), so that no suppressed count can be
worked out by subtraction from the totals around it.
"""

from __future__ import annotations

__all__ = ["ESTIMATE_SALT", "PeopleCounter", "PeopleTable", "people_counter", "population_units"]

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brygga.privacy.cellkey import SCALE, cell_key, region_units
from brygga.privacy.disclosure import DisclosurePolicy, require_record_keys
from brygga.privacy.gate import CountTable
from brygga.privacy.suppression import Line

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
    """Counts of people with the lines that tie them, disclosed together through the release
    gate (``gate.CountTable``). Cells are any hashable ids; add each cell once, then the lines."""

    counter: PeopleCounter
    key_sums: dict[Hashable, int] = field(default_factory=dict)
    table: CountTable = field(init=False)

    def __post_init__(self) -> None:
        self.table = CountTable(self.counter.policy)

    @property
    def counts(self) -> dict[Hashable, int]:
        return self.table.counts

    @property
    def lines(self) -> list[Line]:
        return self.table.lines

    def add(self, cell: Hashable, rows: np.ndarray) -> Hashable:
        """The people in ``rows`` (a boolean mask) as ``cell``."""
        return self.add_count(cell, int(np.count_nonzero(rows)), self.counter.key_sum(rows))

    def add_count(self, cell: Hashable, count: int, key_sum: int) -> Hashable:
        """A cell whose count and key-unit sum are known (``PeopleCounter.tally``)."""
        self.key_sums[cell] = key_sum % SCALE
        return self.table.add(cell, count, self._key(key_sum))

    def add_hidden(self, cell: Hashable, rows: np.ndarray) -> Hashable:
        """People who are never shown but can be worked out as a difference of shown counts
        (e.g. those in a group without complete inputs); a small one is protected."""
        key_sum = self.counter.key_sum(rows)
        self.key_sums[cell] = key_sum % SCALE
        return self.table.hide(cell, int(np.count_nonzero(rows)), self._key(key_sum))

    def add_hidden_count(self, cell: Hashable, count: int, key_sum: int) -> Hashable:
        """``add_hidden`` for a cell whose count and key-unit sum are known."""
        self.key_sums[cell] = key_sum % SCALE
        return self.table.hide(cell, count, self._key(key_sum))

    def line(self, total: Hashable, members: Iterable[Hashable]) -> None:
        """``total`` is the sum of ``members`` (the caller's sets must partition it)."""
        self.table.line(total, members)

    def disclose(self, keep: Collection[Hashable] = ()) -> dict[Hashable, dict[str, Any]]:
        """Every published cell through the gate; ``keep`` (the headline counts) suppressed
        only as a last resort."""
        return self.table.release(keep)

    def _key(self, key_sum: int) -> float | None:
        return None if self.counter.units is None else cell_key(key_sum % SCALE)


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
