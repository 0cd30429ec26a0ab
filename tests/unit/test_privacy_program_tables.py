"""Secondary suppression of ``brygga program`` and ``brygga evaluate``: no suppressed count can be
worked out by subtraction from the totals around it.

The attacker is the independent one of ``test_privacy_tables.py`` (interval subtraction along
every line the reader knows, to a fixed point), given what a reader of these two outputs knows:

* program: units add up to the totals; eligible = invited + beyond capacity; the targeted
  people are the eligible, those at no care unit and a never-shown rest. The reader also holds
  the program file, so knows each unit's capacity: a unit that is not full invited exactly its
  eligible people, a full unit invited exactly its capacity (so the invited of the full units
  together are known exactly, and the beyond capacity are the full units' eligible less that).
  We give the reader which units are full (the worst case).
* evaluate: each outcome's matched invited (comparison) people are part of the invited
  (comparison) people scored, and so are the verified improvements; the invited in the region
  are the scored invited and a never-shown rest.

A count suppressed as small (1-7) must keep at least three possible values, and so must a
never-shown difference of 1-7 people. A full unit's invited count is the program's capacity,
which the reader supplied: it is not a secret.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from brygga import cli
from brygga.privacy.disclosure import SECONDARY, RoundingPolicy
from brygga.records.store import Region
from tests.unit.test_privacy_tables import INF, POLICIES, THRESHOLD, attack, rounding_range

INDEX = "2025-06-30"
# On the small region units have 2-19 eligible people. Capacity 10: the small units are not
# full (their invited are their eligible), the larger ones are. Capacity 2: every unit but one
# (2 eligible) is full, so the invited total less the capacities gives that unit away.
PROGRAM = """name: heart check
criteria: {demographics: {age: {min: 50, max: 69}}}
score: {model: applicable, min_risk_percent: 5}
capacity: {default: CAPACITY}
"""

Lines = list[tuple[Hashable, tuple[Hashable, ...]]]


def use_policy(policy: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Set the disclosure policy's environment; returns what the policy is called."""
    env, what = POLICIES[policy]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return what


@pytest.fixture(autouse=True)
def _deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METHOD", "THRESHOLD", "ROUNDING"):
        monkeypatch.delenv(f"BRYGGA_DISCLOSURE_{name}", raising=False)


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert cli.main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def secrets_recovered(
    shown: dict, truth: dict, lines: Lines, what, known: dict, secret_hidden: set
) -> list:
    """Small suppressed cells and small never-shown ones pinned to fewer than three values.
    ``known``: cells the reader knows otherwise (exact figures, or (0, inf) when never shown)."""
    prior = {c: known[c] if c in known else what(shown[c]) for c in truth}
    derived = attack(prior, lines)
    small = [c for c in secret_hidden if 0 < truth[c] < THRESHOLD]
    small += [
        c
        for c, d in shown.items()
        if d["value"] is None and d["display"] != SECONDARY and c not in known
    ]
    return [c for c in small if derived[c][1] - derived[c][0] < 2]


# --- brygga program ----------------------------------------------------------------------------

TOTALS = ("target_criteria_met", "eligible", "invited", "beyond_capacity", "not_listed_at_a_unit")


def program_table(doc: dict, raw: dict) -> tuple[dict, dict, Lines, dict, set]:
    """(shown, truth, lines, known, secret never-shown cells) of a ``brygga program`` document;
    ``raw``: the same program's exact counts."""
    shown = {k: doc[k] for k in TOTALS}
    truth = {k: raw[k]["value"] for k in TOTALS}
    for u, c in doc["units"].items():
        for k in ("eligible", "invited"):
            shown[(k, u)] = c[k]
            truth[(k, u)] = raw["units"][u][k]["value"]
    full = [u for u, c in raw["units"].items() if c["eligible"]["value"] > c["capacity"]]
    not_full = [u for u in doc["units"] if u not in full]
    capacity = sum(doc["units"][u]["capacity"] for u in full)
    truth["invited at full units"] = capacity
    truth["eligible at full units"] = sum(truth[("eligible", u)] for u in full)
    truth["rest"] = truth["target_criteria_met"] - truth["eligible"]
    truth["rest"] -= truth["not_listed_at_a_unit"]
    lines: Lines = [(("eligible", u), (("invited", u),)) for u in not_full]
    lines += [
        ("eligible", tuple(("eligible", u) for u in doc["units"])),
        ("eligible", ("invited", "beyond_capacity")),
        ("invited", ("invited at full units", *(("invited", u) for u in not_full))),
        ("eligible at full units", tuple(("eligible", u) for u in full)),
        ("eligible at full units", ("invited at full units", "beyond_capacity")),
        ("target_criteria_met", ("eligible", "not_listed_at_a_unit", "rest")),
    ]
    known = {
        "invited at full units": (capacity, capacity),
        "eligible at full units": (0, INF),
        "rest": (0, INF),
        **{("invited", u): (doc["units"][u]["capacity"],) * 2 for u in full},
    }
    return shown, truth, lines, known, {"eligible at full units", "rest"}


@pytest.fixture(scope="module")
def raw_programs(small_region: Any) -> dict[int, dict]:
    """Exact counts of the program on the synthetic original (which allows --raw)."""
    from brygga.prevention.programs import parse_program, plan_program

    return {
        capacity: plan_program(
            parse_program(yaml.safe_load(PROGRAM.replace("CAPACITY", str(capacity)))),
            small_region.region,
            index_date=date.fromisoformat(INDEX),
        ).summary(_raw())
        for capacity in (10, 2)
    }


@pytest.mark.parametrize("capacity", [10, 2])
@pytest.mark.parametrize("policy", list(POLICIES))
def test_program_output_resists_subtraction(
    omop_small: Region,
    raw_programs: dict,
    policy: str,
    capacity: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    what = use_policy(policy, monkeypatch)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM.replace("CAPACITY", str(capacity)))
    raw_program = raw_programs[capacity]
    doc = run_json(
        ["program", str(program), "--region", str(omop_small.path), "--index-date", INDEX], capsys
    )
    assert doc["raw"] is False and raw_program["raw"] is True
    shown, truth, lines, known, hidden = program_table(doc, raw_program)
    for total, members in lines:  # the reader's lines are true of the exact counts
        assert truth[total] == sum(truth[m] for m in members), (total, members)
    assert secrets_recovered(shown, truth, lines, what, known, hidden) == []
    # Not vacuous: units are both full and not full, and some counts are small.
    small = [c for c, d in shown.items() if d["display"] == "<8" and c not in known]
    assert small and any(c in known for c in shown) and any(len(m) == 1 for _, m in lines)
    assert all(shown[k]["value"] is not None for k in ("target_criteria_met", "eligible"))
    if capacity == 10:
        assert len(small) >= 5 and shown["invited"]["value"] is not None
    else:  # the invited total less the capacities would give the one unit not full away
        assert shown["invited"]["display"] == SECONDARY
        naive = dict(shown) | {k: RoundingPolicy(THRESHOLD, 1).apply(truth[k]) for k in TOTALS}
        assert secrets_recovered(naive, truth, lines, rounding_range(1), known, hidden) != []
    if capacity == 2 and policy == "rounding-1":  # exact counts: beyond capacity too
        assert shown["beyond_capacity"]["display"] == SECONDARY


def crafted_plan(policy_units: dict[int, tuple[int, int]]) -> Any:
    """A plan built by hand: {unit: (eligible, capacity)}; 20 targeted people fall below the
    risk threshold. No region is read (the rounding rule needs no record keys)."""
    from brygga.prevention.programs import Capacity, Program, ProgramPlan

    sizes = [n for n, _ in policy_units.values()]
    n = sum(sizes) + 20
    unit = np.repeat(list(policy_units), sizes)
    rank = np.concatenate([np.arange(1, k + 1) for k in sizes])
    cap = np.repeat([c for _, c in policy_units.values()], sizes)
    program = Program(
        name="crafted", capacity=Capacity(units={u: c for u, (_, c) in policy_units.items()})
    )
    pid = np.arange(n, dtype=np.int64)
    return ProgramPlan(
        program=program,
        region=SimpleNamespace(name="crafted"),  # type: ignore[arg-type]
        index_date=date(2025, 6, 30),
        risk=SimpleNamespace(inputs={"person_id": pid}),  # type: ignore[arg-type]
        person_id=pid[: len(unit)],
        care_site_id=unit,
        risk_percent=np.zeros(len(unit)),
        rank=rank,
        invited=rank <= cap,
        in_target=np.ones(n, bool),
        unlisted=np.zeros(n, bool),
    )


def test_a_crafted_program_needs_secondary_suppression() -> None:
    # Unit 1 full (30 eligible, capacity 10), unit 2 small (3), unit 3 not full (20 of 25).
    plan = crafted_plan({1: (30, 10), 2: (3, 10), 3: (20, 25)})
    policy = RoundingPolicy(THRESHOLD, 1)
    raw = plan.summary(_raw())
    naive_doc = json.loads(json.dumps(raw))  # primary suppression of every count on its own
    for k in TOTALS:
        naive_doc[k] = policy.apply(raw[k]["value"])
    for c in naive_doc["units"].values():
        c["eligible"], c["invited"] = (policy.apply(c[k]["value"]) for k in ("eligible", "invited"))
    what = rounding_range(1)
    shown, truth, lines, known, hidden = program_table(naive_doc, raw)
    assert secrets_recovered(shown, truth, lines, what, known, hidden) == [
        ("eligible", "2"),
        ("invited", "2"),
    ]  # 53 - 30 - 20 and 33 - 10 - 20: three people at unit 2
    doc = plan.summary(policy)
    shown, truth, lines, known, hidden = program_table(doc, raw)
    assert secrets_recovered(shown, truth, lines, what, known, hidden) == []
    assert doc["units"]["2"]["eligible"]["display"] == "<8"
    assert doc["eligible"]["value"] == 53 and doc["invited"]["value"] == 33  # headline kept
    assert doc["units"]["3"]["eligible"]["display"] == SECONDARY


def _raw() -> Any:
    from brygga.privacy.disclosure import policy_for

    return policy_for(synthetic=True, raw=True)


# --- brygga evaluate ---------------------------------------------------------------------------

GROUPS = ("invited", "comparison")
HEADLINE = ("invited_in_region", "invited_scored", "comparison_scored")


def evaluation_table(doc: dict, raw: dict) -> tuple[dict, dict, Lines, dict, set]:
    """(shown, truth, lines, known, never-shown cells) of a ``brygga evaluate`` document."""
    shown = {k: doc[k] for k in HEADLINE}
    truth = {k: raw[k]["value"] for k in HEADLINE}
    truth["invited not scored"] = truth["invited_in_region"] - truth["invited_scored"]
    lines: Lines = [("invited_in_region", ("invited_scored", "invited not scored"))]
    hidden = {"invited not scored"}
    for name, result in doc["outcomes"].items():
        for g in GROUPS:
            shown[(name, g)] = result[g]
            truth[(name, g)] = raw["outcomes"][name][g]["value"]
            truth[(name, g, "rest")] = truth[f"{g}_scored"] - truth[(name, g)]
            lines.append((f"{g}_scored", ((name, g), (name, g, "rest"))))
            hidden.add((name, g, "rest"))
    for name, m in doc["reimbursement"]["measures"].items():
        shown[("improved", name)] = m["verified_improvements"]
        truth[("improved", name)] = raw["reimbursement"]["measures"][name]["verified_improvements"]["value"]  # fmt: skip
        truth[("improved", name, "rest")] = truth["invited_scored"] - truth[("improved", name)]
        lines.append(("invited_scored", (("improved", name), ("improved", name, "rest"))))
        hidden.add(("improved", name, "rest"))
    return shown, truth, lines, {c: (0, INF) for c in hidden}, hidden


@pytest.fixture(scope="module")
def evaluation_inputs(small_region: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Invitations (a quarter of a program's invited, and three people who cannot be scored,
    so the invited in the region and the scored invited differ by three) and the exact
    evaluation on the synthetic original."""
    from brygga.prevention.evaluation import Invitations, evaluate, write_invitations
    from brygga.prevention.inputs import extract_inputs
    from brygga.prevention.programs import parse_program, plan_program
    from brygga.prevention.stratify import population_risk

    region, day = small_region.region, date.fromisoformat(INDEX)
    program = PROGRAM.replace("CAPACITY", "2")
    plan = plan_program(parse_program(yaml.safe_load(program)), region, index_date=day)
    pr = population_risk(extract_inputs(region, index_date=day))
    unscored = pr.inputs["person_id"][pr.category < 0][:3]
    ids = np.sort(np.r_[plan.person_id[plan.invited][::4], unscored])
    invitations = Invitations(ids, np.full(len(ids), np.datetime64(day, "D")))
    path = tmp_path_factory.mktemp("evaluation") / "invitations.csv"
    write_invitations(invitations, path)
    return path, evaluate(region, invitations, _raw())


@pytest.mark.parametrize("policy", list(POLICIES))
def test_evaluation_output_resists_subtraction(
    omop_small: Region,
    evaluation_inputs: tuple,
    policy: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    what = use_policy(policy, monkeypatch)
    invitations, raw = evaluation_inputs
    doc = run_json(["evaluate", str(invitations), "--region", str(omop_small.path)], capsys)
    assert doc["raw"] is False and raw["raw"] is True
    shown, truth, lines, known, hidden = evaluation_table(doc, raw)
    for total, members in lines:  # the reader's lines are true of the exact counts
        assert truth[total] == sum(truth[m] for m in members), (total, members)
    assert secrets_recovered(shown, truth, lines, what, known, hidden) == []
    # No estimate for a group whose count is suppressed (or below the minimum group size).
    for result in doc["outcomes"].values():
        if any(result[g]["value"] is None or result[g]["value"] < 10 for g in GROUPS):
            assert result["estimate"] is None and result["ci95"] is None
    for m in doc["reimbursement"]["measures"].values():
        if m["verified_improvements"]["value"] is None:
            assert m["beyond_comparison"] is None and m["gross_sek"] is None
    # Not vacuous: three invited people are not scored (a never-shown difference), some
    # counts are small, and with exact counts primary suppression alone gives the three away.
    assert truth["invited not scored"] == 3
    assert any(d["display"] == "<8" for d in shown.values())
    assert any(r["estimate"] is not None for r in doc["outcomes"].values())
    if policy == "rounding-1":
        naive = {c: RoundingPolicy(THRESHOLD, 1).apply(truth[c]) for c in shown}
        assert "invited not scored" in secrets_recovered(naive, truth, lines, what, known, hidden)
        assert any(d["display"] == SECONDARY for d in shown.values())
