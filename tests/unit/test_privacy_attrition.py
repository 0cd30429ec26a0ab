"""Attrition tables: two published steps must not give away that a rule removed a few people.

The attacker is written independently of ``suppression.py``: from the published attrition
steps (what each value says about its true count, by the documented rules), the fact that
every rule can only remove people, and the breakdowns that add up to the final count, it works
out the range of people each rule removed, and succeeds when a rule that removed 1 .. 7 people
is pinned down to fewer than three possible numbers.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from brygga.cohort.engine import Evaluation
from brygga.cohort.feasibility import disclose
from brygga.privacy.cellkey import SCALE, FeasibilityKeys, PTable
from brygga.privacy.disclosure import SECONDARY, CellKeyPolicy, RoundingPolicy

THRESHOLD = 8
INF = float("inf")
SEXES = ("female", "male")


def evaluation(steps: list[int], split: list[int]) -> Evaluation:
    """Steps as given; the final count spread over (sex, age band) cells by ``split``."""
    cells: dict = {}
    left = steps[-1]
    for i, share in enumerate(split):
        n = min(left, share)
        cells[(SEXES[i % 2], 40 + 10 * (i // 2), "1280")] = n
        left -= n
    cells[("female", 90, "1280")] = cells.get(("female", 90, "1280"), 0) + left
    return Evaluation(date(2025, 1, 1), [(f"step {i}", n) for i, n in enumerate(steps)], cells)


def rounding_range(shown: dict, rounding: int) -> tuple[float, float]:
    if shown["value"] is None:
        return (THRESHOLD, INF) if shown["display"] == SECONDARY else (1, THRESHOLD - 1)
    if shown["value"] == 0:
        return (0, 0)
    low = shown["value"] - rounding // 2
    return (max(THRESHOLD, low), low + rounding - 1)


def cell_key_range(shown: dict, spread: int) -> tuple[float, float]:
    """What a reader who knows the Cell Key Method learns: "<8" when the true or the perturbed
    count is small, so the truth may be up to threshold - 1 + spread."""
    if shown["value"] is None and shown["display"] != SECONDARY:
        return (1, THRESHOLD - 1 + spread)
    if shown["value"] is None or shown["value"] == 0:
        return rounding_range(shown, 5)
    return (max(THRESHOLD, shown["value"] - spread), shown["value"] + spread)


def removal_attack(attrition: list[dict], breakdowns: dict, what) -> list[tuple[float, float]]:
    """The range of people each rule removed (index i: rule i, from step i-1 to step i)."""
    steps = [list(what(row["count"])) for row in attrition]
    groups = [[what(c) for c in cells.values()] for cells in breakdowns.values()]
    for _ in range(20):
        # The final count is the sum of each breakdown.
        for cells in groups:
            steps[-1][0] = max(steps[-1][0], sum(lo for lo, _ in cells))
            steps[-1][1] = min(steps[-1][1], sum(hi for _, hi in cells))
        # A rule only removes people: each step is at most the one before.
        for i in range(1, len(steps)):
            steps[i][1] = min(steps[i][1], steps[i - 1][1])
            steps[i - 1][0] = max(steps[i - 1][0], steps[i][0])
    removed = [(0.0, 0.0)]
    for i in range(1, len(steps)):
        low = max(0, steps[i - 1][0] - steps[i][1])
        removed.append((low, steps[i - 1][1] - steps[i][0]))
    return removed


def recovered(steps: list[int], removed: list[tuple[float, float]]) -> list[int]:
    """Rules that removed 1..7 people and are pinned to fewer than three possible numbers."""
    return [
        i
        for i in range(1, len(steps))
        if 0 < steps[i - 1] - steps[i] < THRESHOLD and removed[i][1] - removed[i][0] < 2
    ]


def test_exact_counts_give_a_small_rule_away_without_protection() -> None:
    steps = [100, 97, 60]
    policy = RoundingPolicy(THRESHOLD, 1)
    naive = [{"count": policy.apply(n)} for n in steps]
    assert recovered(steps, removal_attack(naive, {}, lambda d: rounding_range(d, 1))) == [1]
    count, attrition, breakdowns = disclose(evaluation(steps, [30, 30]), policy)
    removed = removal_attack(attrition, breakdowns, lambda d: rounding_range(d, 1))
    assert recovered(steps, removed) == []
    # The headline count and the first step stay; the step after the small rule goes.
    assert count["value"] == 60 and attrition[0]["count"]["value"] == 100
    assert attrition[1]["count"]["display"] == SECONDARY


def test_a_small_last_rule_hides_the_step_before_not_the_count() -> None:
    steps = [200, 120, 117]
    count, attrition, breakdowns = disclose(evaluation(steps, [60]), RoundingPolicy(THRESHOLD, 1))
    assert count["value"] == 117
    assert attrition[1]["count"]["display"] == SECONDARY
    assert (
        recovered(steps, removal_attack(attrition, breakdowns, lambda d: rounding_range(d, 1)))
        == []
    )


def attrition_steps() -> st.SearchStrategy[list[int]]:
    removal = st.one_of(st.integers(0, 9), st.integers(0, 80))
    return st.tuples(st.integers(0, 400), st.lists(removal, min_size=1, max_size=5)).map(
        lambda t: [max(t[0] - sum(t[1][:i]), 0) for i in range(len(t[1]) + 1)]
    )


splits = st.lists(st.one_of(st.integers(0, 12), st.integers(0, 150)), max_size=4)


@pytest.mark.parametrize("rounding", [1, 2, 5])
@settings(max_examples=150, deadline=None)
@given(steps=attrition_steps(), split=splits)
def test_rounded_attrition_resists_subtraction(rounding: int, steps: list, split: list) -> None:
    policy = RoundingPolicy(THRESHOLD, rounding)
    count, attrition, breakdowns = disclose(evaluation(steps, split), policy)
    removed = removal_attack(attrition, breakdowns, lambda d: rounding_range(d, rounding))
    assert recovered(steps, removed) == []
    for row, n in zip(attrition, steps, strict=True):  # small steps are shown "<8", never more
        assert (row["count"]["display"] == "<8") == (0 < n < THRESHOLD)
        assert row["count"]["display"] != SECONDARY or n >= THRESHOLD
    small_groups = any(0 < c < THRESHOLD for c in evaluation(steps, split).cells.values())
    if not small_groups:  # attrition alone never hides the headline count
        assert count["display"] != SECONDARY


@settings(max_examples=150, deadline=None)
@example(steps=[9, 9, 9, 9, 9, 8], split=[], keys=[0] * 15 + [1325077254] + [0] * 4)
@given(
    steps=attrition_steps(),
    split=splits,
    keys=st.lists(st.integers(0, 2**32 - 1), min_size=20, max_size=20),
)
def test_cell_key_attrition_resists_subtraction(steps: list, split: list, keys: list) -> None:
    ptable = PTable.build(2, 1.0)
    policy = CellKeyPolicy(ptable, THRESHOLD, 5)
    ev = evaluation(steps, split)
    cell_keys = {cell: keys[i] for i, cell in enumerate(ev.cells)}
    # Key units add up: the last step's people are the cells' people, so its key is the sum of
    # theirs (independent keys made impossible worlds, e.g. one cell holding every eligible
    # person but perturbed differently from the count: [9, 9, 9, 9, 9, 8] "recovered" a rule
    # from an empty, contradictory range).
    step_keys = keys[10 : 10 + len(steps)]
    step_keys[-1] = sum(cell_keys.values()) % SCALE
    shown = disclose(ev, policy, FeasibilityKeys(step_keys, cell_keys))
    _, attrition, breakdowns = shown
    removed = removal_attack(attrition, breakdowns, lambda d: cell_key_range(d, 2))
    assert recovered(steps, removed) == []
