"""The criteria language: parsing, normalization, error messages, fingerprint."""

from __future__ import annotations

from datetime import date

import pytest

from brygga.cohort.criteria import load_criteria, parse_criteria
from brygga.errors import InputError, NotFoundError


def error_of(data) -> str:
    with pytest.raises(InputError) as info:
        parse_criteria(data)
    return info.value.message


def rule(**kwargs):
    return {"include": [kwargs]}


def test_codes_are_normalized_and_aliases_resolved():
    c = parse_criteria(
        {
            "include": [
                {"condition": {"codes": ["e11.9", "I10"]}},
                {"measurement": {"codes": ["hba1c", "SBP"], "value": {"min": 53}}},
                {"observation": {"codes": ["smoker"], "latest": True, "among": ["never_smoker"]}},
                {"condition": {"codes": ["0201826"], "vocabulary": "omop"}},
            ]
        }
    )
    assert c.include[0].condition.codeset == (("ICD10", "E119"), ("ICD10", "I10"))
    assert c.include[1].measurement.codeset == (("NPU", "NPU27300"), ("LOINC", "8480-6"))
    assert c.include[2].observation.among_codeset == (
        ("SNOMED", "77176002"),
        ("SNOMED", "266919005"),
    )
    assert c.include[3].condition.codeset == (("OMOP", "201826"),)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "include": [
                    {"condition": {"codes": ["E11"]}},
                    {"drug": {"codes": ["A10"]}},
                    {"measurement": {"codes": ["HbA1c"], "value": {"min": "x"}}},
                ]
            },
            "include[2].measurement.value.min: must be a number",
        ),
        (
            rule(measurement={"codes": ["HbA1c"], "value": {"min": True}}),
            "include[0].measurement.value.min: must be a number",
        ),
        (
            rule(measurement={"codes": ["HbA1c"], "value": {"min": 60, "max": 50}}),
            "include[0].measurement.value: min (60) is greater than max (50)",
        ),
        (
            rule(measurement={"codes": ["HbA1c"], "value": {}}),
            "include[0].measurement.value: give min, max, above, below or a bound on the normal range",
        ),
        (
            rule(condition={"codes": ["11E"]}),
            "include[0].condition.codes: '11E' is not a valid ICD10 code",
        ),
        (rule(drug={"codes": ["A1"]}), "include[0].drug.codes: 'A1' is not a valid ATC code"),
        (
            rule(condition={"codes": ["E11"], "vocabulary": "ICD9"}),
            "include[0].condition.vocabulary: unknown vocabulary 'ICD9'",
        ),
        (rule(condition={"codes": "E11"}), "include[0].condition.codes: must be a list of codes"),
        (rule(condition={"codes": []}), "include[0].condition.codes: must not be empty"),
        (
            rule(condition={"codes": [11]}),
            "include[0].condition.codes[0]: must be a text string (put it in quotes)",
        ),
        (rule(condition={"codes": ["0"], "vocabulary": "OMOP"}), "concept id 0 means 'no concept'"),
        (
            rule(measurement={"codes": ["Glucose"]}),
            "include[0].measurement.codes: 'Glucose' is not a known alias",
        ),
        (
            rule(condition={"codes": ["E11"], "within": {"days_before": -1}}),
            "include[0].condition.within: the window ends before it starts",
        ),
        (
            rule(condition={"codes": ["E11"], "within": {"weeks": 2}}),
            "include[0].condition.within.weeks: unknown field",
        ),
        (
            rule(condition={"codes": ["E11"], "min_count": 0}),
            "include[0].condition.min_count: must be >= 1",
        ),
        (
            rule(measurement={"codes": ["HbA1c"], "latest": True, "min_count": 2}),
            "latest and min_count > 1 cannot be combined",
        ),
        (
            rule(measurement={"codes": ["HbA1c"], "among": ["SBP"]}),
            "among is only meaningful with latest: true",
        ),
        (
            rule(death={"within": {"days_before": 10}}),
            "include[0].death.within: days_after must be > 0",
        ),
        (
            rule(visit={"types": ["virtual"]}),
            "include[0].visit.types[0]: must be one of 'outpatient', 'inpatient' or 'emergency'",
        ),
        (
            {"include": [{"conditions": {"codes": ["E11"]}}]},
            "include[0]: a rule is a mapping with exactly one key",
        ),
        (
            {"include": [{"condition": {"codes": ["E11"]}, "drug": {"codes": ["A10"]}}]},
            "include[0]: a rule is a mapping with exactly one key",
        ),
        (
            {"exclude": [{"at_least": {"n": 3, "of": [{"visit": {}}]}}]},
            "exclude[0].at_least: n (3) is greater than the number of rules (1)",
        ),
        (
            {"include": [{"any_of": [{"all_of": [{"drug": {"codes": ["XX"]}}]}]}]},
            "include[0].any_of[0].all_of[0].drug.codes: 'XX' is not a valid ATC code",
        ),
        (
            {"demographics": {"age": {"min": 80, "max": 20}}},
            "demographics.age: min (80) is greater than max (20)",
        ),
        ({"demographics": {"age": {"min": 40.5}}}, "demographics.age.min: must be a whole number"),
        (
            {"demographics": {"sex": ["other"]}},
            "demographics.sex[0]: must be one of 'female' or 'male'",
        ),
        (
            {"demographics": {"municipalities": [180]}},
            'demographics.municipalities: 180 is not an SCB kommunkod: write 4 digits in quotes, e.g. "0180"',
        ),
        ({"index_date": 20260101}, "index_date: must be a date written YYYY-MM-DD"),
        ({"index_date": "2026-13-01"}, "index_date: must be a date written YYYY-MM-DD"),
        ({"inclde": []}, "inclde: unknown field"),
    ],
)
def test_errors_name_the_field_path_and_the_problem(data, expected):
    assert expected in error_of(data)


def test_every_problem_is_reported_on_its_own_line():
    message = error_of(
        {"include": [{"condition": {"codes": ["11E"]}}], "demographics": {"age": {"min": -1}}}
    )
    assert message.splitlines()[0] == "criteria: invalid criteria"
    assert len(message.splitlines()) == 3


def test_fingerprint_is_stable_and_ignores_the_name():
    base = {"include": [{"condition": {"codes": ["E11"]}}], "index_date": "2025-01-01"}
    a = parse_criteria({**base, "name": "A"})
    b = parse_criteria({**base, "name": "B", "description": "same question"})
    c = parse_criteria({**base, "include": [{"condition": {"codes": ["E10"]}}]})
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    assert a.fingerprint() != c.fingerprint()
    assert a.fingerprint() != a.fingerprint(date(2025, 1, 2))


def test_whole_region_and_steps():
    assert parse_criteria({}).whole_region
    c = parse_criteria(
        {
            "demographics": {"sex": ["male"]},
            "exclude": [{"visit": {"types": ["inpatient"], "within": {"days_before": 30}}}],
        }
    )
    assert not c.whole_region
    assert [d for _, d, _ in c.steps()] == [
        "Demographics: sex male",
        "Exclude: inpatient visit in the 30 days up to the index date",
    ]


def test_load_yaml_and_json_files(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: x\nindex_date: 2025-01-01\ninclude:\n  - condition: {codes: [E11]}\n")
    assert load_criteria(y).index_date == date(2025, 1, 1)
    j = tmp_path / "c.json"
    j.write_text('{"index_date": "2025-01-01", "include": [{"drug": {"codes": ["A10"]}}]}')
    assert load_criteria(j).include[0].drug.codes == ["A10"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "include:\n  - condition: {codes: [E11]\n", "bad.yaml: line 3: invalid YAML"),
        ("bad.json", '{"include": [}', "bad.json: line 1: invalid JSON"),
        ("list.yaml", "- a\n- b\n", "list.yaml: the criteria must be a mapping"),
        (
            "val.yaml",
            "include:\n  - drug: {codes: [XX]}\n",
            "val.yaml: invalid criteria: include[0].drug.codes",
        ),
    ],
)
def test_load_errors_name_the_file_and_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_criteria(path)
    assert expected in info.value.message


def test_missing_file():
    with pytest.raises(NotFoundError, match="does not exist"):
        load_criteria("/nonexistent/criteria.yaml")
