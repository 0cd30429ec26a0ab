"""Criteria language v2 (issue 19), pinned down on tiny hand-made regions.

Every test runs on every engine (reference, duckdb, duckdb-optimized, spark) through the
``spec`` fixture; the expected person ids are written out by hand. Index date: 2025-06-15.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import duckdb_engine
from brygga.cohort.feasibility import feasibility, unknown_codes
from brygga.errors import DocumentError, InputError
from brygga.privacy.disclosure import RoundingPolicy, region_policy
from brygga.records import optimize
from tests.spec.conftest import INDEX, build_region, death, event, period, person

DAY = timedelta(days=1)


def include(kind, **spec):
    return {"include": [{kind: spec}]}


# --- Codes: ICD-10 ranges and chapters, KVÅ letter groups, exclude_codes -----------------------


def test_icd10_ranges_and_chapter_letters(spec):
    day = date(2024, 1, 1)
    codes = ["I00", "I259", "I99", "I999", "J00", "H99", "C00", "C509", "D48", "D489", "D49", "I"]
    people = [person(i) for i in range(1, len(codes) + 1)]
    rows = [event("condition", i, code, day) for i, code in enumerate(codes, start=1)]
    region = spec.region(people, rows)
    # Both ends inclusive, with every code below the end: I99 and I999 are in I00-I99.
    assert spec.persons(region, include("condition", codes=["I00-I99"])) == [1, 2, 3, 4]
    # A range across letters.
    assert spec.persons(region, include("condition", codes=["C00-D48"])) == [7, 8, 9, 10]
    # Narrow ends: I25-I25 is I25 and below.
    assert spec.persons(region, include("condition", codes=["I25-I25"])) == [2]
    # A chapter letter: every code starting with I (the stored "I" too).
    assert spec.persons(region, include("condition", codes=["I"])) == [1, 2, 3, 4, 12]
    # Ranges and codes together; dots and lower case are normalized.
    mixed = include("condition", codes=["c00-c50.9", "H99"])
    assert spec.persons(region, mixed) == [6, 7, 8]


def test_kva_letter_groups(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 5)]
    rows = [
        event("procedure", 1, "FNG05", day),
        event("procedure", 2, "FNG10", day),
        event("procedure", 3, "FNC10", day),
        event("procedure", 4, "AAF00", day),
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, include("procedure", codes=["FNG"])) == [1, 2]
    assert spec.persons(region, include("procedure", codes=["FN"])) == [1, 2, 3]
    assert spec.persons(region, include("procedure", codes=["F"])) == [1, 2, 3]


def test_exclude_codes_on_any_rule(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 7)]
    rows = [
        event("drug", 1, "L01XA01", day),
        event("drug", 2, "L01XX05", day),  # only the excluded code: out
        event("drug", 3, "L01XX05", day),
        event("drug", 3, "L01BA01", day),  # another L01 code too: in
        event("condition", 4, "I219", day),
        event("condition", 5, "I10", day),
        event("condition", 6, "I251", day),
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, include("drug", codes=["L01"], exclude_codes=["L01XX05"])) == [1, 3]
    # With a range, and in an exclude rule.
    no_ihd = {"exclude": [{"condition": {"codes": ["I00-I99"], "exclude_codes": ["I20-I25"]}}]}
    assert spec.persons(region, no_ihd) == [1, 2, 3, 4, 6]


def test_exclude_codes_on_latest_records_do_not_compete(spec):
    people = [person(i) for i in range(1, 3)]
    rows = [
        event("measurement", 1, "NPU27300", date(2024, 1, 1), value=60),
        event("measurement", 1, "NPU01566", date(2025, 1, 1), value=5),  # excluded: ignored
        event("measurement", 2, "NPU27300", date(2024, 1, 1), value=60),
        event("measurement", 2, "NPU01566", date(2025, 1, 1), value=5),  # competes: decides
    ]
    region = spec.region(people, rows)
    latest = {
        "codes": ["HbA1c"],
        "value": {"min": 53},
        "latest": True,
        "among": ["HbA1c", "TC"],
    }
    assert spec.persons(region, include("measurement", **latest)) == []
    assert spec.persons(region, include("measurement", **latest, exclude_codes=["TC"])) == [1, 2]


def test_code_groups_are_checked():
    for codes, message in [
        (["I99-I00"], "comes after its end"),
        (["I00-I99-J00"], "not an ICD-10 range"),
        (["I00-X"], "not a valid ICD10 code"),
        (["11"], "not a valid ICD10 code"),
    ]:
        with pytest.raises(DocumentError, match=message):
            parse_criteria(include("condition", codes=codes))
    with pytest.raises(DocumentError, match="not a valid KVA code"):
        parse_criteria(include("procedure", codes=["FNGX"]))
    with pytest.raises(DocumentError, match="exclude_codes"):
        parse_criteria(include("drug", codes=["L01"], exclude_codes=["11"]))


# --- Windows that need not contain the index date ---------------------------------------------


def test_negative_window_bounds_are_inclusive(spec):
    offsets = [-3651, -3650, -400, -2, -1, 0, 1, 29, 30, 90, 91]
    people = [person(i) for i in range(1, len(offsets) + 1)]
    rows = [event("drug", i, "A10BA02", INDEX + d * DAY) for i, d in enumerate(offsets, start=1)]
    region = spec.region(people, rows)

    def within(**w):
        return include("drug", codes=["A10"], within=w)

    by_offset = dict(zip(offsets, range(1, len(offsets) + 1), strict=True))

    def ids(*ds):
        return sorted(by_offset[d] for d in ds)

    # Ends the day before the index date.
    assert spec.persons(region, within(days_before=3650, days_after=-1)) == ids(-3650, -400, -2, -1)
    # Starts 30 days after it.
    assert spec.persons(region, within(days_before=-30, days_after=90)) == ids(30, 90)
    # One day: the day before.
    assert spec.persons(region, within(days_before=1, days_after=-1)) == ids(-1)
    # A window after the index date with min_count.
    two = include("drug", codes=["A10"], within={"days_before": -1, "days_after": 30}, min_count=2)
    assert spec.persons(region, two) == []


def test_negative_windows_for_visits_latest_and_death(spec):
    people = [person(i) for i in range(1, 5)]
    rows = [
        event("measurement", 1, "NPU27300", INDEX - 10 * DAY, value=60),
        event("measurement", 1, "NPU27300", INDEX, value=40),  # outside: not the latest
        event("measurement", 2, "NPU27300", INDEX - 10 * DAY, value=40),
        death(3, INDEX + 40 * DAY),
        death(4, INDEX + 20 * DAY),
    ]
    region = spec.region(people, rows)
    latest = include(
        "measurement",
        codes=["HbA1c"],
        value={"min": 53},
        latest=True,
        within={"days_before": 365, "days_after": -1},
    )
    assert spec.persons(region, latest) == [1]
    late_death = {"include": [{"death": {"within": {"days_before": -30, "days_after": 60}}}]}
    assert spec.persons(region, late_death) == [3]


def test_empty_windows_are_refused():
    with pytest.raises(DocumentError, match="ends before it starts"):
        parse_criteria(include("drug", codes=["A10"], within={"days_before": 1, "days_after": -2}))
    with pytest.raises(DocumentError, match="days_after must be > 0"):
        parse_criteria({"include": [{"death": {"within": {"days_before": 30, "days_after": -1}}}]})


# --- Values: strict bounds, the record's normal range, safety lab aliases ----------------------


def test_strict_value_bounds(spec):
    day = date(2025, 1, 1)
    values = [49.9, 50.0, 50.1, 60.0, None]
    people = [person(i) for i in range(1, len(values) + 1)]
    rows = [
        event("measurement", i, "NPU27300", day, value=v) for i, v in enumerate(values, start=1)
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, include("measurement", codes=["HbA1c"], value={"above": 50})) == [
        3,
        4,
    ]
    assert spec.persons(region, include("measurement", codes=["HbA1c"], value={"below": 50})) == [1]
    between = include("measurement", codes=["HbA1c"], value={"above": 50, "max": 60})
    assert spec.persons(region, between) == [3, 4]
    latest = include("measurement", codes=["HbA1c"], value={"below": 60}, latest=True)
    assert spec.persons(region, latest) == [1, 2, 3]


def test_values_relative_to_the_records_normal_range(spec):
    day = date(2025, 1, 1)
    people = [person(i) for i in range(1, 8)]
    rows = [
        event("measurement", 1, "NPU19651", day, value=125.0, normal=(10, 50)),  # 2.5 x: in
        event("measurement", 2, "NPU19651", day, value=125.1, normal=(10, 50)),  # above
        event("measurement", 3, "NPU19651", day, value=60.0, normal=(10, 70)),  # own range
        event("measurement", 4, "NPU19651", day, value=60.0, normal=(None, None)),  # none: never
        event("measurement", 5, "1742-6", day, value=200.0, normal=(5, 40), vocabulary="LOINC"),
        event("measurement", 6, "NPU19651", day, value=4.0, normal=(10, 50)),
        event("measurement", 7, "NPU19651", day, value=None, normal=(10, 50)),  # no value
    ]
    region = spec.region(people, rows)

    def alt(**value):
        return include("measurement", codes=["ALT"], value=value)

    assert spec.persons(region, alt(max_times_upper_normal=2.5)) == [1, 3, 6]
    # "ALT above 3 x ULN" in a trial's exclusion: the alias matches NPU and LOINC.
    assert spec.persons(region, alt(min_times_upper_normal=3)) == [5]
    assert spec.persons(region, alt(max_times_lower_normal=0.5)) == [6]
    assert spec.persons(region, alt(min_times_lower_normal=1, max_times_upper_normal=1)) == [3]
    both = alt(min=100, max_times_upper_normal=3)
    assert spec.persons(region, both) == [1, 2]


def test_safety_lab_aliases_match_npu_and_loinc(spec):
    day = date(2025, 1, 1)
    codes = [
        ("NPU19654", "NPU"),  # AST
        ("1920-8", "LOINC"),  # AST
        ("NPU03230", "NPU"),  # potassium
        ("2823-3", "LOINC"),  # potassium
        ("62238-1", "LOINC"),  # eGFR
        ("NPU02319", "NPU"),  # haemoglobin
    ]
    people = [person(i) for i in range(1, len(codes) + 1)]
    rows = [
        event("measurement", i, code, day, vocabulary=vocab, value=1.0)
        for i, (code, vocab) in enumerate(codes, start=1)
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, include("measurement", codes=["ast"])) == [1, 2]
    assert spec.persons(region, include("measurement", codes=["Potassium", "eGFR"])) == [3, 4, 5]
    # With a vocabulary, only that vocabulary's code.
    npu = include("measurement", codes=["AST", "haemoglobin"], vocabulary="NPU")
    assert spec.persons(region, npu) == [1, 6]


def test_value_bounds_are_checked():
    for value, message in [
        ({"min": 5, "above": 4}, "not both"),
        ({"above": 5, "below": 5}, "no value is both"),
        ({"max_times_upper_normal": 0}, "max_times_upper_normal: must be > 0"),
        ({"min_times_upper_normal": 3, "max_times_upper_normal": 2}, "greater than max"),
    ]:
        with pytest.raises(DocumentError, match=message):
            parse_criteria(include("measurement", codes=["ALT"], value=value))
    with pytest.raises(DocumentError, match="observations have no normal range"):
        parse_criteria(
            include("observation", codes=["smoker"], value={"max_times_upper_normal": 2})
        )


# --- Groups: demographics inside groups, none_of ------------------------------------------------


def test_demographics_inside_groups_give_sex_specific_thresholds(spec):
    day = date(2025, 1, 1)
    people = [
        person(1, sex="female"),
        person(2, sex="female"),
        person(3, sex="male"),
        person(4, sex="male"),
        person(5, sex="unknown"),
        person(6, sex="female", born=date(2010, 1, 1)),  # 15: too young for the first branch
    ]
    # Haemoglobin below 120 (women) or below 130 (men).
    rows = [
        event("measurement", 1, "NPU02319", day, value=115),
        event("measurement", 2, "NPU02319", day, value=125),
        event("measurement", 3, "NPU02319", day, value=125),
        event("measurement", 4, "NPU02319", day, value=135),
        event("measurement", 5, "NPU02319", day, value=100),
        event("measurement", 6, "NPU02319", day, value=100),
    ]
    region = spec.region(people, rows)
    anaemia = {
        "include": [
            {
                "any_of": [
                    {
                        "all_of": [
                            {"demographics": {"sex": ["female"], "age": {"min": 18}}},
                            {"measurement": {"codes": ["haemoglobin"], "value": {"below": 120}}},
                        ]
                    },
                    {
                        "all_of": [
                            {"demographics": {"sex": ["male"]}},
                            {"measurement": {"codes": ["haemoglobin"], "value": {"below": 130}}},
                        ]
                    },
                ]
            }
        ]
    }
    assert spec.persons(region, anaemia) == [1, 3]
    # In exclude and at the top level too; municipality as well.
    women = {"exclude": [{"demographics": {"sex": ["female"]}}]}
    assert spec.persons(region, women) == [3, 4, 5]


def test_none_of(spec):
    day = date(2024, 1, 1)
    people = [person(i) for i in range(1, 6)]
    rows = [
        event("condition", 1, "I219", day),
        event("condition", 2, "I639", day),
        event("condition", 3, "E119", day),
        event("condition", 4, "I219", day),
        event("condition", 4, "E119", day),
    ]
    region = spec.region(people, [*rows, death(5, INDEX + 10 * DAY)])
    no_cvd = {
        "include": [
            {"none_of": [{"condition": {"codes": ["I21"]}}, {"condition": {"codes": ["I63"]}}]}
        ]
    }
    assert spec.persons(region, no_cvd) == [3, 5]
    # Inside any_of: diabetes, or neither infarction nor stroke; death after the index date.
    mixed = {
        "include": [
            {
                "any_of": [
                    {"condition": {"codes": ["E11"]}},
                    {"none_of": [{"condition": {"codes": ["I21", "I63"]}}]},
                ]
            }
        ],
        "exclude": [{"none_of": [{"death": {"within": {"days_after": 30}}}]}],
    }
    assert spec.persons(region, mixed) == [5]
    at_least = {
        "include": [
            {
                "at_least": {
                    "n": 2,
                    "of": [
                        {"none_of": [{"condition": {"codes": ["I21"]}}]},
                        {"condition": {"codes": ["E11"]}},
                        {"demographics": {"sex": ["female"]}},
                    ],
                }
            }
        ]
    }
    assert spec.persons(region, at_least) == [2, 3, 4, 5]


def test_group_demographics_must_say_something():
    with pytest.raises(DocumentError, match="give age, sex or municipalities"):
        parse_criteria({"include": [{"any_of": [{"demographics": {}}]}]})
    with pytest.raises(DocumentError, match="none_of"):
        parse_criteria({"include": [{"nothing_of": []}]})


# --- Each person's own index date: entry -------------------------------------------------------

PERIOD = {"from": "2015-01-01", "to": "2020-12-31"}


def entry_doc(occurrence="first", **rest):
    return {
        "entry": {
            "event": {"condition": {"codes": ["E11"]}},
            "occurrence": occurrence,
            "period": PERIOD,
        },
        **rest,
    }


def test_entry_first_occurrence_must_lie_in_the_period(spec):
    people = [person(i) for i in range(1, 9)]
    rows = [
        event("condition", 1, "E119", date(2016, 5, 1)),
        event("condition", 1, "E119", date(2019, 5, 1)),
        event("condition", 2, "E119", date(2014, 12, 31)),  # first before the period: never
        event("condition", 2, "E119", date(2016, 1, 1)),
        event("condition", 3, "E11", date(2015, 1, 1)),  # the period's first day
        event("condition", 4, "E11", date(2020, 12, 31)),  # its last day
        event("condition", 5, "E11", date(2021, 1, 1)),  # after it
        event("condition", 6, "I10", date(2016, 1, 1)),  # another code
        event("condition", 7, "E11", date(2017, 1, 1)),
        # 8 has no record
    ]
    region = spec.region(people, rows)
    assert spec.persons(region, entry_doc()) == [1, 3, 4, 7]
    # latest: the last record in the period (2 enters on 2016-01-01, 5 still not).
    assert spec.persons(region, entry_doc("latest")) == [1, 2, 3, 4, 7]


def test_the_same_rule_under_two_entries_and_an_index_date(spec):
    """One engine, one rule, three answers: the DuckDB engine keeps a rule's person set per
    entry definition (and per index date), never one for another."""
    people = [person(i) for i in range(1, 5)]
    rows = [
        *(event("condition", i, "E119", date(2016, 5, 1)) for i in (1, 2, 3)),
        event("condition", 1, "E119", date(2019, 5, 1)),
        event("drug", 1, "A10BA02", date(2019, 5, 11)),  # after 1's latest E11, not the first
        event("drug", 2, "A10BA02", date(2016, 5, 11)),  # after 2's first (and latest) E11
        event("drug", 4, "A10BA02", date(2016, 5, 11)),  # 4 never enters
    ]
    region = spec.region(people, rows)
    drug = {"drug": {"codes": ["A10BA02"], "within": {"days_after": 30}}}
    first, latest = entry_doc(include=[drug]), entry_doc("latest", include=[drug])
    at_index = {"include": [{"drug": {"codes": ["A10BA02"], "within": {"days_before": 3650}}}]}
    for _ in range(2):  # asked again, from what the engine kept
        assert spec.persons(region, first) == [2]
        assert spec.persons(region, latest) == [1, 2]
        assert spec.persons(region, at_index) == [1, 2, 4]
        assert spec.persons(region, entry_doc(exclude=[drug])) == [1, 3]


def test_entry_needs_observation_on_the_entry_date_and_keeps_later_deaths(spec):
    entry_day = date(2017, 3, 1)
    people = [person(i) for i in range(1, 8)]
    rows = [event("condition", i, "E119", entry_day) for i in range(1, 8)]
    rows += [
        period(1, date(2010, 1, 1), date(2030, 1, 1)),
        period(2, date(2010, 1, 1), entry_day - DAY),  # observation ended the day before
        period(3, entry_day, entry_day),  # one day, the entry date: inclusive
        period(4, date(2010, 1, 1), date(2030, 1, 1)),
        death(4, entry_day),  # died on the entry date: counted
        period(5, date(2010, 1, 1), date(2030, 1, 1)),
        death(5, entry_day - DAY),  # died before: not
        period(6, date(2010, 1, 1), date(2030, 1, 1)),
        death(6, date(2018, 1, 1)),  # died later, before today's index date: counted
        period(7, date(2010, 1, 1), date(2016, 1, 1)),  # observed only before
        period(7, date(2018, 1, 1), date(2030, 1, 1)),  # and after
    ]
    region = spec.region(people, rows, observe_all=False)
    assert spec.persons(region, entry_doc()) == [1, 3, 4, 6]
    # Death within a year of entry, the entry date included.
    died = entry_doc(include=[{"death": {"within": {"days_after": 365}}}])
    assert spec.persons(region, died) == [4, 6]


def test_entry_windows_and_demographics_are_relative_to_each_persons_entry(spec):
    people = [
        person(1, born=date(1970, 6, 1)),  # 46 at a 2016-06-01 entry
        person(2, born=date(1950, 6, 2)),  # 65 at a 2015-06-01 entry (birthday the day after)
        person(3, born=date(1990, 1, 1)),  # 29 at 2019-06-01: too young
        person(4, born=date(1960, 1, 1)),
        person(5, born=date(1960, 1, 1)),
    ]
    entries = {1: date(2016, 6, 1), 2: date(2015, 6, 1), 3: date(2019, 6, 1)}
    entries |= {4: date(2018, 1, 10), 5: date(2020, 2, 1)}
    rows = [event("condition", p, "E119", d) for p, d in entries.items()]
    rows += [
        event("drug", 1, "A10BA02", entries[1] + 90 * DAY),  # day 90: inclusive
        event("drug", 2, "A10BA02", entries[2] + 91 * DAY),  # day 91: outside
        event("drug", 3, "A10BA02", entries[3]),
        event("drug", 4, "A10BA02", entries[4]),
        event("drug", 4, "A10BK01", entries[4] - DAY),  # a diabetes drug the day before
        event("drug", 5, "A10BA02", entries[5] + DAY),
        event("drug", 5, "A10BK01", entries[5]),  # on the entry date: not "before"
    ]
    region = spec.region(people, rows)
    doc = entry_doc(
        demographics={"age": {"min": 40, "max": 65}},
        include=[{"drug": {"codes": ["A10BA02"], "within": {"days_after": 90}}}],
        exclude=[{"drug": {"codes": ["A10"], "within": {"days_before": 3650, "days_after": -1}}}],
    )
    assert spec.persons(region, doc) == [1, 5]
    # Demographics as a rule and "latest" look at the entry date too.
    young = entry_doc(include=[{"demographics": {"age": {"max": 30}}}])
    assert spec.persons(region, young) == [3]


def test_entry_attrition_and_breakdowns(spec):
    people = [person(1, born=date(1970, 6, 1)), person(2, born=date(1950, 1, 1), sex="male")]
    rows = [
        event("condition", 1, "E119", date(2016, 6, 1)),
        event("condition", 2, "E119", date(2019, 6, 1)),
    ]
    region = spec.region(people, rows)
    evaluation = spec.engine(region).evaluate(parse_criteria(entry_doc()), date(2020, 12, 31))
    assert evaluation.steps[0] == (
        "Entered: First condition ICD10 E11 from 2015-01-01 to 2020-12-31, "
        "under observation on that date",
        2,
    )
    # Age bands at entry: 46 and 69.
    assert evaluation.cells == {("female", 40, "0180"): 1, ("male", 60, "0180"): 1}


def test_entry_is_checked():
    with pytest.raises(DocumentError, match="not both"):
        parse_criteria(entry_doc(index_date="2020-01-01"))
    with pytest.raises(DocumentError, match="entry event takes codes"):
        parse_criteria(
            {
                "entry": {
                    "event": {"condition": {"codes": ["E11"], "within": {"days_before": 3}}},
                    "period": PERIOD,
                }
            }
        )
    with pytest.raises(DocumentError, match="record rule"):
        parse_criteria({"entry": {"event": {"visit": {}}, "period": PERIOD}})
    with pytest.raises(DocumentError, match="is after"):
        parse_criteria(
            {
                "entry": {
                    "event": {"condition": {"codes": ["E11"]}},
                    "period": {"from": "2020-01-01", "to": "2019-01-01"},
                }
            }
        )


def test_feasibility_of_an_entry_question(tmp_path):
    people = [person(i) for i in range(1, 11)]
    rows = [event("condition", i, "E119", date(2016, 1, i)) for i in range(1, 11)]
    region = build_region(tmp_path / "region", people, rows)
    criteria = parse_criteria(entry_doc())
    result = feasibility(criteria, region, raw=True)
    assert result.index_date == date(2020, 12, 31)
    assert result.count["value"] == 10
    assert result.attrition[0]["step"].startswith("Entered: First condition ICD10 E11")
    with pytest.raises(InputError, match="own index date"):
        feasibility(criteria, region, raw=True, index_date=date(2020, 1, 1))


# --- Drug exposure: current, lasting ------------------------------------------------------------


def dispensing(pid, start, *, end=None, days=None, code="C10AA05"):
    return event("drug", pid, code, start, drug_exposure_end_date=end, days_supply=days)


def test_current_drug_exposure_from_supply_end_dates_and_the_default(spec):
    people = [person(i) for i in range(1, 8)]
    rows = [
        dispensing(1, INDEX - 29 * DAY, days=30),  # covers the index date (its 30th day)
        dispensing(2, INDEX - 30 * DAY, days=30),  # ended the day before
        dispensing(3, INDEX - 10 * DAY, end=INDEX),  # end date: inclusive
        dispensing(4, INDEX - 89 * DAY),  # no supply: 90 days, the last is the index date
        dispensing(5, INDEX - 90 * DAY),  # no supply: ended the day before
        dispensing(6, INDEX + DAY, days=30),  # starts after the index date
        dispensing(7, INDEX - 29 * DAY, days=30, code="A10BA02"),  # another drug
    ]
    region = spec.region(people, rows)
    current = include("drug", codes=["C10"], exposure={"current": True})
    assert spec.persons(region, current) == [1, 3, 4]


def test_lasting_exposure_joins_refills_within_the_gap(spec):
    people = [person(i) for i in range(1, 6)]
    start = date(2024, 1, 1)
    rows = [
        # 1: three 30-day supplies with 30-day gaps: one period of 150 days.
        dispensing(1, start, days=30),
        dispensing(1, start + 60 * DAY, days=30),
        dispensing(1, start + 120 * DAY, days=30),
        # 2: a 31-day gap breaks the period: 30 + 30 days.
        dispensing(2, start, days=30),
        dispensing(2, start + 61 * DAY, days=30),
        # 3: overlapping supplies: 1 Jan to 15 Mar (75 days).
        dispensing(3, start, days=60),
        dispensing(3, start + 30 * DAY, end=start + 74 * DAY),
        # 4: a single 90-day default.
        dispensing(4, start),
        # 5: two on one day.
        dispensing(5, start, days=10),
        dispensing(5, start, days=20),
    ]
    region = spec.region(people, rows)

    def lasting(days, **extra):
        return include("drug", codes=["C10"], exposure={"min_days": days}, **extra)

    assert spec.persons(region, lasting(150)) == [1]
    assert spec.persons(region, lasting(151)) == []
    assert spec.persons(region, lasting(75)) == [1, 3, 4]
    assert spec.persons(region, lasting(31)) == [1, 3, 4]
    assert spec.persons(region, lasting(20)) == [1, 2, 3, 4, 5]
    # Only dispensings in the window count: from 1 March, 1 has 90 days left.
    window = {"days_before": (INDEX - (start + 60 * DAY)).days}
    assert spec.persons(region, lasting(90, within=window)) == [1]


def test_current_and_lasting_at_each_persons_entry(spec):
    people = [person(i) for i in range(1, 4)]
    entry_day = date(2017, 3, 1)
    rows = [event("condition", i, "I219", entry_day) for i in range(1, 4)]
    rows += [
        dispensing(1, entry_day - 99 * DAY, days=100),  # 100 days ending on the entry date
        dispensing(2, entry_day - 100 * DAY, days=100),  # ended the day before
        dispensing(3, entry_day - 10 * DAY, days=30),  # current, 30 days
    ]
    region = spec.region(people, rows)
    doc = {
        "entry": {"event": {"condition": {"codes": ["I21"]}}, "period": PERIOD},
        "include": [{"drug": {"codes": ["C10"], "exposure": {"current": True, "min_days": 90}}}],
    }
    assert spec.persons(region, doc) == [1]


def test_exposure_is_checked():
    with pytest.raises(DocumentError, match="give current: true, min_days or both"):
        parse_criteria(include("drug", codes=["C10"], exposure={}))
    with pytest.raises(DocumentError, match="cannot be combined"):
        parse_criteria(include("drug", codes=["C10"], exposure={"current": True}, min_count=2))


@pytest.mark.parametrize("optimized", [False, True])
def test_feasibility_warns_of_codes_no_record_has(tmp_path, optimized):
    people = [person(i) for i in range(1, 4)]
    rows = [
        event("condition", 1, "E119", date(2024, 1, 1)),
        event("drug", 2, "A10BA02", date(2024, 1, 1)),
    ]
    region = build_region(tmp_path / "region", people, rows)
    if optimized:
        optimize.build(region, threads=1, memory_limit="500MB")
    doc = {
        "index_date": "2025-01-01",
        "include": [
            {
                "any_of": [
                    {"condition": {"codes": ["E11", "X99-Y01"]}},
                    {"drug": {"codes": ["A10"], "exclude_codes": ["A10BK"]}},
                ]
            }
        ],
    }
    result = feasibility(parse_criteria(doc), region, raw=True)
    assert result.count["value"] == 2
    assert result.warnings == [
        "no record in the region's condition_occurrence has the ICD10 code X99-Y01: "
        "is it written as the region's records write it?",
        "no record in the region's drug_exposure has the ATC code A10BK: "
        "is it written as the region's records write it?",
    ]


@pytest.mark.parametrize("complete", [True, False])
def test_code_warnings_from_the_code_arrays_match_duckdb(tmp_path, complete):
    """A new process counts a code's people from the code arrays (no DuckDB, issue 18): the
    warnings DuckDB's tables give. The arrays leave out records they cannot match (here a
    person missing from ``person``): then their counts are a lower bound only, and DuckDB
    counts the codes they do not show."""
    people = [person(i) for i in range(1, 4)]
    rows = [
        event("condition", 1, "E119", date(2024, 1, 1)),
        event("condition", 2 if complete else 9, "I109", date(2024, 1, 1)),
    ]
    region = build_region(tmp_path / "region", people, rows)
    doc = parse_criteria(
        {"index_date": "2025-01-01", "include": [{"condition": {"codes": ["E11", "I10", "X99"]}}]}
    )
    policy = region_policy(region, raw=True)
    optimize.build(region, threads=1, memory_limit="500MB")
    queried = duckdb_engine(region)
    queried.codes = queried.stored = None  # DuckDB's tables only (nothing kept either)
    expected = unknown_codes(doc, queried, policy, region.row_counts)
    assert any("X99" in w for w in expected) and any("I10" in w for w in expected) is not complete
    engine = duckdb_engine(region)
    assert engine.codes is not None
    assert unknown_codes(doc, engine, policy, region.row_counts) == expected
    # Every record in the arrays: exact counts, DuckDB never opened.
    assert callable(engine.tables._present) is complete
    if complete:
        assert feasibility(doc, region, raw=True).warnings == expected  # a fresh engine


@pytest.mark.parametrize("optimized", [False, True])
def test_code_warnings_pass_the_release_gate(tmp_path, optimized):
    """Under a disclosure policy a code two people have and a code nobody has read alike
    ("none or too few to show"): "not found" would say 0 people, "found" at least one."""
    people = [person(i) for i in range(1, 13)]
    rows = [event("condition", i, "E119", date(2024, 1, 1)) for i in range(1, 11)]
    rows += [event("condition", i, "I10", date(2024, 1, 1)) for i in (11, 12)]
    region = build_region(tmp_path / "region", people, rows)
    if optimized:
        optimize.build(region, threads=1, memory_limit="500MB")
    doc = {
        "index_date": "2025-01-01",
        "include": [{"condition": {"codes": ["E11", "I10", "X99"]}}],
    }
    result = feasibility(parse_criteria(doc), region, policy=RoundingPolicy(8, 1))
    assert result.warnings == [
        f"none or too few people to show have the ICD10 code {code} in the region's "
        "condition_occurrence: is it written as the region's records write it?"
        for code in ("I10", "X99")
    ]  # E11: ten people, shown; I10 (two people) and X99 (nobody) are not told apart
