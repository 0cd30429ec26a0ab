"""Disclosure control for counts: the one place every count passes before it leaves.

The minimal policy until the privacy work lands (OpenSAFELY style): a count of 1-7 is
suppressed (value null, shown "<8"), any other count is rounded to the nearest 5, and zero stays
zero. ``RawPolicy`` shows exact counts and is only for regions whose manifest says
``source: synthetic``; outputs made with it say so (``raw: true``).

A policy turns a count into a disclosed value: ``policy.apply(n) -> {"value": .., "display": ..}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from brygga.errors import PermissionDenied


class DisclosurePolicy(Protocol):
    raw: bool

    @property
    def description(self) -> str: ...

    def apply(self, count: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MinimalPolicy:
    """Counts 1..threshold-1 suppressed; others rounded to the nearest ``rounding``."""

    threshold: int = 8
    rounding: int = 5
    raw: bool = False

    @property
    def description(self) -> str:
        return f"counts 1-{self.threshold - 1} suppressed, others rounded to the nearest {self.rounding}"

    def apply(self, count: int) -> dict[str, Any]:
        if count < 0:
            raise ValueError("a count cannot be negative")
        if count == 0:
            return {"value": 0, "display": "0"}
        if count < self.threshold:
            return {"value": None, "display": f"<{self.threshold}"}
        # Integer arithmetic, halves rounded up (Python's round() would round half to even).
        value = self.rounding * ((count + self.rounding // 2) // self.rounding)
        return {"value": value, "display": str(value)}


@dataclass(frozen=True)
class RawPolicy:
    """Exact counts: synthetic regions only."""

    raw: bool = True

    @property
    def description(self) -> str:
        return "RAW exact counts (synthetic region)"

    def apply(self, count: int) -> dict[str, Any]:
        return {"value": count, "display": str(count)}


def policy_for(*, synthetic: bool, raw: bool = False) -> DisclosurePolicy:
    """The policy for a region; ``raw`` is refused unless the region is synthetic."""
    if not raw:
        return MinimalPolicy()
    if not synthetic:
        raise PermissionDenied(
            "exact (raw) counts are only allowed for synthetic regions; this region's manifest "
            "does not say source: synthetic"
        )
    return RawPolicy()
