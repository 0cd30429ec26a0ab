"""Secondary suppression: an attacker subtracting published cells from totals recovers nothing.

The attacker here is written independently of ``suppression.py``: for every line in which a
suppressed cell is the only unknown, it subtracts (using what each published value says about
its true count) and checks whether that narrows the suppressed cell.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brygga.privacy.disclosure import SECONDARY, RawPolicy, RoundingPolicy
from brygga.privacy.suppression import Line, protect


def one_way(counts: list[int]) -> tuple[dict, list[Line]]:
    cells = {("g", i): n for i, n in enumerate(counts)}
    cells["total"] = sum(counts)
    return cells, [Line("total", tuple(k for k in cells if k != "total"))]


def two_way(rows: list[list[int]]) -> tuple[dict, list[Line]]:
    """A table with row totals, column totals and a grand total; every row and column a line."""
    cells: dict = {}
    n_rows, n_cols = len(rows), len(rows[0])
    for r in range(n_rows):
        for c in range(n_cols):
            cells[(r, c)] = rows[r][c]
        cells[(r, "T")] = sum(rows[r])
    for c in range(n_cols):
        cells[("T", c)] = sum(rows[r][c] for r in range(n_rows))
    cells[("T", "T")] = sum(map(sum, rows))
    lines = [Line((r, "T"), tuple((r, c) for c in range(n_cols))) for r in range(n_rows)]
    lines += [Line(("T", c), tuple((r, c) for r in range(n_rows))) for c in range(n_cols)]
    lines.append(Line(("T", "T"), tuple((r, "T") for r in range(n_rows))))
    lines.append(Line(("T", "T"), tuple(("T", c) for c in range(n_cols))))
    return cells, lines


def attacker_range(shown: dict, threshold: int, rounding: int) -> tuple[float, float]:
    """What a published value says about the truth, worked out from the documented rule."""
    if shown["value"] is None:
        return (threshold, float("inf")) if shown["display"] == SECONDARY else (1, threshold - 1)
    if shown["value"] == 0:
        return (0, 0)
    half = rounding // 2
    return (max(threshold, shown["value"] - half), shown["value"] - half + rounding - 1)


def subtraction_attack(shown: dict, lines: list[Line], threshold: int, rounding: int) -> list:
    """Suppressed (<threshold) cells that subtraction pins down to one or two values, line by
    line, repeated to a fixed point (what is learnt about one cell is used in the next line)."""
    known = {c: attacker_range(d, threshold, rounding) for c, d in shown.items()}
    for _ in range(20):
        for line in lines:
            cells = [line.total, *line.members]
            for target in cells:
                others = [c for c in cells if c != target]
                sign = {c: (1 if c == line.total else -1) for c in others}
                # target = total - sum(others) if target is a member; sum(members) if total.
                if target == line.total:
                    low = sum(known[c][0] for c in line.members)
                    high = sum(known[c][1] for c in line.members)
                else:
                    low = sum(known[c][0] if sign[c] > 0 else -known[c][1] for c in others)
                    high = sum(known[c][1] if sign[c] > 0 else -known[c][0] for c in others)
                lo, hi = known[target]
                if max(lo, low) <= min(hi, high):
                    known[target] = (max(lo, low), min(hi, high))
    # Success: fewer than three values left for a cell suppressed as small.
    return [
        c
        for c, d in shown.items()
        if d["value"] is None and d["display"] != SECONDARY and known[c][1] - known[c][0] < 2
    ]


def test_without_secondary_suppression_subtraction_recovers_a_cell() -> None:
    policy = RoundingPolicy(8, 1)  # exact counts above the threshold: subtraction is exact
    cells, lines = one_way([40, 3, 25])
    naive = {c: policy.apply(n) for c, n in cells.items()}
    assert subtraction_attack(naive, lines, 8, 1) == [("g", 1)]
    shown = protect(policy, cells, lines)
    assert subtraction_attack(shown, lines, 8, 1) == []
    assert shown[("g", 1)]["display"] == "<8"
    assert shown[("g", 2)]["display"] == SECONDARY  # the smaller of the others
    assert shown["total"]["value"] == 68  # the headline count stays


def test_rounding_alone_can_leak_part_of_a_small_cell() -> None:
    # Total 105 (103..107) minus 95 (93..97) puts the small cell at 6..7: protected again.
    policy = RoundingPolicy(8, 5)
    cells, lines = one_way([97, 7])
    shown = {c: policy.apply(n) for c, n in cells.items()}
    assert subtraction_attack(shown, lines, 8, 5) == [("g", 1)]
    assert subtraction_attack(protect(policy, cells, lines), lines, 8, 5) == []


def test_raw_policy_is_left_alone() -> None:
    cells, lines = one_way([40, 3])
    assert protect(RawPolicy(), cells, lines) == {c: RawPolicy().apply(n) for c, n in cells.items()}


def assert_protected(shown: dict, lines: list[Line], rounding: int) -> None:
    """The attack fails, unless nothing at all is published: in a table of only tiny cells,
    "<8" itself says each is at least 1, and no publication can hide that."""
    if subtraction_attack(shown, lines, 8, rounding):
        assert all(d["value"] in (None, 0) for d in shown.values())


def test_a_table_of_tiny_cells_is_wholly_suppressed() -> None:
    cells, lines = two_way([[1, 1, 1], [1, 1, 1]])
    shown = protect(RoundingPolicy(8, 1), cells, lines)
    assert all(d["display"] == "<8" for d in shown.values())


counts = st.one_of(st.integers(0, 12), st.integers(0, 200))


@pytest.mark.parametrize("rounding", [1, 5, 10])
@settings(max_examples=120, deadline=None)
@given(data=st.lists(counts, min_size=1, max_size=8))
def test_one_way_tables_resist_subtraction(rounding: int, data: list[int]) -> None:
    policy = RoundingPolicy(8, rounding)
    cells, lines = one_way(data)
    shown = protect(policy, cells, lines)
    assert_protected(shown, lines, rounding)
    for cell, n in cells.items():  # primary suppression is exactly the small counts
        assert (shown[cell]["display"] == "<8") == (0 < n < 8)


@pytest.mark.parametrize("rounding", [1, 5])
@settings(max_examples=120, deadline=None)
@given(
    data=st.integers(2, 4).flatmap(
        lambda cols: st.lists(
            st.lists(counts, min_size=cols, max_size=cols), min_size=2, max_size=5
        )
    )
)
def test_two_way_tables_with_margins_resist_subtraction(rounding: int, data: list) -> None:
    policy = RoundingPolicy(8, rounding)
    cells, lines = two_way(data)
    shown = protect(policy, cells, lines)
    assert_protected(shown, lines, rounding)
    for cell, n in cells.items():
        assert (shown[cell]["display"] == "<8") == (0 < n < 8)
        assert shown[cell]["display"] != SECONDARY or n >= 8  # complements are never small
