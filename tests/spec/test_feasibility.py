"""Feasibility results and the ``brygga feasibility`` command (DuckDB; engines agree elsewhere)."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date

import pytest
import yaml

from brygga.cli import main
from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import eligible_persons, feasibility
from brygga.cohort.reference import ReferenceEngine
from brygga.errors import InputError
from tests.spec.conftest import build_region, death, event, person

CRITERIA = """\
name: Diabetes without MI
index_date: 2025-06-15
demographics:
  age: {min: 18}
include:
  - condition: {codes: [E11]}
exclude:
  - condition: {codes: [I21]}
"""


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """40 people: 1-33 have diabetes, 31-33 also an MI, 34 died; ages 35 to 74."""
    people = [
        person(
            i,
            born=date(1950 + i, 1, 1),
            sex="male" if i % 3 else "female",
            municipality="0180" if i <= 20 else "1280",
        )
        for i in range(1, 41)
    ]
    rows = [event("condition", i, "E119", date(2024, 1, 1)) for i in range(1, 34)]
    rows += [event("condition", i, "I219", date(2024, 2, 1)) for i in (31, 32, 33)]
    rows.append(death(34, date(2020, 1, 1)))
    return build_region(tmp_path_factory.mktemp("feas") / "region", people, rows)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """The command records every question (operational database, audit log) here."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BRYGGA_DATABASE_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture
def criteria_file(tmp_path):
    path = tmp_path / "criteria.yaml"
    path.write_text(CRITERIA)
    return path


def run_cli(capsys, *args):
    code = main(["feasibility", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_result_counts_attrition_and_breakdowns_are_disclosed(region):
    result = feasibility(parse_criteria(yaml.safe_load(CRITERIA)), region)
    assert result.count == {"value": 30, "display": "30"}
    assert [a["count"]["value"] for a in result.attrition] == [40, 40, 35, 30]
    assert result.attrition[2]["step"] == "Include: condition ICD10 E11 before the index date"
    # 30 eligible: persons 1-30; female when i % 3 == 0 (10 of them), 0180 for i <= 20.
    assert result.breakdowns["sex"] == {
        "female": {"value": 10, "display": "10"},
        "male": {"value": 20, "display": "20"},
    }
    assert result.breakdowns["municipality"] == {
        "0180": {"value": 20, "display": "20"},
        "1280": {"value": 10, "display": "10"},
    }
    # Born 1951-1980, aged 44-74 on 2025-06-15: the 40-49 band holds persons 26-30 (5): "<8".
    assert result.breakdowns["age_band"]["40-49"] == {"value": None, "display": "<8"}
    assert not result.raw


def test_raw_counts_on_a_synthetic_region(region):
    criteria = parse_criteria(yaml.safe_load(CRITERIA))
    result = feasibility(criteria, region, raw=True)
    assert result.raw and result.breakdowns["age_band"]["40-49"] == {"value": 5, "display": "5"}
    assert [a["count"]["value"] for a in result.attrition] == [39, 39, 33, 30]


def test_eligible_persons(region):
    criteria = parse_criteria(yaml.safe_load(CRITERIA))
    assert eligible_persons(criteria, region) == list(range(1, 31))
    assert eligible_persons(criteria, region, engine="reference") == list(range(1, 31))


def test_cli_json(region, criteria_file, capsys):
    code, out, _ = run_cli(capsys, criteria_file, "--region", region.path, "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"count", "raw", "attrition", "breakdowns", "engine", "elapsed_ms"}
    assert doc["count"] == {"value": 30, "display": "30"}
    assert doc["raw"] is False and doc["engine"] == "duckdb"
    # Fewer people than the policy shows have I21 in this small region: the warning says only
    # what the release gate lets it say (none or too few), never that some have it.
    assert doc["warnings"] == [
        "none or too few people to show have the ICD10 code I21 in the region's "
        "condition_occurrence: is it written as the region's records write it?"
    ]
    assert doc["attrition"][0] == {
        "step": "Alive and under observation on 2025-06-15",
        "count": {"value": 40, "display": "40"},
    }
    assert set(doc["breakdowns"]) == {"sex", "age_band", "municipality"}
    assert isinstance(doc["elapsed_ms"], int)


def test_cli_index_date_overrides_the_criteria(region, criteria_file, capsys):
    code, out, _ = run_cli(
        capsys,
        criteria_file,
        "--region",
        region.path,
        "--json",
        "--raw",
        "--index-date",
        "2024-01-15",
    )
    doc = json.loads(out)
    assert code == 0 and doc["raw"] is True and doc["index_date"] == "2024-01-15"
    # The MI (2024-02-01) is after this index date: nobody is excluded by it.
    assert doc["count"]["value"] == 33


def test_cli_table_output(region, criteria_file, capsys):
    code, out, _ = run_cli(capsys, criteria_file, "--region", region.path)
    assert code == 0
    assert "Diabetes without MI" in out and "Attrition" in out and "Municipality" in out


def test_whole_region_is_allowed_but_said(region, tmp_path, capsys):
    path = tmp_path / "all.yaml"
    path.write_text("name: everyone\nindex_date: 2025-06-15\n")
    code, out, _ = run_cli(capsys, path, "--region", region.path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["count"]["value"] == 40
    assert "whole region" in doc["warnings"][0]
    code, _, err = run_cli(capsys, path, "--region", region.path)
    assert code == 0 and "whole region" in err


def test_raw_is_refused_for_a_non_synthetic_region(tmp_path, criteria_file, capsys):
    real = build_region(tmp_path / "real", [person(1)], source="omop-import")
    code, out, err = run_cli(capsys, criteria_file, "--region", real.path, "--raw", "--json")
    assert code == 2 and out == "" and "only allowed for synthetic regions" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index-date", "2025-13-01"], "is not a date"),
        (["--engine", "postgres"], "unknown engine 'postgres'"),
    ],
)
def test_cli_bad_options(region, criteria_file, capsys, args, message):
    code, out, err = run_cli(capsys, criteria_file, "--region", region.path, *args)
    assert code == 2 and out == "" and message in err


def test_spark_without_pyspark_names_the_extra_in_one_line(
    region, criteria_file, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # what an install without the extra sees
    code, out, err = run_cli(capsys, criteria_file, "--region", region.path, "--engine", "spark")
    assert code == 2 and out == ""
    assert err.strip() == "error: the Spark engine needs PySpark: pip install 'brygga[spark]'"


def test_cli_bad_criteria_and_regions(region, tmp_path, criteria_file, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("include:\n  - measurement: {codes: [HbA1c], value: {min: 60, max: 50}}\n")
    code, _, err = run_cli(capsys, bad, "--region", region.path)
    assert (
        code == 2
        and "include[0].measurement.value (line 2): min (60) is greater than max (50)" in err
    )
    code, _, err = run_cli(capsys, criteria_file, "--region", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err
    old = build_region(tmp_path / "old", [person(1)])
    manifest = json.loads((old.path / "manifest.json").read_text())
    (old.path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 0}))
    code, _, err = run_cli(capsys, criteria_file, "--region", old.path)
    assert code == 2 and "schema version 0" in err


def test_the_command_audits_every_question_and_guards_other_regions(
    region, criteria_file, data_dir, capsys, tmp_path, monkeypatch
):
    code, _, err = run_cli(capsys, criteria_file, "--region", region.path, "--json")
    assert code == 0, err
    log = data_dir / "audit" / "audit.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["action"] for r in records] == ["feasibility.question"]
    assert records[0]["actor"].startswith("cli:")
    assert records[0]["details"]["result"] == "shown" and "E11" not in log.read_text()
    # On a region that is not synthetic the question guard's limits hold for the command too.
    other = tmp_path / "omop"
    shutil.copytree(region.path, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps(manifest | {"source": "omop-import"}))
    monkeypatch.setenv("BRYGGA_QUESTIONS_SWEEP_LIMIT", "1")
    assert run_cli(capsys, criteria_file, "--region", other, "--json")[0] == 0
    moved = tmp_path / "moved.yaml"
    moved.write_text(CRITERIA.replace("min: 18", "min: 19"))
    code, out, err = run_cli(capsys, moved, "--region", other, "--json")
    assert code == 2 and out == ""
    assert "reported to the research office" in err


def test_the_reference_engine_refuses_cell_keys_with_a_user_error():
    """The engine interface is complete: the reference evaluator has ``keys`` too, and says
    (exit code 2, no traceback) that the cell key method needs another engine."""
    criteria = parse_criteria({"name": "everyone", "index_date": "2026-01-01"})
    with pytest.raises(InputError, match="needs the duckdb or spark engine, not 'reference'"):
        ReferenceEngine({}).keys(criteria, date(2026, 1, 1))
