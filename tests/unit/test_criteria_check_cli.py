"""``brygga criteria check FILE``: validates without a region and says what the criteria ask."""

from __future__ import annotations

from brygga.cli import main

DOC = """\
name: Incident type 2 diabetes started on metformin
entry:
  event: {condition: {codes: ["E11"]}}
  period: {from: 2015-01-01, to: 2020-12-31}
demographics: {age: {min: 40, max: 75}}
include:
  - drug: {codes: ["A10BA02"], within: {days_after: 90}}
  - any_of:
      - all_of:
          - demographics: {sex: [female]}
          - measurement: {codes: [ALT], value: {max_times_upper_normal: 2.5}, latest: true}
      - none_of:
          - visit: {types: [inpatient], within: {days_before: 365}}
exclude:
  - drug: {codes: ["A10"], within: {days_before: 3650, days_after: -1}}
  - drug: {codes: ["C10"], exposure: {current: true, min_days: 365}}
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), captured.err


def test_check_prints_the_rules_in_swedish_by_default(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(DOC, encoding="utf-8")
    code, out, _ = run(capsys, "criteria", "check", str(path))
    assert code == 0
    assert "giltiga urvalskriterier" in out
    assert "den första posten någonsin med diagnos med kod E11 (ICD10)" in out
    assert "ålder 40–75 år på indexdatum" in out
    assert "demografi: kön: kvinna" in out
    assert "ingen av:" in out
    # Numbers as a Swedish reader writes them, and one day in the singular.
    assert "från 3 650 dagar före indexdatum till 1 dag före indexdatum" in out
    assert "värde ≤ 2,5 × den övre gränsen" in out
    assert "pågående behandling på indexdatum" in out
    assert "NPU19651 (NPU), 1742-6 (LOINC)" in out


def test_check_in_english(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(DOC, encoding="utf-8")
    code, out, _ = run(capsys, "criteria", "check", str(path), "--lang", "en")
    assert code == 0
    assert "Each person has their own index date: their first record ever of diagnosis" in out
    assert "none of:" in out and "taken continuously for at least 365 days" in out
    assert "from 3,650 days before the index date to 1 day before the index date" in out
    assert "value ≤ 2.5 × the record's upper normal limit" in out


def test_unknown_kinds_and_fields_are_named_with_the_alternatives(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "include:\n  - diagnosis: {codes: [E11]}\n  - drug: {codes: [A10], exposure: {curent: true}}\n",
        encoding="utf-8",
    )
    code, _, err = run(capsys, "criteria", "check", str(path))
    assert code == 2
    err = " ".join(err.split())
    assert "include[0] (line 2): a rule is a mapping with exactly one key, one of: condition" in err
    assert "none_of" in err
    assert (
        "include[1].drug.exposure.curent (line 3): unknown field; allowed here: current, min_days"
        in err
    )
