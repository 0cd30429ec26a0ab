"""Disclosure control for counts: the one place every count passes before it leaves.

One policy per deployment, chosen by configuration (environment ``BRYGGA_DISCLOSURE_*``, see
``DisclosureSettings`` and docs/privacy.md):

* ``rounding`` (default, as OpenSAFELY): a count of 1 .. threshold-1 is suppressed (value null,
  shown ``<8``), any other count is rounded to the nearest ``rounding`` (halves up), zero stays 0.
* ``cell-key`` (the Cell Key Method, as Statistics Sweden since reference year 2025): every
  person has a random record key stored with the region (table ``person_key``); a cell's key is
  the sum of its people's keys modulo 1 and picks a perturbation from a p-table, so the same
  cell always gets the same noise whoever asks. Small results are suppressed as above.

``RawPolicy`` shows exact counts and is only for regions whose manifest says
``source: synthetic``; outputs made with it say so (``raw: true``).

A policy turns a count into a disclosed value: ``policy.apply(n) -> {"value": .., "display": ..}``
(``value`` is None when suppressed). ``policy.interval(disclosed)`` says what a reader learns
about the true count from a disclosed value; ``suppression.protect`` uses it for secondary
suppression of tables with totals.
"""

from __future__ import annotations

__all__ = [
    "SECONDARY",
    "CellKeyPolicy",
    "DisclosurePolicy",
    "MinimalPolicy",
    "RawPolicy",
    "RoundingPolicy",
    "TeamPolicy",
    "configured_policy",
    "load_settings",
    "policy_for",
    "region_policy",
    "require_record_keys",
    "suppressed",
]

from dataclasses import dataclass, field
from typing import Any, Protocol

from brygga.config import DisclosureSettings, get_settings
from brygga.errors import InputError, PermissionDenied

# Shown for a count suppressed only to protect another cell (it may be large).
SECONDARY = "suppressed"


def load_settings() -> DisclosureSettings:
    """The disclosure settings of the one settings tree, with errors that name the variable."""
    return get_settings().disclosure


class DisclosurePolicy(Protocol):
    raw: bool

    @property
    def description(self) -> str: ...

    @property
    def needs_record_keys(self) -> bool: ...

    def apply(self, count: int, cell_key: float | None = None) -> dict[str, Any]: ...

    def interval(self, disclosed: dict[str, Any]) -> tuple[int, int | None]: ...


def _check(count: int) -> None:
    if count < 0:
        raise ValueError("a count cannot be negative")


def suppressed(threshold: int) -> dict[str, Any]:
    return {"value": None, "display": f"<{threshold}"}


@dataclass(frozen=True)
class RoundingPolicy:
    """Counts 1..threshold-1 suppressed; others rounded to the nearest ``rounding``."""

    threshold: int = 8
    rounding: int = 5
    raw: bool = False

    @property
    def description(self) -> str:
        # Worded as in the message catalogues (locale/*/disclosure.po), which translate it.
        shown = f"others rounded to the nearest {self.rounding}" if self.rounding > 1 else "exact"
        return f"counts 1-{self.threshold - 1} suppressed, {shown}"

    @property
    def needs_record_keys(self) -> bool:
        return False

    def apply(self, count: int, cell_key: float | None = None) -> dict[str, Any]:
        _check(count)
        if count == 0:
            return {"value": 0, "display": "0"}
        if count < self.threshold:
            return suppressed(self.threshold)
        # Integer arithmetic, halves rounded up (Python's round() would round half to even).
        value = self.rounding * ((count + self.rounding // 2) // self.rounding)
        value = max(value, self._smallest)
        return {"value": value, "display": str(value)}

    def interval(self, disclosed: dict[str, Any]) -> tuple[int, int | None]:
        value = disclosed["value"]
        if value is None:
            if disclosed["display"] == SECONDARY:
                return (self.threshold, None)
            return (1, self.threshold - 1)
        if value == 0:
            return (0, 0)
        low = value - self.rounding // 2
        if value == self._smallest:  # counts from the threshold up are lifted to it
            return (self.threshold, low + self.rounding - 1)
        return (max(low, self.threshold), low + self.rounding - 1)

    @property
    def _smallest(self) -> int:
        """The smallest value shown: the first multiple of ``rounding`` at the threshold or
        above (rounding 8 to the nearest 5 gives 10; a threshold of 4 and rounding 3 must not
        show 3)."""
        return self.rounding * -(-self.threshold // self.rounding)


# The cohort issue's name for the rounding policy; kept so existing callers keep working.
MinimalPolicy = RoundingPolicy


@dataclass(frozen=True)
class RawPolicy:
    """Exact counts: synthetic regions only."""

    raw: bool = True

    @property
    def description(self) -> str:
        return "RAW exact counts (synthetic region)"

    @property
    def needs_record_keys(self) -> bool:
        return False

    def apply(self, count: int, cell_key: float | None = None) -> dict[str, Any]:
        return {"value": count, "display": str(count)}

    def interval(self, disclosed: dict[str, Any]) -> tuple[int, int | None]:
        return (disclosed["value"], disclosed["value"])


@dataclass(frozen=True)
class TeamPolicy(RawPolicy):
    """Exact counts of a study's own recruitment, for its own team: an explicit policy (the
    team knows its volunteers once they answer), never for counts from the region's records."""

    raw: bool = False

    @property
    def description(self) -> str:
        return "exact (study team)"


@dataclass(frozen=True)
class CellKeyPolicy:
    """The Cell Key Method: deterministic perturbation picked by the cell's key.

    A count with a cell key is perturbed by ``ptable.perturbation(cell_key)`` and suppressed
    when either the true or the perturbed count is 1..threshold-1, so no small number is ever
    shown. Every region output supplies cell keys (feasibility from the engine, prevention
    through ``privacy.people``); a caller that cannot gets the rounding rule instead (just as
    safe; it loses only CKM's consistency across outputs).
    """

    ptable: Any  # cellkey.PTable
    threshold: int = 8
    fallback_rounding: int = 5
    raw: bool = False
    _fallback: RoundingPolicy = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fallback = RoundingPolicy(self.threshold, self.fallback_rounding)
        object.__setattr__(self, "_fallback", fallback)

    @property
    def description(self) -> str:
        return (
            f"cell key method (perturbation up to ±{self.ptable.max_perturbation}), "
            f"counts below {self.threshold} suppressed"
        )

    @property
    def needs_record_keys(self) -> bool:
        return True

    def apply(self, count: int, cell_key: float | None = None) -> dict[str, Any]:
        _check(count)
        if cell_key is None:
            return self._fallback.apply(count)
        if count == 0:
            return {"value": 0, "display": "0"}
        value = count + self.ptable.perturbation(cell_key)
        if count < self.threshold or value < self.threshold:
            return suppressed(self.threshold)
        return {"value": value, "display": str(value)}

    def interval(self, disclosed: dict[str, Any]) -> tuple[int, int | None]:
        value = disclosed["value"]
        if value is None or value == 0:
            return self._fallback.interval(disclosed)
        # Perturbed or rounded: either way within this distance of the truth.
        spread = max(self.ptable.max_perturbation, self.fallback_rounding // 2)
        return (max(value - spread, self.threshold), value + spread)


def configured_policy(settings: DisclosureSettings | None = None) -> DisclosurePolicy:
    """The deployment's policy for non-raw output."""
    settings = settings or load_settings()
    if settings.method == "rounding":
        return RoundingPolicy(settings.threshold, settings.rounding)
    from brygga.privacy.cellkey import PTable

    if settings.ckm_ptable is not None:
        ptable = PTable.from_csv(settings.ckm_ptable)
    else:
        ptable = PTable.build(settings.ckm_max_perturbation, settings.ckm_variance)
    if ptable.max_perturbation >= settings.threshold:
        raise InputError(
            f"{settings.ckm_ptable}: perturbations must be smaller than the threshold "
            f"({settings.threshold})"
        )
    return CellKeyPolicy(ptable, settings.threshold, settings.rounding)


def policy_for(
    *, synthetic: bool, raw: bool = False, settings: DisclosureSettings | None = None
) -> DisclosurePolicy:
    """The policy for a region; ``raw`` is refused unless the region is synthetic."""
    if not raw:
        return configured_policy(settings)
    if not synthetic:
        raise PermissionDenied(
            "exact (raw) counts are only allowed for synthetic regions; this region's manifest "
            "does not say source: synthetic"
        )
    return RawPolicy()


def region_policy(
    region: Any, *, raw: bool = False, settings: DisclosureSettings | None = None
) -> DisclosurePolicy:
    """``policy_for`` a region, refusing the Cell Key Method if the region has no record keys."""
    policy = policy_for(synthetic=region.synthetic, raw=raw, settings=settings)
    require_record_keys(policy, region)
    return policy


def require_record_keys(policy: DisclosurePolicy, region: Any) -> None:
    """Refuse a region without record keys when the policy is the cell key method."""
    if policy.needs_record_keys and "person_key" not in region.tables():
        raise PermissionDenied(
            f"the disclosure policy is the cell key method, but region {region.name!r} has no "
            "record keys (table person_key); regenerate or re-import the region, or set "
            "BRYGGA_DISCLOSURE_METHOD=rounding"
        )
