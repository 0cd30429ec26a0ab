"""What newcomers tripped over on the command line (issue 14 item 6, issue 21 item 8): each
test runs the command as a user would and reads what it prints."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from brygga import clock
from brygga.cli import main

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "examples" / "programs" / "hjartkoll-50-69.yaml"
README_CRITERIA = REPO / "bench" / "criteria" / "t2d_metformin_hba1c.yaml"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")  # rich: one line per table row
    return tmp_path / "data"


@pytest.fixture
def region(small_region):
    return small_region.region


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def after_the_records(region) -> datetime:
    end = date.fromisoformat(region.manifest["period"]["end"])
    return datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=158)


def test_the_readme_s_first_feasibility_example_counts_people(capsys, region):
    """It counted 0: the index date defaulted to today, after the region's records end."""
    end = region.manifest["period"]["end"]
    with clock.frozen(after_the_records(region)):
        code, out, _ = run(capsys, "feasibility", README_CRITERIA, "--region", region.path)
        assert code == 0
        assert f"note: index date {end}: the region's records end on that day" in out
        assert f"index date {end}:" in out
        code, out, _ = run(
            capsys, "feasibility", README_CRITERIA, "--region", region.path, "--json"
        )
    doc = json.loads(out)
    assert doc["index_date"] == end and doc["notes"]
    assert doc["count"]["value"] and doc["count"]["value"] % 5 == 0  # disclosed, not 0


def test_the_example_program_runs_and_names_its_care_units(capsys, region):
    code, out, err = run(capsys, "program", PROGRAM, "--region", region.path)
    assert code == 0, err
    assert "Hjärtkoll 50-69" in out
    assert "Vårdcentralen" in out  # care units by name, not only their ids
    code, out, _ = run(capsys, "program", PROGRAM, "--region", region.path, "--json")
    units = json.loads(out)["units"]
    assert units and all(u["name"] for u in units.values())


def test_equity_says_why_there_is_no_correlation(capsys, region):
    from brygga.prevention.equity import need_reach_gradient

    cells = {str(q): {"need": 0.6, "reach": None} for q in range(1, 6)}
    cells["1"]["reach"] = 0.5
    gradient = need_reach_gradient(cells)
    assert gradient["correlation"] is None
    assert gradient["reason"].startswith("1 of 5 groups have both need and reach shown")
    flat = {str(q): {"need": 0.5 + q / 100, "reach": 0.5} for q in range(1, 6)}
    assert "reach is the same (50%) in every group" in need_reach_gradient(flat)["reason"]
    code, out, _ = run(capsys, "equity", "--region", region.path, "--program", PROGRAM)
    assert code == 0
    assert "None" not in out
    assert "deprivation quintile (1 least, 5 most deprived)" in out
    assert "need-reach correlation" in out


def test_synth_report_is_a_table_not_raw_markdown(capsys, region):
    code, out, _ = run(capsys, "synth-report", region.path)
    assert code == 0
    assert "|---" not in out and "| group |" not in out
    assert "targets within tolerance" in out
    row = next(line for line in out.splitlines() if "residents (total)" in line)
    assert row.count("│") == 7  # one row of six cells: not split across lines
    # The Markdown file keeps its rows whole too: a cell's own "|" is escaped.
    from brygga.synth.calibration import calibration_report, render_report

    text = render_report(region, calibration_report(region))
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert {line.replace("\\|", "").count("|") for line in table} == {8}


def test_region_info_shows_the_period_the_records_cover(capsys, region, omop_small):
    start, end = region.manifest["period"]["start"], region.manifest["period"]["end"]
    code, out, _ = run(capsys, "region-info", region.path)
    assert code == 0 and f"{start} to {end}" in out
    code, out, _ = run(capsys, "region-info", region.path, "--json")
    assert json.loads(out)["records_cover"] == {"start": start, "end": end}


@pytest.fixture(scope="module")
def synthea(tmp_path_factory, shared_dir):
    from brygga.ingest.omop import import_omop

    out = tmp_path_factory.mktemp("synthea") / "region"
    return import_omop(shared_dir / "data" / "omop-synthea27nj", out)


def test_attrition_on_an_imported_region_names_its_concepts(capsys, synthea, tmp_path):
    criteria = tmp_path / "t2d.yaml"
    criteria.write_text(
        "name: Type 2 diabetes\n"
        "include:\n  - condition: {codes: ['44054006'], vocabulary: SNOMED}\n"
        "exclude:\n  - condition: {codes: ['201826'], vocabulary: OMOP}\n"
    )
    code, out, err = run(capsys, "feasibility", criteria, "--region", synthea.path, "--json")
    assert code == 0, err
    steps = [a["step"] for a in json.loads(out)["attrition"]]
    assert "Include: condition SNOMED 44054006 (Type 2 diabetes mellitus)" in steps[2]
    assert "OMOP 201826 (Type 2 diabetes mellitus)" in steps[3]
    code, out, _ = run(capsys, "region-info", synthea.path)
    assert "records cover" in out and "1955-03-07 to 2022-10-10" in out


def test_a_prevention_list_is_an_invitation_file_evaluate_reads(capsys, region, tmp_path):
    """The list was refused by evaluate: missing column(s) invitation_date."""
    end = date.fromisoformat(region.manifest["period"]["end"])
    start = (end - timedelta(days=400)).isoformat()  # 12 months of follow-up in the records
    code, out, _ = run(capsys, "program", PROGRAM, "--region", region.path, "--index-date",
                       start, "--json")  # fmt: skip
    unit = next(u for u, c in json.loads(out)["units"].items() if c["eligible"]["value"])
    listing = tmp_path / "list.csv"
    code, out, err = run(
        capsys, "prevention-list", PROGRAM, "--region", region.path, "--care-unit", unit,
        "--legal-basis", "HSL 2017:30 3 kap", "--actor", "sjuksköterska", "--out", listing,
        "--index-date", start,
    )  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(listing.read_text(encoding="utf-8").splitlines()))
    assert rows and {r["invitation_date"] for r in rows} == {start}
    code, out, err = run(capsys, "evaluate", listing, "--region", region.path, "--months", "12",
                         "--program", PROGRAM, "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["start"] == start
    assert doc["invited_scored"]["display"]
