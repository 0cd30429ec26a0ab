"""Prevention on a region: inputs, stratification, programs, equity, evaluation, C-statistic."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from brygga import audit
from brygga.cli import main
from brygga.errors import BryggaError
from brygga.prevention.evaluation import Invitations, att, evaluate, simulate_invitations
from brygga.prevention.inputs import Exclusion, Missing, extract_inputs
from brygga.prevention.programs import invitation_list, parse_program, plan_program
from brygga.prevention.stratify import population_risk, stratify
from brygga.prevention.validation import harrell_c, score2_c_statistic
from brygga.privacy.disclosure import policy_for
from brygga.records.store import RegionWriter


@pytest.fixture(scope="module")
def region(small_region):
    return small_region.region


@pytest.fixture(scope="module")
def inputs(region):
    return extract_inputs(region)


# --- Harrell's C --------------------------------------------------------------------------


def test_harrell_c_hand_made_example():
    # times 1..4; events at 1 and 3; risks rank them; usable pairs: (1,2) (1,3) (1,4) (3,4).
    risk = [0.9, 0.2, 0.5, 0.5]
    time = [1, 2, 3, 4]
    event = [True, False, True, False]
    c, pairs = harrell_c(risk, time, event)
    # (1 vs 2) 0.9>0.2 yes; (1 vs 3) 0.9>0.5 yes; (1 vs 4) yes; (3 vs 4) tie 0.5 -> 3.5 / 4
    assert pairs == 4
    assert c == pytest.approx(3.5 / 4)


def test_harrell_c_matches_brute_force():
    rng = np.random.default_rng(5)
    n = 80
    risk = rng.integers(0, 8, n).astype(float)
    time = rng.integers(0, 12, n).astype(float)
    event = rng.random(n) < 0.4
    concordant = tied = pairs = 0
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if time[j] > time[i] or (time[j] == time[i] and not event[j]):
                pairs += 1
                concordant += risk[i] > risk[j]
                tied += risk[i] == risk[j]
    c, p = harrell_c(risk, time, event)
    assert p == pairs
    assert c == pytest.approx((concordant + 0.5 * tied) / pairs)
    assert harrell_c(-risk, time, event)[0] == pytest.approx(1 - c)


def test_score2_c_statistic_on_small_region(region):
    result = score2_c_statistic(region)
    print(f"SCORE2 C-statistic on the small region: {result}")
    assert result.index_date == date(2016, 6, 30)
    assert result.events > 20
    assert result.c > 0.6


# --- inputs ---------------------------------------------------------------------------------


def test_inputs_follow_esc_assignment_and_report_missing(inputs):
    c = inputs.columns
    age = np.floor(c["age"])
    assert (inputs.model[age < 40] == -1).all()
    assert (inputs.exclusion[c["established_cvd"]] == Exclusion.ESTABLISHED_CVD).all()
    diabetic_middle = c["type2_diabetes"] & (age >= 40) & (age <= 69) & ~c["established_cvd"]
    assert diabetic_middle.any()
    assert (inputs.model[diabetic_middle] == 2).all()  # SCORE2-Diabetes
    assert (c["age_at_diagnosis"][diabetic_middle] <= age[diabetic_middle]).all()
    # Missing is reported, never filled: a person missing SBP has no SBP value.
    no_sbp = (inputs.missing & Missing.SBP) > 0
    assert no_sbp.any()
    assert np.isnan(c["sbp"][no_sbp]).all()
    counts = inputs.missing_counts()
    assert counts["sbp"] == int((no_sbp & (inputs.model >= 0)).sum())
    row = int(np.flatnonzero(no_sbp)[0])
    assert "sbp" in inputs.missing_fields(row)
    assert inputs.imputation is None


def test_imputation_is_explicit_and_marked(region, inputs):
    imputed = extract_inputs(region, impute=True)
    assert imputed.imputation and "median" in imputed.imputation
    assert imputed.missing_counts()["any"] == 0
    was_missing = (inputs.missing & Missing.SBP) > 0
    assert ((imputed.imputed[was_missing] & Missing.SBP) > 0).all()
    assert np.isfinite(imputed["sbp"][was_missing]).all()


def test_stratification_counts_pass_the_disclosure_policy(inputs):
    pr = population_risk(inputs)
    doc = stratify(pr, policy_for(synthetic=True), region_name="test")
    cells = [doc["overall"], *[c for d in doc["breakdowns"].values() for c in d.values()]]
    for cell in cells:
        for count in [cell["people"], *cell["categories"].values()]:
            v = count["value"]
            assert v is None or v == 0 or (v >= 8 and v % 5 == 0)
    assert set(doc["breakdowns"]) == {"sex", "age_band", "municipality", "deprivation_quintile"}
    assert doc["missing_inputs"]["any"]["value"] > 0
    exact = stratify(pr, policy_for(synthetic=True, raw=True))
    scored = int((pr.category >= 0).sum())
    assert sum(v["value"] for v in exact["overall"]["categories"].values()) == scored


def test_risk_cli_json_and_charts(region, tmp_path, capsys):
    code = main(["risk", "--region", str(region.path), "--json", "--out-dir", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["model"] == "applicable" and not doc["raw"]
    assert len(doc["charts"]) == 4
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in doc["charts"])
    assert main(["risk", "--region", str(region.path), "--model", "nonsense"]) == 2


# --- programs and the audit log ----------------------------------------------------------------

PROGRAM = {
    "name": "Heart check 50-69",
    "criteria": {"demographics": {"age": {"min": 50, "max": 69}}},
    "score": {"model": "applicable", "min_risk_percent": 5},
    "capacity": {"default": 3},
}


def test_program_plan_ranks_by_risk_within_capacity(region):
    plan = plan_program(parse_program(PROGRAM), region)
    assert len(plan.person_id) > 0
    assert (plan.risk_percent >= 5).all()
    for unit in np.unique(plan.care_site_id)[:10]:
        rows = plan.unit_rows(int(unit))
        assert (np.diff(plan.risk_percent[rows]) <= 0).all()  # highest risk first
        assert int(plan.invited[rows].sum()) == min(3, len(rows))
    age = plan.inputs["age"][np.searchsorted(plan.inputs["person_id"], plan.person_id)]
    assert ((age >= 50) & (age < 70)).all()


def test_invitation_list_is_audited_and_verifiable(region, tmp_path):
    plan = plan_program(parse_program(PROGRAM), region)
    unit = int(plan.care_site_id[0])
    log = tmp_path / "audit.jsonl"
    out = tmp_path / "list.csv"
    with pytest.raises(BryggaError, match="legal basis"):
        invitation_list(plan, care_unit=unit, legal_basis="", actor="a", out=out, audit_log=log)
    assert not log.exists() and not out.exists()
    doc = invitation_list(
        plan, care_unit=unit, legal_basis="HSL 2017:30", actor="nurse", out=out, audit_log=log
    )
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == doc["people"] == min(3, len(plan.unit_rows(unit)))
    assert all(len(r["personnummer"]) == 13 for r in rows)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert (out.stat().st_mode & 0o777) == 0o600
    record = json.loads(log.read_text().splitlines()[0])
    assert record["details"]["care_unit"] == unit and record["actor"] == "nurse"
    assert not any(r["personnummer"] in log.read_text() for r in rows)
    assert audit.verify(log).ok
    # Any change to a record breaks the chain.
    log.write_text(log.read_text().replace("nurse", "nobody"))
    broken = audit.verify(log)
    assert not broken.ok and broken.line == 1


def test_audit_chain_detects_deletion_and_truncation(tmp_path):
    log = tmp_path / "a.jsonl"
    heads = [audit.append("x", actor="t", details={"i": i}, path=log)["hash"] for i in range(3)]
    assert audit.verify(log).records == 3
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[2])  # a record removed from the middle
    assert not audit.verify(log).ok
    log.write_text("".join(lines[:2]))  # the last record removed: caught only with an anchor
    assert audit.verify(log).ok
    assert not audit.verify(log, anchor=heads[2]).ok
    assert main(["audit", "verify", "--log", str(log), "--anchor", heads[2]]) == 1


# --- equity -----------------------------------------------------------------------------------


def test_equity_flags_an_under_reached_high_need_group(inputs):
    from brygga.prevention.equity import equity

    pr = population_risk(inputs)
    quintile = inputs["deprivation_quintile"]
    target = pr.in_population
    # Reach everyone except most of quintile 5, which is then under-reached (if its need is high).
    rng = np.random.default_rng(1)
    reached = target & ((quintile != 5) | (rng.random(len(quintile)) < 0.2))
    doc = equity(pr, target, reached, policy_for(synthetic=True, raw=True), reach_definition="t")
    q = doc["breakdowns"]["deprivation_quintile"]
    assert q["5"]["reach"] < 0.3 and q["1"]["reach"] == 1.0
    assert q["5"]["under_reached"] == (q["5"]["need"] >= doc["overall"]["need"])
    assert not q["1"]["under_reached"]


# --- evaluation -------------------------------------------------------------------------------


def test_att_on_known_strata():
    stratum = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    treated = np.array([1, 1, 0, 0, 1, 0, 0, 0], bool)
    y = np.array([-10, -12, -2, -4, -6, 0, 1, -1], float)
    est, se, n_t, n_c = att(stratum, treated, y)
    # stratum 1: -11 - (-3) = -8 (2 treated); stratum 2: -6 - 0 = -6 (1 treated)
    assert est == pytest.approx((2 * -8 + 1 * -6) / 3)
    assert (n_t, n_c) == (3, 5) and se > 0


def _tiny_region(path: Path, start: date) -> list[int]:
    """40 men aged 55 with identical risk factors; the first 20 lower SBP by 10, others by 2."""
    n = 40
    ids = list(range(1, n + 1))
    before, after = start - timedelta(days=30), start + timedelta(days=90)
    meas = {"person_id": [], "measurement_source_value": [], "measurement_date": [], "v": []}

    def add(pid, code, day, value):
        meas["person_id"].append(pid)
        meas["measurement_source_value"].append(code)
        meas["measurement_date"].append(day)
        meas["v"].append(value)

    for pid in ids:
        for code, value in (("8480-6", 150.0), ("NPU01566", 6.0), ("NPU01567", 1.2)):
            add(pid, code, before, value)
        add(pid, "8480-6", after, 140.0 + (pid % 3 - 1) if pid <= 20 else 148.0 + (pid % 3 - 1))
    m = len(meas["person_id"])
    with RegionWriter(path) as w:
        w.write("person", pa.table({
            "person_id": ids, "gender_concept_id": [8507] * n, "year_of_birth": [start.year - 56] * n,
            "month_of_birth": [1] * n, "day_of_birth": [1] * n, "race_concept_id": [0] * n,
            "ethnicity_concept_id": [0] * n, "care_site_id": [1] * n,
        }))  # fmt: skip
        w.write("observation_period", pa.table({
            "observation_period_id": ids, "person_id": ids,
            "observation_period_start_date": [date(2000, 1, 1)] * n,
            "observation_period_end_date": [date(2030, 1, 1)] * n,
            "period_type_concept_id": [32817] * n,
        }))  # fmt: skip
        w.write("measurement", pa.table({
            "measurement_id": list(range(m)), "person_id": meas["person_id"],
            "measurement_concept_id": [0] * m, "measurement_date": meas["measurement_date"],
            "measurement_type_concept_id": [32817] * m, "value_as_number": meas["v"],
            "measurement_source_value": meas["measurement_source_value"],
        }))  # fmt: skip
        w.write("observation", pa.table({
            "observation_id": ids, "person_id": ids, "observation_concept_id": [0] * n,
            "observation_date": [before] * n, "observation_type_concept_id": [32817] * n,
            "observation_source_value": ["266919005"] * n,
        }))  # fmt: skip
        w.ensure_tables(["visit_occurrence", "condition_occurrence", "drug_exposure",
                         "procedure_occurrence", "death", "location", "care_site"])  # fmt: skip
        w.commit({"region": "tiny", "source": "synthetic", "period": {"end": "2029-12-31"}})
    return ids[:20]


def test_evaluation_recovers_a_known_effect(tmp_path):
    from brygga.records.store import Region

    start = date(2025, 1, 1)
    invited = _tiny_region(tmp_path / "tiny", start)
    region = Region.open(tmp_path / "tiny")
    inv = Invitations(np.array(invited), np.full(len(invited), np.datetime64(start, "D")))
    doc = evaluate(region, inv, policy_for(synthetic=True, raw=True), start=start, months=6)
    sbp = doc["outcomes"]["change_sbp"]
    # Drops 10 - d (invited) and 2 - d (others), d = pid % 3 - 1: mean d is +0.05 among ids
    # 1-20 and -0.05 among 21-40, so the true difference is -8 - 0.1 = -7.9.
    assert sbp["estimate"] == pytest.approx(-7.9)
    assert sbp["ci95"][0] < -7.9 < sbp["ci95"][1] and sbp["ci95"][1] < -7
    assert sbp["invited"]["value"] == 20 and sbp["comparison"]["value"] == 20
    assert doc["outcomes"]["change_hba1c"]["estimate"] is None  # no data: withheld, not zero
    pay = doc["reimbursement"]["measures"]["sbp"]
    # Invited: drops of 11, 10, 9 for pid % 3 = 0, 1, 2 -> 6 + 7 = 13 reach 10; others never.
    assert pay["verified_improvements"]["value"] == pay["beyond_comparison"]["value"] == 13
    assert pay["gross_sek"] == 13 * 500


def test_random_invitations_show_no_effect(region, inputs):
    start = date(2025, 6, 30)
    at_start = extract_inputs(region, index_date=start)
    pr = population_risk(at_start)
    inv = simulate_invitations(at_start["person_id"][pr.category >= 0], start, seed=2)
    doc = evaluate(region, inv, policy_for(synthetic=True), start=start, months=12)
    for name in ("change_sbp", "change_total_chol", "cvd_event"):
        r = doc["outcomes"][name]
        assert r["estimate"] is not None
        assert abs(r["estimate"]) < 4 * r["se"] + 1e-9, name  # no true effect
