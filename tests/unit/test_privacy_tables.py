"""Secondary suppression of the tables ``brygga risk``, ``brygga equity`` and the recruitment
funnel emit: no suppressed count can be worked out from the totals around it.

The attacker is written independently of ``privacy/suppression.py``: from the documented rule
it works out what each published value says about its true count (an interval), then subtracts
along every line the reader knows (a group is the sum of its categories, a region the sum of its
groups, a stage the sum of the next stage and the people lost between them), repeated to a fixed
point. It succeeds when a count suppressed as small (1-7), or a never-shown difference of 1-7
people, is pinned down to fewer than three possible values.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import date
from typing import Any

import numpy as np
import pytest

from brygga.platform import Brygga
from brygga.privacy.disclosure import SECONDARY, RoundingPolicy
from brygga.privacy.people import PeopleCounter, PeopleTable
from brygga.records.store import Region
from brygga.studies.funnel import STAGES, disclose_stages

THRESHOLD = 8
INF = float("inf")
INDEX = "2025-06-30"

Lines = list[tuple[Hashable, tuple[Hashable, ...]]]


def rounding_range(rounding: int):
    def what(shown: dict) -> tuple[float, float]:
        if shown["value"] is None:
            return (THRESHOLD, INF) if shown["display"] == SECONDARY else (1, THRESHOLD - 1)
        if shown["value"] == 0:
            return (0, 0)
        low = shown["value"] - rounding // 2
        return (max(THRESHOLD, low), low + rounding - 1)

    return what


def cell_key_range(spread: int):
    """Counts perturbed by at most ``spread``; "<8" when the true or perturbed count is small,
    so the truth may be up to threshold - 1 + spread."""

    def what(shown: dict) -> tuple[float, float]:
        if shown["value"] is None:
            if shown["display"] == SECONDARY:
                return (THRESHOLD, INF)
            return (1, THRESHOLD - 1 + spread)
        if shown["value"] == 0:
            return (0, 0)
        return (max(THRESHOLD, shown["value"] - spread), shown["value"] + spread)

    return what


def attack(known: dict[Hashable, tuple[float, float]], lines: Lines) -> dict:
    """Interval subtraction along every line to a fixed point. ``known``: what the reader
    knows of each cell (never-shown cells: (0, inf))."""
    b = {c: list(v) for c, v in known.items()}
    for _ in range(60):
        before = {c: tuple(v) for c, v in b.items()}
        for total, members in lines:
            lows = [b[m][0] for m in members]
            highs = [b[m][1] for m in members]
            b[total][0] = max(b[total][0], sum(lows))
            b[total][1] = min(b[total][1], sum(highs))
            for m in members:
                others_low = sum(b[o][0] for o in members if o != m)
                others_high = sum(b[o][1] for o in members if o != m)
                low, high = b[total][0] - others_high, b[total][1] - others_low
                if max(b[m][0], low) <= min(b[m][1], high):
                    b[m] = [max(b[m][0], low), min(b[m][1], high)]
        if before == {c: tuple(v) for c, v in b.items()}:
            break
    return {c: tuple(v) for c, v in b.items()}


def recovered(shown: dict, truth: dict, lines: Lines, what, hidden: set = frozenset()) -> list:
    """Cells suppressed as small, and hidden cells of 1-7 people, pinned to < 3 values."""
    known = {c: ((0, INF) if c in hidden else what(shown[c])) for c in truth}
    derived = attack(known, lines)
    small = [
        c
        for c, n in truth.items()
        if (c in hidden and 0 < n < THRESHOLD)
        or (c not in hidden and shown[c]["value"] is None and shown[c]["display"] != SECONDARY)
    ]
    return [c for c in small if derived[c][1] - derived[c][0] < 2]


# --- A small table where primary suppression alone gives a cell away ----------------------


def sex_by_category(counts: dict[str, list[int]]) -> tuple[PeopleTable, dict, Lines]:
    """Risk categories (low, high, very-high) by sex, row and column totals; one person per
    row of a boolean mask, so the table is built from people as the prevention outputs are."""
    labels = ("low", "high", "very-high")
    sexes = list(counts)
    n = sum(map(sum, counts.values()))
    sex = np.repeat(sexes, [sum(v) for v in counts.values()])
    category = np.concatenate([np.repeat(labels, v) for v in counts.values()])
    table = PeopleTable(PeopleCounter(RoundingPolicy(THRESHOLD, 1)))  # exact above 7
    everyone = np.ones(n, bool)
    table.add("all", everyone)
    for c in labels:
        table.add(("all", c), category == c)
    for s in sexes:
        table.add((s, "all"), sex == s)
        for c in labels:
            table.add((s, c), (sex == s) & (category == c))
    for s in sexes:
        table.line((s, "all"), [(s, c) for c in labels])
    for c in labels:
        table.line(("all", c), [(s, c) for s in sexes])
    table.line("all", [(s, "all") for s in sexes])
    table.line("all", [("all", c) for c in labels])
    lines = [(line.total, line.members) for line in table.lines]
    return table, dict(table.counts), lines


def test_a_small_table_is_not_recoverable_by_subtraction() -> None:
    table, truth, lines = sex_by_category({"female": [40, 3, 25], "male": [30, 20, 12]})
    what = rounding_range(1)
    policy = table.counter.policy
    naive = {c: policy.apply(n) for c, n in truth.items()}  # primary suppression only
    assert recovered(naive, truth, lines, what) == [("female", "high")]
    shown = table.disclose(keep=["all"])
    assert recovered(shown, truth, lines, what) == []
    assert shown[("female", "high")]["display"] == "<8"
    complements = [c for c, d in shown.items() if d["display"] == SECONDARY]
    assert complements and all(truth[c] >= THRESHOLD for c in complements)
    assert shown["all"] == {"value": 130, "display": "130"}  # the headline count stays


def test_a_table_rejects_a_line_that_does_not_add_up() -> None:
    table = PeopleTable(PeopleCounter(RoundingPolicy()))
    table.add("a", np.array([True, True, False]))
    table.add("b", np.array([True, False, False]))
    with pytest.raises(ValueError, match="not the sum"):
        table.line("a", ["b"])


# --- The recruitment funnel ------------------------------------------------------------------


def funnel_lines(counts: dict[str, int]) -> tuple[dict, Lines, set]:
    """What a reader knows: each stage's people are among the previous stage's."""
    truth: dict[Hashable, int] = dict(counts)
    lines: Lines = []
    hidden = set()
    for upper, lower in (("matched", "invited"), ("invited", "seen"), ("seen", "interested"),
                         ("interested", "enrolled")):  # fmt: skip
        truth[("lost", lower)] = counts[upper] - counts[lower]
        hidden.add(("lost", lower))
        lines.append((upper, (lower, ("lost", lower))))
    return truth, lines, hidden


@pytest.mark.parametrize(
    "counts",
    [
        dict(zip(STAGES, [50, 47, 30, 12, 10], strict=True)),  # 3 not invited, 2 not enrolled
        dict(zip(STAGES, [60, 60, 41, 9, 3], strict=True)),  # enrolled 3: from 9 - 6?
        dict(zip(STAGES, [20, 14, 14, 14, 0], strict=True)),
    ],
)
@pytest.mark.parametrize("rounding", [1, 5])
def test_the_funnel_gives_away_no_small_stage_or_loss(counts: dict, rounding: int) -> None:
    policy = RoundingPolicy(THRESHOLD, rounding)
    truth, lines, hidden = funnel_lines(counts)
    shown = disclose_stages(policy, counts)
    assert list(shown) == list(STAGES)
    assert recovered(shown, truth, lines, rounding_range(rounding), hidden) == []
    for stage, n in counts.items():  # primary suppression is exactly the small counts
        assert (shown[stage]["display"] == "<8") == (0 < n < THRESHOLD)


def test_without_secondary_suppression_the_funnel_gives_away_a_small_loss() -> None:
    counts = dict(zip(STAGES, [50, 47, 30, 12, 10], strict=True))
    truth, lines, hidden = funnel_lines(counts)
    naive = {s: RoundingPolicy(THRESHOLD, 1).apply(n) for s, n in counts.items()}
    assert ("lost", "invited") in recovered(naive, truth, lines, rounding_range(1), hidden)


# --- The real outputs of a small region ------------------------------------------------------


@pytest.fixture(autouse=True)
def _deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METHOD", "THRESHOLD", "ROUNDING"):
        monkeypatch.delenv(f"BRYGGA_DISCLOSURE_{name}", raising=False)


def flatten(doc: dict, paths: list[tuple]) -> dict[tuple, Any]:
    def get(path: tuple) -> Any:
        node = doc
        for p in path:
            node = node[p]
        return node

    return {p: get(p) for p in paths}


def risk_table(doc: dict) -> tuple[list[tuple], Lines, set]:
    """Every count of a ``brygga risk`` document and the lines a reader knows."""
    rows = [("overall",)] + [
        ("breakdowns", dim, g) for dim, groups in doc["breakdowns"].items() for g in groups
    ]
    parts = [*(("categories", c) for c in doc["categories"]), ("missing_inputs",),
             ("invalid_inputs",), ("complete_inputs",), ("people",)]  # fmt: skip
    cells = [(*r, *p) for r in rows for p in parts]
    lines: Lines = []
    for r in rows:
        lines.append(
            ((*r, "complete_inputs"), tuple((*r, "categories", c) for c in doc["categories"]))
        )
        lines.append(
            (
                (*r, "people"),
                tuple((*r, k) for k in ("complete_inputs", "missing_inputs", "invalid_inputs")),
            )
        )
    for dim, groups in doc["breakdowns"].items():
        for p in parts:
            lines.append((("overall", *p), tuple(("breakdowns", dim, g, *p) for g in groups)))
    pop = [("population", "alive_and_observed"), ("population", "scored_population")]
    excluded = [("population", "not_scored", k) for k in doc["population"]["not_scored"]]
    other = ("scored by another model",)  # never shown: 0 or more
    lines.append((pop[0], (pop[1], *excluded, other)))
    lines.append((pop[1], (("overall", "people"),)))
    lines.append((("missing_inputs", "any"), (("overall", "missing_inputs"),)))
    cells += [*pop, *excluded, ("missing_inputs", "any")]
    return cells, lines, {other}


EQUITY_PARTS = ("people", "complete_inputs", "high_risk", "target", "reached")
EQUITY_HIDDEN = {  # never shown; each the rest of a shown set
    "incomplete": ("people", "complete_inputs"),
    "not_high": ("complete_inputs", "high_risk"),
    "not_target": ("people", "target"),
    "not_reached": ("target", "reached"),
}


def equity_table(doc: dict) -> tuple[list[tuple], Lines, set]:
    rows = [("overall",)] + [
        ("breakdowns", dim, g) for dim, groups in doc["breakdowns"].items() for g in groups
    ]
    cells = [(*r, p) for r in rows for p in EQUITY_PARTS]
    hidden = {(*r, h) for r in rows for h in EQUITY_HIDDEN}
    lines: Lines = []
    for r in rows:
        for h, (whole, part) in EQUITY_HIDDEN.items():
            lines.append(((*r, whole), ((*r, part), (*r, h))))
    for dim, groups in doc["breakdowns"].items():
        for p in (*EQUITY_PARTS, *EQUITY_HIDDEN):
            lines.append((("overall", p), tuple(("breakdowns", dim, g, p) for g in groups)))
    return cells, lines, hidden


def truth_of(raw_doc: dict, cells: list[tuple], hidden: set) -> dict:
    truth = {c: v["value"] for c, v in flatten(raw_doc, cells).items()}
    for c in hidden:
        if c[-1] in EQUITY_HIDDEN:
            whole, part = EQUITY_HIDDEN[c[-1]]
            truth[c] = truth[(*c[:-1], whole)] - truth[(*c[:-1], part)]
        else:  # risk: alive - scored - excluded
            pop = raw_doc["population"]
            truth[c] = pop["alive_and_observed"]["value"] - pop["scored_population"]["value"]
            truth[c] -= sum(v["value"] for v in pop["not_scored"].values())
    return truth


POLICIES = {
    "rounding-1": ({"BRYGGA_DISCLOSURE_ROUNDING": "1"}, rounding_range(1)),
    "rounding-5": ({}, rounding_range(5)),
    "cell-key": ({"BRYGGA_DISCLOSURE_METHOD": "cell-key"}, cell_key_range(2)),
}


@pytest.fixture(scope="module")
def raw_docs(small_region: Any) -> dict[str, dict]:
    """Exact counts of the same people (the synthetic original allows --raw): the truth."""
    path, day = small_region.region.path, date.fromisoformat(INDEX)
    return {
        "risk": Brygga().risk(path, index_date=day, raw=True),
        "equity": Brygga().equity(path, index_date=day, raw=True),
    }


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("command", ["risk", "equity"])
def test_risk_and_equity_outputs_resist_subtraction(
    omop_small: Region,
    raw_docs: dict,
    command: str,
    policy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, what = POLICIES[policy]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    core = Brygga()  # after the environment: the platform chooses the policy from it
    report = core.risk if command == "risk" else core.equity
    doc = report(omop_small.path, index_date=date.fromisoformat(INDEX))
    assert doc["raw"] is False
    cells, lines, hidden = (risk_table if command == "risk" else equity_table)(doc)
    shown = flatten(doc, cells)
    truth = truth_of(raw_docs[command], cells, hidden)
    for total, members in lines:  # the reader's lines are true of the exact counts
        assert truth[total] == sum(truth[m] for m in members), (total, members)
    assert recovered(shown, truth, lines, what, hidden) == []
    # Not vacuous: some cells are small (suppressed, or never shown but a difference); with exact counts above the threshold,
    # primary suppression alone would give some away on this very table, and complementary
    # cells (never small ones) are what prevents it.
    small = [c for c, n in truth.items() if (c in hidden and 0 < n < THRESHOLD)]
    assert small + [c for c, d in shown.items() if d["display"] == "<8"]
    if policy == "rounding-1":
        naive = {
            c: RoundingPolicy(THRESHOLD, 1).apply(n) for c, n in truth.items() if c not in hidden
        }
        assert recovered(naive, truth, lines, what, hidden) != []
        complements = [c for c, d in shown.items() if d["display"] == SECONDARY]
        assert complements and all(truth[c] >= THRESHOLD for c in complements)
    if policy == "cell-key":
        assert "cell key" in doc["disclosure"]
