"""The cohort engine interface: what every engine answers, and nothing about how it is built.

Three engines implement it: DuckDB (``bitmaps.BitmapEngine``), Spark (``engines.IbisEngine``)
and the pure-Python reference evaluator (``reference.ReferenceEngine``, the specification the
others are tested against). ``engines.py`` builds and shares them (``engine_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from brygga.cohort.criteria import Criteria
from brygga.privacy.cellkey import FeasibilityKeys

__all__ = ["Engine", "Evaluation", "FeasibilityKeys"]


@dataclass(frozen=True)
class Evaluation:
    """Raw (undisclosed) results: never print these; feasibility applies the policy."""

    index_date: date
    steps: list[tuple[str, int]]  # (description, people remaining after the step)
    cells: dict[tuple[str, int, str | None], int]  # (sex, age band start, municipality) -> n

    @property
    def count(self) -> int:
        return self.steps[-1][1]


class Engine(Protocol):
    """Every method a caller may use; no caller asks an engine what it has."""

    name: str

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        """People remaining after each attrition step, and the eligible by cell."""
        ...

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        """The eligible people's pseudonymous ids, sorted (never to be printed)."""
        ...

    def keys(self, criteria: Criteria, index_date: date) -> FeasibilityKeys:
        """Record-key sums per attrition step and cell, for the cell key method (an engine
        that cannot sum them where the data is raises ``InputError``)."""
        ...
