"""``brygga risk-calc`` and ``brygga findrisc``: output, JSON contract and exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from brygga.cli import app, main

PERSON = ["--age", "50", "--sex", "male", "--sbp", "140", "--total-chol", "6.3", "--hdl", "1.4"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_contract_from_the_issue(capsys):
    # Issue 5's example: {"model": "score2", "risk_region": "moderate", "risk_percent": 8.1,
    # "category": "high"}; HeartScore gives 8 % for this person (RiskScorescvd tests).
    code, out, _ = run(capsys, "risk-calc", "--model", "score2", "--risk-region", "moderate", *PERSON, "--smoker", "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert {k: doc[k] for k in ("model", "risk_region", "risk_percent", "category")} == {
        "model": "score2",
        "risk_region": "moderate",
        "risk_percent": 8.1,
        "category": "high",
    }
    assert doc["valid_ages"] == {"min": 40, "max": 69}


def test_human_output_shows_model_risk_and_category(capsys):
    code, out, _ = run(capsys, "risk-calc", *PERSON, "--smoker", "--risk-region", "very-high")
    assert code == 0
    assert "SCORE2 (ages 40-69)" in out and "very-high" in out
    # 15.06 % by the formula; HeartScore shows 15 % (RiskScorescvd tests, SCORE2 Table 4 case).
    assert "15.1 %" in out


def test_model_is_chosen_by_age_and_diabetes(capsys):
    _, out, _ = run(capsys, "risk-calc", "--age", "75", "--sex", "female", "--smoker", "--sbp", "140", "--total-chol", "5.5", "--hdl", "1.3", "--risk-region", "low", "--json")  # fmt: skip
    doc = json.loads(out)
    assert (doc["model"], doc["risk_percent"]) == ("score2-op", 15.2)  # risk-scores.md example
    assert doc["category"] == "very-high"  # ESC 2021, 70+: >=15 % is very high


def test_score2_diabetes_with_egfr(capsys):
    code, out, _ = run(
        capsys, "risk-calc", "--model", "score2-diabetes", "--risk-region", "very-high",
        "--age", "60", "--sex", "male", "--sbp", "140", "--total-chol", "5.5", "--hdl", "1.3",
        "--diabetes", "--age-at-diagnosis", "50", "--hba1c", "70", "--egfr", "60", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert (doc["risk_percent"], doc["category"]) == (31.2, "very-high")  # risk-scores.md


def test_score2_diabetes_without_diabetes(capsys):
    # RiskScorescvd's SCORE2_Diabetes with diabetes = 0 (its diabetes terms drop out, HbA1c
    # and eGFR stay): 6.1 % for a low-region man of 60, non-smoker, SBP 140, TC 5.5, HDL 1.3.
    code, out, _ = run(
        capsys, "risk-calc", "--model", "score2-diabetes", "--risk-region", "low",
        "--age", "60", "--sex", "male", "--sbp", "140", "--total-chol", "5.5", "--hdl", "1.3",
        "--hba1c", "50", "--egfr", "90", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["model"] == "score2-diabetes"
    assert (doc["risk_percent"], doc["category"]) == (6.1, "moderate")


def test_creatinine_instead_of_egfr(capsys):
    # 60-year-old man, creatinine 1.09 mg/dL = 96.36 µmol/L. eGFR by CKD-EPI 2021, by hand:
    # 142 x (1.09/0.9)^-1.2 x 0.9938^60 = 142 x 0.794656 x 0.688556 = 77.70.
    code, out, _ = run(
        capsys, "risk-calc", "--diabetes", "--age", "60", "--sex", "male", "--sbp", "140",
        "--total-chol", "5.5", "--hdl", "1.3", "--age-at-diagnosis", "60", "--hba1c", "50",
        "--creatinine", "96.356", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["model"] == "score2-diabetes"
    assert doc["egfr"] == 77.7 and doc["egfr_source"] == "CKD-EPI 2021 from creatinine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--age", "30", *PERSON[2:]], "age must be between 40 and 69 years for SCORE2"),
        ([*PERSON[:8], "--hdl", "9"], "hdl must be between 0.1 and 5 mmol/L"),
        ([*PERSON, "--model", "score2", "--diabetes"], "score2 is for people without diabetes"),
        ([*PERSON, "--model", "score4"], "model must be one of score2, score2-op, score2-diabetes"),
        ([*PERSON, "--risk-region", "medium"], "risk region must be one of"),
        ([*PERSON, "--hba1c", "50"], "hba1c only apply to score2-diabetes, not score2"),
        ([*PERSON, "--diabetes", "--hba1c", "50", "--age-at-diagnosis", "45"], "exactly one of egfr and creatinine"),
        ([*PERSON, "--diabetes", "--egfr", "90", "--creatinine", "80", "--hba1c", "50", "--age-at-diagnosis", "45"], "exactly one of egfr and creatinine"),
        ([*PERSON, "--diabetes", "--egfr", "90"], "score2-diabetes needs hba1c"),
        ([*PERSON, "--diabetes", "--egfr", "90", "--hba1c", "50"], "needs age_at_diagnosis for a person with diabetes"),
        ([*PERSON, "--model", "score2-diabetes", "--egfr", "90", "--hba1c", "50", "--age-at-diagnosis", "45"], "age_at_diagnosis only applies to a person with diabetes"),
        ([*PERSON, "--sex", "other"], 'sex must be "male" or "female"'),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_the_message(capsys, args, message):
    code, out, err = run(capsys, "risk-calc", *args, "--json")
    assert code == 2
    assert out == ""
    assert message in " ".join(err.split())


def test_findrisc_command(capsys):
    # By hand: 50 years (2) + BMI 27 (1) + man's waist 95 (3) + inactive (2) = 8,
    # "slightly elevated" (7-11), 1 in 25.
    args = ["findrisc", "--age", "50", "--sex", "male", "--bmi", "27", "--waist", "95",
            "--inactive", "--vegetables", "--family-history", "none"]  # fmt: skip
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["points"], doc["category"], doc["risk_10y_type2_diabetes"]) == (8, "slightly-elevated", "1 in 25")  # fmt: skip
    code, out, _ = run(capsys, *args)
    assert code == 0 and "8 of 26" in out


def test_findrisc_requires_every_answer(capsys):
    # A missing option is a usage error, handled by Typer itself (exit 2).
    missing = CliRunner().invoke(app, ["findrisc", "--age", "50", "--sex", "male", "--bmi", "27", "--waist", "95", "--family-history", "none"])  # fmt: skip
    assert missing.exit_code == 2 and "--active" in missing.output
    code, _, err = run(capsys, "findrisc", "--age", "50", "--sex", "male", "--bmi", "27", "--waist", "95", "--active", "--vegetables", "--family-history", "aunt")  # fmt: skip
    assert code == 2 and "family_history must be one of" in err
