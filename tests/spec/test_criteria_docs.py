"""Every YAML example in docs/criteria.md is valid and runs (reference and DuckDB agree)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from brygga import documents
from brygga.cohort import criteria
from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import open_engine
from tests.spec.conftest import build_region, death, event, person, visit

DOC = Path(__file__).resolve().parents[2] / "docs" / "criteria.md"
BLOCKS = re.findall(r"```(yaml|json)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
YAML_BLOCKS = [text for kind, text in BLOCKS if kind == "yaml"]


def test_the_doc_has_examples():
    assert len(YAML_BLOCKS) >= 8
    assert all(json.loads(text) for kind, text in BLOCKS if kind == "json")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    day = date(2024, 6, 1)
    people = [
        person(i, born=date(1940 + 5 * i, 5, 5), sex="female" if i % 2 else "male")
        for i in range(1, 9)
    ]
    rows = [
        event("condition", 1, "E119", day),
        event("condition", 2, "I109", day),
        event("condition", 3, "I509", day),
        event("condition", 4, "N183", day),
        event("condition", 5, "E119", day, concept=201826),
        event("drug", 1, "A10BA02", day),
        event("drug", 1, "A10BA02", date(2024, 9, 1)),
        event("measurement", 1, "NPU27300", day, value=60),
        event("measurement", 2, "8480-6", day, value=150),
        event("measurement", 4, "NPU04998", day, value=250),
        event("measurement", 6, "39156-5", day, value=32),
        event("observation", 6, "77176002", day),
        visit(7, day, 9201),
        visit(7, date(2024, 8, 1), 9201),
        death(3, date(2024, 3, 1)),
        # criteria v2: code groups, exclude_codes, windows before or after the index date
        event("drug", 2, "L01XA01", day),
        event("drug", 4, "L01XX05", day),
        event("procedure", 2, "FNG05", day),
        event("drug", 5, "A10BA02", date(2025, 2, 1)),
        event("measurement", 2, "NPU19651", date(2024, 12, 1), value=200, normal=(10, 50)),
        event("measurement", 1, "NPU03230", date(2024, 12, 1), value=4.1, normal=(3.5, 4.4)),
        event("measurement", 2, "2823-3", date(2024, 12, 1), value=4.1, vocabulary="LOINC"),
        event("measurement", 3, "NPU02319", date(2024, 12, 1), value=125),
        event("measurement", 4, "NPU02319", date(2024, 12, 1), value=125),
        visit(4, date(2024, 10, 1), 9202),
        # entry: a first diabetes diagnosis in the period, metformin after; an infarction
        event("condition", 6, "E119", date(2017, 1, 1)),
        event("drug", 6, "A10BA02", date(2017, 2, 1)),
        event("condition", 3, "I219", date(2023, 6, 1)),
        # exposure: a statin every 90 days through 2024 (the default supply)
        *(event("drug", 8, "C10AA05", date(2024, 1, 1) + timedelta(days=90 * i)) for i in range(5)),
    ]
    return build_region(tmp_path_factory.mktemp("docs") / "region", people, rows)


@pytest.mark.parametrize("text", YAML_BLOCKS, ids=lambda t: t.splitlines()[0][:40])
def test_example_validates_and_runs(text, region):
    document = yaml.safe_load(text)
    if "name" not in document:  # a fragment of a rule, e.g. a window
        document = {"include": [{"condition": {"codes": ["E11"], **document}}]}
    criteria = parse_criteria(document)
    index_date = criteria.effective_index_date(date(2025, 1, 1))
    expected = open_engine("reference", region).evaluate(criteria, index_date)
    assert open_engine("duckdb", region).evaluate(criteria, index_date) == expected


def test_the_limits_are_documented_with_their_values():
    text = DOC.read_text(encoding="utf-8")
    for module, name in [(criteria, "MAX_RULES"), (criteria, "MAX_NESTING"),
                         (criteria, "MAX_CODES"), (criteria, "MAX_MUNICIPALITIES"),
                         (criteria, "MAX_NAME"), (criteria, "MAX_DESCRIPTION"),
                         (documents, "MAX_DEPTH"), (documents, "MAX_NODES")]:  # fmt: skip
        assert re.search(rf"\(`{name}`\) \| {getattr(module, name)} \|", text), name
