"""The demo's plain-SQL example count agrees with the cohort engine on the same question."""

from __future__ import annotations

import yaml

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import eligible_persons
from brygga.demo import EXAMPLE_SQL

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
    engine = eligible_persons(criteria, region)
    assert sql_count > 20  # the question has an answer in a 14,000-person region
    assert sql_count == len(engine)
