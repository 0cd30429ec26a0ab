"""Secondary (complementary) suppression for tables with totals.

A table is a set of cells (any hashable ids) and *lines*: additive constraints ``total =
sum(members)``, e.g. a breakdown by sex and its total, or the rows and columns of a two-way
table with its margins. A reader who sees the disclosed cells can subtract: if a line has one
suppressed cell, the others give it away. ``protect`` discloses every cell under the policy and
then suppresses further cells (shown ``suppressed``) until interval arithmetic over the lines,
the attack a reader with a spreadsheet makes, pins no primary-suppressed cell down to fewer than
three possible values. What a disclosed value says about its true count (rounding, perturbation) comes from
``policy.interval``, so the same code serves every policy.

When every cell of a table is suppressed or zero there is nothing left to hide behind: "<8"
itself says a cell is at least 1, and a reader may combine that with the lines.

Some cells are never published but can still be worked out: the people a feasibility rule
removes are the difference of two consecutive attrition steps. Such cells are passed as
``unpublished``: a reader knows nothing of them beforehand (0 or more), and those the policy
would suppress (1 .. threshold-1) are protected like suppressed cells, so two published steps
never give away that a rule removed three people.

Complementary cells are chosen greedily: the smallest non-zero published member of a line the
exposed cell is in; a line's total only when no member is left; cells in ``keep`` (the headline
count) only when nothing else near the exposed cell can be suppressed.
"""

from __future__ import annotations

__all__ = [
    "INF",
    "MIN_WIDTH",
    "UNPUBLISHED",
    "Line",
    "exposed_cells",
    "primary",
    "propagate",
    "protect",
]

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brygga.privacy.disclosure import SECONDARY, DisclosurePolicy

INF = float("inf")
# A suppressed count must keep at least three possible values (high - low >= 2) for a reader.
MIN_WIDTH = 2
# Marks a cell that is computed but never shown (e.g. the people one attrition rule removes).
UNPUBLISHED = "unpublished"


@dataclass(frozen=True)
class Line:
    """``total`` equals the sum of ``members``."""

    total: Hashable
    members: tuple[Hashable, ...]


def protect(
    policy: DisclosurePolicy,
    counts: Mapping[Hashable, int],
    lines: Sequence[Line],
    cell_keys: Mapping[Hashable, float] | None = None,
    *,
    unpublished: Collection[Hashable] = (),
    keep: Collection[Hashable] = (),
) -> dict[Hashable, dict[str, Any]]:
    """Disclose every cell, then add complementary suppressions until nothing is exposed.

    ``unpublished`` cells are in ``counts`` and ``lines`` but never shown (their entry in the
    result says ``unpublished``; leave them out of the output). ``keep`` cells are suppressed
    only as a last resort.
    """
    keys = cell_keys or {}
    disclosed = {cell: policy.apply(n, keys.get(cell)) for cell, n in counts.items()}
    if policy.raw:
        return disclosed
    # An unpublished cell the policy would suppress must stay as uncertain as a suppressed one.
    sensitive = {c for c in unpublished if primary(disclosed[c])}
    for cell in unpublished:
        disclosed[cell] = {"value": None, "display": UNPUBLISHED}
    while True:
        exposed = exposed_cells(policy, disclosed, lines, sensitive)
        if not exposed:
            return disclosed
        complement = _complement(exposed[0], counts, disclosed, lines, set(keep))
        if complement is None:  # every cell near it is already hidden or zero
            return disclosed
        disclosed[complement] = {"value": None, "display": SECONDARY}


def primary(disclosed: dict[str, Any]) -> bool:
    return disclosed["value"] is None and disclosed["display"] not in (SECONDARY, UNPUBLISHED)


def exposed_cells(
    policy: DisclosurePolicy,
    disclosed: Mapping[Hashable, dict[str, Any]],
    lines: Sequence[Line],
    sensitive: Collection[Hashable] = (),
) -> list[Hashable]:
    """Primary-suppressed cells, and ``sensitive`` unpublished ones, whose possible range the
    lines narrow to fewer than three values."""
    prior = {c: _prior(policy, d) for c, d in disclosed.items()}
    derived = propagate(prior, lines)
    return [
        c
        for c, d in disclosed.items()
        if (primary(d) or c in sensitive) and _width(derived[c]) < min(MIN_WIDTH, _width(prior[c]))
    ]


def _prior(policy: DisclosurePolicy, disclosed: dict[str, Any]) -> tuple[float, float]:
    """What a reader knows of a cell before using the lines."""
    if disclosed["value"] is None and disclosed["display"] == UNPUBLISHED:
        return (0.0, INF)
    return _bounds(policy.interval(disclosed))


def _width(bounds: tuple[float, float]) -> float:
    return bounds[1] - bounds[0]


def propagate(
    bounds: Mapping[Hashable, tuple[float, float]], lines: Sequence[Line], rounds: int = 50
) -> dict[Hashable, tuple[float, float]]:
    """Tighten each cell's [low, high] through every line until nothing changes."""
    b = dict(bounds)
    for _ in range(rounds):
        changed = False
        for line in lines:
            lows = [b[m][0] for m in line.members]
            highs = [b[m][1] for m in line.members]
            t_low, t_high = b[line.total]
            new = (max(t_low, sum(lows)), min(t_high, sum(highs)))
            changed |= _set(b, line.total, new)
            t_low, t_high = b[line.total]
            low_sum, high_sum = sum(lows), sum(highs)
            for m, lo, hi in zip(line.members, lows, highs, strict=True):
                others_low, others_high = low_sum - lo, high_sum - hi
                candidate = (max(lo, t_low - others_high), min(hi, t_high - others_low))
                changed |= _set(b, m, candidate)
        if not changed:
            break
    return b


def _set(b: dict[Hashable, tuple[float, float]], cell: Hashable, new: tuple[float, float]) -> bool:
    if new[0] > new[1]:  # inconsistent published values (rounding); keep what we had
        return False
    if new != b[cell]:
        b[cell] = new
        return True
    return False


def _bounds(interval: tuple[int, int | None]) -> tuple[float, float]:
    low, high = interval
    return (float(low), INF if high is None else float(high))


def _complement(
    cell: Hashable,
    counts: Mapping[Hashable, int],
    disclosed: Mapping[Hashable, dict[str, Any]],
    lines: Sequence[Line],
    keep: set[Hashable],
) -> Hashable | None:
    """The cheapest published, non-zero cell sharing a line with ``cell``; failing that, one
    sharing a line with a hidden cell linked to it (found breadth first). A ``keep`` cell only
    when no other cell is reachable."""
    hidden = {cell}
    seen_lines: set[int] = set()
    last_resort: Hashable | None = None
    while True:
        near = [
            (i, line)
            for i, line in enumerate(lines)
            if i not in seen_lines and (line.total in hidden or hidden & set(line.members))
        ]
        if not near:
            return last_resort
        seen_lines |= {i for i, _ in near}
        members = [m for _, line in near for m in line.members]
        totals = [line.total for _, line in near]
        for pool in (members, totals):
            candidates = [c for c in pool if disclosed[c]["value"] not in (None, 0)]
            if last_resort is None and candidates and all(c in keep for c in candidates):
                last_resort = min(candidates, key=lambda c: (counts[c], str(c)))
            candidates = [c for c in candidates if c not in keep]
            if candidates:
                return min(candidates, key=lambda c: (counts[c], str(c)))
        hidden |= {c for c in members + totals if disclosed[c]["value"] is None}
        hidden |= {c for c in members + totals if c in keep}  # look past kept cells too
