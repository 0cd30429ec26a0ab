"""The demo's example count, which the cohort engine answers, agrees with the same question
written as plain DuckDB SQL (an independent statement of the population and the rules)."""

from __future__ import annotations

import pytest
import yaml

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import eligible_persons
from brygga.demo import EXAMPLE

EXAMPLE_SQL = """
WITH params AS (SELECT DATE '{end}' AS d),
people AS (SELECT *, make_date(year_of_birth, month_of_birth, day_of_birth) AS born FROM person)
SELECT count(*) FROM people p, params
WHERE date_diff('year', p.born, params.d)  -- completed years: minus one before the birthday
      - (strftime(p.born, '%m%d') > strftime(params.d, '%m%d'))::INT BETWEEN 40 AND 75
  AND EXISTS (SELECT 1 FROM observation_period o WHERE o.person_id = p.person_id
              AND params.d BETWEEN o.observation_period_start_date AND o.observation_period_end_date)
  AND NOT EXISTS (SELECT 1 FROM death x WHERE x.person_id = p.person_id AND x.death_date <= params.d)
  AND EXISTS (SELECT 1 FROM condition_occurrence c WHERE c.person_id = p.person_id
              AND c.condition_source_value LIKE 'E11%' AND c.condition_start_date <= params.d)
  AND EXISTS (SELECT 1 FROM drug_exposure x WHERE x.person_id = p.person_id
              AND x.drug_source_value = 'A10BA02'
              AND x.drug_exposure_start_date BETWEEN params.d - INTERVAL 1 YEAR AND params.d)
  AND (SELECT arg_max(m.value_as_number, m.measurement_date) FROM measurement m
       WHERE m.person_id = p.person_id AND m.measurement_source_value = 'NPU27300'
         AND m.measurement_date BETWEEN params.d - INTERVAL 1 YEAR AND params.d) >= 53
"""

CRITERIA = """
name: Type 2 diabetes on metformin, latest HbA1c >= 53, age 40-75
index_date: {end}
demographics:
  age: {{min: 40, max: 75}}
include:
  - condition: {{codes: ["E11"], vocabulary: ICD10}}
  - drug: {{codes: ["A10BA02"], vocabulary: ATC, within: {{days_before: 365}}}}
  - measurement: {{codes: ["HbA1c"], value: {{min: 53}}, latest: true, within: {{days_before: 365}}}}
"""


def test_example_count_matches_the_engine(small_region) -> None:
    region = small_region.region
    end = region.manifest["period"]["end"]
    sql_count = region.duckdb().execute(EXAMPLE_SQL.format(end=end)).fetchone()[0]
    criteria = parse_criteria(yaml.safe_load(CRITERIA.format(end=end)))
    assert criteria == parse_criteria(EXAMPLE | {"index_date": end})  # the demo asks this
    engine = eligible_persons(criteria, region)
    assert sql_count > 20  # the question has an answer in a 14,000-person region
    assert sql_count == len(engine)


def test_the_ctgov_sample_is_looked_for_beside_the_checkout() -> None:
    """``make demo`` looked one folder too high (``/shared`` from the main checkout) and
    skipped the ClinicalTrials.gov studies without a word."""
    from pathlib import Path

    from brygga.demo import CTGOV_SAMPLE

    repo = Path(__file__).resolve().parents[2]
    assert repo.parent / "shared/data/ctgov/ctgov-v2-studies-100.json" == CTGOV_SAMPLE


def test_the_demo_stops_at_once_when_the_ctgov_file_is_missing(tmp_path, monkeypatch, capsys):
    from brygga.demo import main

    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    assert main(["--no-serve", "--ctgov", str(tmp_path / "missing.json")]) == 2
    message = capsys.readouterr().err
    assert "missing.json does not exist" in message and "--no-ctgov" in message
    assert not (tmp_path / "demo").exists()  # nothing generated before the check


def test_the_demo_region_and_database_are_the_ones_every_command_opens(tmp_path, monkeypatch):
    from brygga.db.session import database_url
    from brygga.demo import demo_region
    from brygga.platform import Brygga

    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    platform = Brygga()
    assert demo_region(platform) == tmp_path / "demo" / "skane"
    assert platform.database == database_url() == f"sqlite:///{tmp_path / 'brygga.db'}"


@pytest.mark.slow
def test_brygga_match_after_the_demo_opens_the_demo_s_database(
    small_region, tmp_path, monkeypatch, capsys
):
    """Issue 21: ``brygga match --region data/demo/skane`` opened another, empty database."""
    import io
    import json

    from argon2 import PasswordHasher
    from rich.console import Console

    from brygga.cli import main
    from brygga.demo import front_door
    from brygga.studies import staff

    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        front_door(small_region.region, Console(file=io.StringIO()), serve=False, port=0)
    finally:
        staff.use_hasher(PasswordHasher())
    assert main(["match", "--region", str(small_region.region.path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["invited"]) == 3  # the demo's own three studies, no ClinicalTrials.gov file
