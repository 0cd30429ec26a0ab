"""Criteria language v2 (issue 19), pinned down on tiny hand-made regions.

Every test runs on every engine (reference, duckdb, duckdb-optimized, spark) through the
``spec`` fixture; the expected person ids are written out by hand. Index date: 2025-06-15.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from brygga.cohort.criteria import parse_criteria
from brygga.errors import DocumentError
from tests.spec.conftest import INDEX, death, event, person

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
