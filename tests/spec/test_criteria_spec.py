"""The criteria language, pinned down on tiny hand-made regions.

Each test runs on every engine (reference, duckdb, spark) through the ``spec`` fixture; the
expected person ids are written out by hand. Index date: 2025-06-15 unless stated.
"""

from __future__ import annotations

from datetime import date, timedelta

from tests.spec.conftest import INDEX, ancestor, death, event, period, person, visit

DAY = timedelta(days=1)


def test_population_alive_and_under_observation_at_the_index_date(spec):
    people = [person(i) for i in range(1, 10)]
    rows = [
        period(1, date(2000, 1, 1), date(2030, 1, 1)),
        period(2, date(2000, 1, 1), INDEX - DAY),  # ended the day before
        period(3, INDEX, date(2030, 1, 1)),  # starts on the index date: inclusive
        period(4, date(2000, 1, 1), INDEX),  # ends on the index date: inclusive
        period(5, date(2000, 1, 1), date(2030, 1, 1)),
        death(5, INDEX),  # died on the index date: not alive
        period(6, date(2000, 1, 1), date(2030, 1, 1)),
        death(6, INDEX + DAY),  # died the day after: alive
        period(7, date(2000, 1, 1), date(2030, 1, 1)),
        death(7, date(2020, 1, 1)),
        period(8, date(2000, 1, 1), date(2020, 1, 1)),  # a gap around the index date
        period(8, date(2026, 1, 1), date(2030, 1, 1)),
        # 9 has no observation period at all
    ]
    assert spec.run({}, people, rows, observe_all=False) == [1, 3, 4, 6]


def test_age_in_completed_years_with_birthday_on_the_index_date(spec):
    people = [
        person(1, born=date(1960, 6, 15)),  # 65 today
        person(2, born=date(1960, 6, 16)),  # 65 tomorrow: 64
        person(3, born=date(1960, 1, 1), month_of_birth=None, day_of_birth=None),  # Jan 1: 65
        person(4, born=date(1990, 12, 31)),  # 34
    ]
    region = spec.region(people)
    assert spec.persons(region, {"demographics": {"age": {"min": 65}}}) == [1, 3]
    assert spec.persons(region, {"demographics": {"age": {"max": 64}}}) == [2, 4]
    assert spec.persons(region, {"demographics": {"age": {"min": 34, "max": 64}}}) == [2, 4]
    assert spec.persons(region, {"demographics": {"age": {"min": 64, "max": 64}}}) == [2]


def test_sex_and_municipality(spec):
    people = [
        person(1, sex="female", municipality="0180"),
        person(2, sex="male", municipality="1280"),
        person(3, sex="unknown", municipality=None),
        person(4, sex="male", municipality="0180"),
    ]
    region = spec.region(people)
    assert spec.persons(region, {"demographics": {"sex": ["male"]}}) == [2, 4]
    assert spec.persons(region, {"demographics": {"sex": ["female", "male"]}}) == [1, 2, 4]
    assert spec.persons(region, {"demographics": {"municipalities": ["0180"]}}) == [1, 4]
    both = {"demographics": {"sex": ["male"], "municipalities": ["0180", "1280"]}}
    assert spec.persons(region, both) == [2, 4]


def test_icd10_codes_match_by_prefix_within_their_vocabulary(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 9)]
    rows = [
        event("condition", 1, "E119", day),
        event("condition", 2, "E11", day),
        event("condition", 3, "E1", day),  # shorter than the prefix
        event("condition", 4, "E109", day),
        event("condition", 5, "XE11", day),
        event("condition", 6, "E119", day, vocabulary="ATC"),  # another vocabulary
        event("condition", 7, "E119", day, vocabulary=None),  # vocabulary missing
        event("condition", 8, None, day),  # code missing
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, {"include": [{"condition": {"codes": ["E11"]}}]}) == [1, 2]
    dotted = {"include": [{"condition": {"codes": ["e11.9"], "vocabulary": "ICD10"}}]}
    assert spec.persons(region, dotted) == [1]
    two = {"include": [{"condition": {"codes": ["E11", "E10"]}}]}
    assert spec.persons(region, two) == [1, 2, 4]


def test_atc_prefix_and_kva_procedure(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 5)]
    rows = [
        event("drug", 1, "A10BA02", day),
        event("drug", 2, "A10BK01", day),
        event("drug", 3, "C10AA05", day),
        event("procedure", 3, "FNG05", day),
        event("procedure", 4, "FNC10", day),
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, {"include": [{"drug": {"codes": ["A10"]}}]}) == [1, 2]
    assert spec.persons(region, {"include": [{"drug": {"codes": ["A10BA02"]}}]}) == [1]
    assert spec.persons(region, {"include": [{"procedure": {"codes": ["FNG05"]}}]}) == [3]
    assert spec.persons(region, {"include": [{"procedure": {"codes": ["FNC10", "FNG05"]}}]}) == [
        3,
        4,
    ]


def test_window_boundaries_are_inclusive(spec):
    people = [person(i) for i in range(1, 9)]
    rows = [
        event("condition", 1, "I109", INDEX - 365 * DAY),  # first day in the window
        event("condition", 2, "I109", INDEX - 366 * DAY),  # just outside
        event("condition", 3, "I109", INDEX),  # the index date itself
        event("condition", 4, "I109", INDEX + DAY),  # after the index date
        event("condition", 5, "I109", INDEX + 30 * DAY),
        event("condition", 6, "I109", INDEX + 31 * DAY),
        event("condition", 7, "I109", date(2001, 1, 1)),  # long ago
    ]
    region = spec.region(people, rows)

    def within(**w):
        return {"include": [{"condition": {"codes": ["I10"], "within": w}}]}

    assert spec.persons(region, within(days_before=365)) == [1, 3]
    assert spec.persons(region, within(days_after=30)) == [3, 4, 5]
    assert spec.persons(region, within(days_before=365, days_after=30)) == [1, 3, 4, 5]
    assert spec.persons(region, within(days_before=0)) == [3]
    # No window: all history up to and including the index date.
    assert spec.persons(region, {"include": [{"condition": {"codes": ["I10"]}}]}) == [1, 2, 3, 7]


def test_min_count_counts_distinct_dates(spec):
    people = [person(i) for i in range(1, 5)]
    d1, d2, d3 = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
    rows = [
        event("drug", 1, "A10BA02", d1),
        event("drug", 1, "A10BA02", d1),  # same day twice: one date
        event("drug", 2, "A10BA02", d1),
        event("drug", 2, "A10BK01", d2),  # two codes of the set on two dates
        event("drug", 3, "A10BA02", d1),
        event("drug", 3, "A10BA02", d2),
        event("drug", 3, "A10BA02", d3),
        event("drug", 4, "A10BA02", d1),
        event("drug", 4, "A10BA02", INDEX + DAY),  # outside the window
    ]
    region = spec.region(people, rows)
    two = {"include": [{"drug": {"codes": ["A10"], "min_count": 2}}]}
    three = {"include": [{"drug": {"codes": ["A10"], "min_count": 3}}]}
    assert spec.persons(region, two) == [2, 3]
    assert spec.persons(region, three) == [3]


def test_measurement_value_range_inclusive_and_missing_values_never_match(spec):
    day = date(2025, 1, 1)
    people = [person(i) for i in range(1, 7)]
    rows = [
        event("measurement", 1, "NPU27300", day, value=53),
        event("measurement", 2, "NPU27300", day, value=52.9),
        event("measurement", 3, "NPU27300", day, value=None),
        event("measurement", 4, "NPU27300", day, value=70),
        event("measurement", 5, "NPU27300", day, value=53, vocabulary="LOINC"),
        event("measurement", 6, "NPU01566", day, value=60),  # another test
    ]
    region = spec.region(people, rows)

    def hba1c(**value):
        return {"include": [{"measurement": {"codes": ["HbA1c"], "value": value}}]}

    assert spec.persons(region, hba1c(min=53)) == [1, 4]
    assert spec.persons(region, hba1c(max=53)) == [1, 2]
    assert spec.persons(region, hba1c(min=53, max=53)) == [1]
    # Without a value range, any record counts, with or without a value.
    assert spec.persons(region, {"include": [{"measurement": {"codes": ["HbA1c"]}}]}) == [
        1,
        2,
        3,
        4,
    ]
    npu = {"include": [{"measurement": {"codes": ["NPU27300"], "vocabulary": "NPU"}}]}
    assert spec.persons(region, npu) == [1, 2, 3, 4]


def test_latest_measurement(spec):
    people = [person(i) for i in range(1, 8)]
    old, new = date(2024, 1, 1), date(2025, 1, 1)
    rows = [
        event("measurement", 1, "NPU27300", old, value=40),
        event("measurement", 1, "NPU27300", new, value=60),  # latest high: in
        event("measurement", 2, "NPU27300", old, value=60),
        event("measurement", 2, "NPU27300", new, value=40),  # latest low: out
        event("measurement", 3, "NPU27300", old, value=60),
        event("measurement", 3, "NPU27300", new, value=None),  # no value: skipped, 60 counts
        event("measurement", 4, "NPU27300", new, value=40),
        event("measurement", 4, "NPU27300", new, value=60),  # two on the latest date: any
        event("measurement", 5, "NPU27300", old, value=60),
        event("measurement", 5, "NPU27300", INDEX + DAY, value=40),  # after the window
        event("measurement", 6, "NPU27300", date(2020, 1, 1), value=60),  # before the window
        event("measurement", 7, "NPU01566", new, value=60),  # another test
        event("measurement", 7, "NPU27300", old, value=40),
    ]
    region = spec.region(people, rows)
    latest = {
        "include": [
            {
                "measurement": {
                    "codes": ["HbA1c"],
                    "value": {"min": 53},
                    "latest": True,
                    "within": {"days_before": 730},
                }
            }
        ]
    }
    assert spec.persons(region, latest) == [1, 3, 4, 5]
    anytime = {"include": [{"measurement": {"codes": ["HbA1c"], "value": {"min": 53}}}]}
    assert spec.persons(region, anytime) == [1, 2, 3, 4, 5, 6]


def test_latest_smoking_status_among_all_statuses(spec):
    old, new = date(2024, 1, 1), date(2025, 1, 1)
    people = [person(i) for i in range(1, 6)]
    rows = [
        event("observation", 1, "77176002", old),
        event("observation", 1, "266919005", new),  # smoker, then never: out
        event("observation", 2, "266919005", old),
        event("observation", 2, "77176002", new),  # now smoker: in
        event("observation", 3, "77176002", old),  # only ever smoker: in
        event("observation", 4, "77176002", new),
        event("observation", 4, "8517006", new),  # ties on the latest date: in
        event("observation", 5, "8517006", new),  # ex-smoker: out
    ]
    region = spec.region(people, rows)
    smoker = {
        "include": [
            {
                "observation": {
                    "codes": ["smoker"],
                    "latest": True,
                    "among": ["smoker", "ex_smoker", "never_smoker"],
                }
            }
        ]
    }
    assert spec.persons(region, smoker) == [2, 3, 4]
    ever = {"include": [{"observation": {"codes": ["smoker"]}}]}
    assert spec.persons(region, ever) == [1, 2, 3, 4]


def test_visits_by_type_and_count(spec):
    people = [person(i) for i in range(1, 5)]
    rows = [
        visit(1, date(2025, 1, 1), 9201),
        visit(2, date(2025, 1, 1), 9202),
        visit(2, date(2025, 2, 1), 9202),
        visit(3, date(2025, 1, 1), 9203),
        visit(4, INDEX + DAY, 9201),
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, {"include": [{"visit": {"types": ["inpatient"]}}]}) == [1]
    assert spec.persons(region, {"include": [{"visit": {}}]}) == [1, 2, 3]
    assert spec.persons(region, {"include": [{"visit": {"min_count": 2}}]}) == [2]
    future = {"include": [{"visit": {"within": {"days_after": 10}}}]}
    assert spec.persons(region, future) == [4]


def test_death_after_the_index_date(spec):
    people = [person(i) for i in range(1, 5)]
    rows = [death(1, INDEX + 10 * DAY), death(2, INDEX + 40 * DAY), death(3, INDEX)]
    region = spec.region(people, rows)
    died = {"include": [{"death": {"within": {"days_after": 30}}}]}
    assert spec.persons(region, died) == [1]
    survived = {"exclude": [{"death": {"within": {"days_after": 30}}}]}
    assert spec.persons(region, survived) == [2, 4]  # 3 died on the index date


def test_omop_concepts_match_with_descendants_through_concept_ancestor(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 5)]
    events = [
        event("condition", 1, "E119", day, concept=201826),  # the concept itself
        event("condition", 2, "x", day, vocabulary="SNOMED", concept=443732),  # a descendant
        event("condition", 3, "x", day, vocabulary="SNOMED", concept=201254),  # unrelated
        event("condition", 4, "x", day, vocabulary="SNOMED", concept=1),  # an ancestor
    ]
    hierarchy = [ancestor(201826, 443732), ancestor(1, 201826), ancestor(1, 443732)]
    t2d = {"include": [{"condition": {"codes": ["201826"], "vocabulary": "OMOP"}}]}
    with_hierarchy = spec.region(people, events + hierarchy)
    assert spec.persons(with_hierarchy, t2d) == [1, 2]
    without = spec.region(people, events)
    assert spec.persons(without, t2d) == [1]


def test_groups_any_all_at_least_and_nesting(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 7)]
    rows = [
        event("condition", 1, "I109", day),
        event("condition", 2, "E119", day),
        event("condition", 3, "I109", day),
        event("condition", 3, "E119", day),
        event("condition", 4, "I109", day),
        event("condition", 4, "E119", day),
        event("condition", 4, "I489", day),
        event("condition", 5, "I489", day),
    ]
    region = spec.region(people, rows)
    i10, e11, i48 = (
        {"condition": {"codes": [c]}} for c in ("I10", "E11", "I48")
    )  # fmt: skip
    assert spec.persons(region, {"include": [{"any_of": [i10, e11]}]}) == [1, 2, 3, 4]
    assert spec.persons(region, {"include": [{"all_of": [i10, e11]}]}) == [3, 4]
    at_least_2 = {"include": [{"at_least": {"n": 2, "of": [i10, e11, i48]}}]}
    assert spec.persons(region, at_least_2) == [3, 4]
    at_least_1 = {"include": [{"at_least": {"n": 1, "of": [i10, i48]}}]}
    assert spec.persons(region, at_least_1) == [1, 3, 4, 5]
    nested = {"include": [{"any_of": [{"all_of": [i10, e11]}, i48]}]}
    assert spec.persons(region, nested) == [3, 4, 5]
    # The same rule twice counts twice towards at_least.
    twice = {"include": [{"at_least": {"n": 2, "of": [i10, i10]}}]}
    assert spec.persons(region, twice) == [1, 3, 4]


def test_include_and_exclude_in_combination(spec):
    day = date(2024, 1, 1)
    people = [person(i, born=date(1950 + 10 * (i % 3), 1, 1)) for i in range(1, 7)]
    rows = [
        *(event("condition", i, "E119", day) for i in (1, 2, 3, 4)),
        event("condition", 2, "I219", day),
        event("drug", 3, "A10BA02", day),
        event("drug", 4, "A10BA02", day),
        event("condition", 6, "I219", day),
    ]
    criteria = {
        "demographics": {"age": {"min": 60}},
        "include": [{"condition": {"codes": ["E11"]}}],
        "exclude": [{"condition": {"codes": ["I21", "I22"]}}],
    }
    # Ages: 1 -> 65 (1960), 2 -> 55 (1970), 3 -> 75 (1950), 4 -> 65, 5 -> 55, 6 -> 75.
    assert spec.run(criteria, people, rows) == [1, 3, 4]
    criteria["exclude"].append({"drug": {"codes": ["A10BA"]}})
    assert spec.run(criteria, people, rows) == [1]


def test_records_of_people_missing_from_the_person_table_count_for_nobody(spec):
    """A record whose person is not in ``person`` (a broken export) matches no one, and its
    person does not appear; on an optimized region such rows carry no person index."""
    day = date(2024, 1, 1)
    people = [person(1), person(2)]
    rows = [
        event("condition", 1, "E119", day),
        event("condition", 99, "E119", day),
        event("measurement", 99, "NPU27300", day, value=60.0),
        event("measurement", 2, "NPU27300", day, value=60.0),
        visit(99, day),
        period(99, date(2000, 1, 1), date(2030, 1, 1)),
    ]
    assert spec.run({"include": [{"condition": {"codes": ["E11"]}}]}, people, rows) == [1]
    latest = {"measurement": {"codes": ["HbA1c"], "latest": True, "value": {"min": 53}}}
    assert spec.run({"include": [latest]}, people, rows) == [2]
    assert spec.run({"exclude": [{"visit": {}}]}, people, rows) == [1, 2]


def test_attrition_and_cells_agree(spec):
    """The feasibility counts (not only the person list) agree across engines."""
    day = date(2024, 1, 1)
    people = [
        person(1, sex="female", municipality="0180"),
        person(2, sex="male", municipality="0180", born=date(1985, 1, 1)),
        person(3, sex="male", municipality="1280"),
        person(4, sex="female", municipality=None),
        person(5),
    ]
    rows = [
        *(event("condition", i, "E119", day) for i in (1, 2, 3, 4)),
        event("condition", 3, "I219", day),
        death(5, date(2020, 1, 1)),
    ]
    region = spec.region(people, rows)
    criteria = {
        "demographics": {"age": {"min": 18}},
        "include": [{"condition": {"codes": ["E11"]}}],
        "exclude": [{"condition": {"codes": ["I21"]}}],
    }
    from brygga.cohort.criteria import parse_criteria

    result = spec.engine(region).evaluate(parse_criteria(criteria), INDEX)
    assert [n for _, n in result.steps] == [4, 4, 4, 3]
    assert result.cells == {
        ("female", 60, "0180"): 1,
        ("male", 40, "0180"): 1,
        ("female", 60, None): 1,
    }
