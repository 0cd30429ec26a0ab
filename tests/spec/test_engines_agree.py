"""Property: on random small regions and random criteria, every engine gives the same answer.

The reference evaluator, DuckDB and Spark must agree on the attrition counts and the breakdown
cells (and the reference and DuckDB on the person list). The number of examples is small by
default; set BRYGGA_HYPOTHESIS_EXAMPLES for a longer search.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import duckdb_engine, open_engine
from brygga.records import optimize
from tests.spec.conftest import INDEX, ancestor, build_region, death, event, period, person, visit

# slow: random regions on every engine, Spark included (about 90 s of the suite)
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("BRYGGA_HYPOTHESIS_EXAMPLES", "15"))

# Dates cluster around the index date and the window edges used below, so boundaries get hit.
OFFSETS = [-800, -366, -365, -364, -31, -30, -1, 0, 1, 30, 31, 400]
dates = st.sampled_from(OFFSETS).map(lambda d: INDEX + timedelta(days=d))
# Bounds may be negative (windows that need not hold the index date); empty windows are
# refused by validation, so they are not generated.
windows = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "days_before": st.sampled_from([0, 30, 365, -1, -30]),
        "days_after": st.sampled_from([0, 30, -1]),
    },
).filter(lambda w: w.get("days_before", 0) + w.get("days_after", 0) >= 0)

CODES = {
    "condition": (
        ["E119", "E11", "E109", "I109", "I219", "I99", "J00", "C509", "D48", "D489", "I", None],
        ["ICD10", "ICD10", "SNOMED", None],
    ),
    "drug": (["A10BA02", "A10BK01", "C10AA05"], ["ATC"]),
    "measurement": (["NPU27300", "NPU01566", "8480-6", "NPU19651", "1742-6"], ["NPU", "LOINC"]),
    "observation": (["77176002", "8517006", "266919005"], ["SNOMED"]),
    "procedure": (["FNG05", "FNC10", "FNG10"], ["KVA"]),
}
CONCEPTS = [0, 0, 201826, 443732, 1]


def supply(draw):
    """A dispensing's supply: an end date, a days' supply, or neither (the default)."""
    days = draw(st.sampled_from([None, 1, 30, 366]))
    end = draw(st.none() | dates) if days is None else None
    return {"days_supply": days, "drug_exposure_end_date": end}


@st.composite
def regions(draw):
    n = draw(st.integers(1, 8))
    people = []
    rows = []
    # One period each lets an optimized region build its one-row-per-person population table.
    one_period_each = draw(st.booleans())
    for pid in range(1, n + 1):
        born = date(
            draw(st.integers(1930, 2015)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
        )
        extra = {}
        if draw(st.booleans()):
            extra = {"month_of_birth": None, "day_of_birth": None}
        sex = draw(st.sampled_from(["female", "male", "unknown"]))
        municipality = draw(st.sampled_from(["0180", "1280", None]))
        people.append(person(pid, born=born, sex=sex, municipality=municipality, **extra))
        for _ in range(1 if one_period_each else draw(st.integers(0, 2))):
            start, end = sorted([draw(dates), draw(dates)])
            rows.append(period(pid, start, end))
        if draw(st.integers(0, 4)) == 0:
            rows.append(death(pid, draw(dates)))
    for _ in range(draw(st.integers(0, 25))):
        pid = draw(st.integers(1, n))
        kind = draw(st.sampled_from([*CODES, "visit"]))
        if kind == "visit":
            rows.append(visit(pid, draw(dates), draw(st.sampled_from([9201, 9202, 9203]))))
            continue
        codes, vocabularies = CODES[kind]
        value = draw(st.sampled_from([None, 40.0, 52.9, 53.0, 60.0]))
        # Normal ranges (measurements): none, one end, or both; 2 x 26.5 = 53 hits the edge.
        normal = draw(st.sampled_from([(None, None), (20.0, 26.5), (None, 30.0), (26.5, None)]))
        rows.append(
            event(
                kind,
                pid,
                draw(st.sampled_from(codes)),
                draw(dates),
                vocabulary=draw(st.sampled_from(vocabularies)),
                concept=draw(st.sampled_from(CONCEPTS)),
                value=value,
                normal=normal if kind == "measurement" else (None, None),
                **(supply(draw) if kind == "drug" else {}),
            )
        )
    if draw(st.booleans()):
        rows += [ancestor(201826, 443732), ancestor(1, 201826), ancestor(1, 443732)]
    return people, rows


def event_rule(kind):
    codes = {
        "condition": st.lists(
            st.sampled_from(
                ["E11", "E119", "I10", "I21", "E10", "I00-I99", "C00-D48", "I", "E10-E11"]
            ),
            min_size=1,
            max_size=2,
        ),
        "drug": st.lists(st.sampled_from(["A10", "A10BA02", "C10"]), min_size=1, max_size=2),
        "procedure": st.lists(
            st.sampled_from(["FNG05", "FNC10", "FNG", "F"]), min_size=1, max_size=2
        ),
        "measurement": st.lists(
            st.sampled_from(["HbA1c", "TC", "SBP", "ALT"]), min_size=1, max_size=2
        ),
        "observation": st.lists(
            st.sampled_from(["smoker", "ex_smoker", "never_smoker"]), min_size=1, max_size=2
        ),
    }[kind]
    base = {"codes": codes, "within": windows, "min_count": st.integers(1, 2)}
    # exclude_codes: drawn from the same codes, so that they overlap the rule's codes.
    optional = {"exclude_codes": codes}
    if kind == "drug":
        exposure = st.fixed_dictionaries(
            {}, optional={"current": st.booleans(), "min_days": st.sampled_from([1, 30, 60, 400])}
        ).filter(lambda e: e.get("current") or "min_days" in e)
        lasting = st.fixed_dictionaries(
            {"codes": codes, "within": windows, "exposure": exposure},
            optional={"exclude_codes": codes},
        )
        return st.fixed_dictionaries(base, optional=optional) | lasting
    if kind == "condition":
        omop = st.fixed_dictionaries(
            {"codes": st.just(["201826"]), "vocabulary": st.just("OMOP"), "within": windows}
        )
        return st.fixed_dictionaries(base, optional=optional) | omop
    if kind in ("measurement", "observation"):
        valued = st.fixed_dictionaries(
            {"codes": codes, "within": windows},
            optional={
                "value": value_ranges(normal=kind == "measurement"),
                "latest": st.just(True),
                "among": codes,
                "exclude_codes": codes,
            },
        ).map(lambda d: d if d.get("latest") else {k: v for k, v in d.items() if k != "among"})
        return st.fixed_dictionaries(base, optional=optional) | valued
    return st.fixed_dictionaries(base, optional=optional)


def value_ranges(*, normal: bool = False):
    bounds = st.sampled_from([40, 53, 60])
    plain = (
        st.fixed_dictionaries({"min": bounds})
        | st.fixed_dictionaries({"max": bounds})
        | st.tuples(bounds, bounds).map(lambda t: {"min": min(t), "max": max(t)})
        | st.fixed_dictionaries({"above": bounds})
        | st.fixed_dictionaries({"below": bounds})
        | st.tuples(bounds, bounds)
        .filter(lambda t: t[0] < t[1])
        .map(lambda t: {"above": t[0], "below": t[1]})
    )
    if not normal:
        return plain
    factors = st.sampled_from([1, 2, 2.5])
    relative = st.fixed_dictionaries(
        {},
        optional={
            "min_times_upper_normal": factors,
            "max_times_upper_normal": factors,
            "min_times_lower_normal": factors,
            "max_times_lower_normal": factors,
        },
    ).filter(
        lambda d: (
            bool(d)
            and all(
                d.get(f"min_times_{e}_normal", 0) <= d.get(f"max_times_{e}_normal", 9)
                for e in ("upper", "lower")
            )
        )
    )
    return plain | relative


def drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


leaf_rules = st.one_of(
    *(event_rule(k).map(lambda spec, k=k: {k: drop_none(spec)}) for k in CODES),
    st.fixed_dictionaries(
        {"within": windows, "min_count": st.integers(1, 2)},
        optional={
            "types": st.lists(
                st.sampled_from(["inpatient", "outpatient", "emergency"]), min_size=1, max_size=2
            )
        },
    ).map(lambda v: {"visit": drop_none(v)}),
    st.sampled_from([1, 30, 400]).map(lambda d: {"death": {"within": {"days_after": d}}}),
    st.just({"death": {"within": {"days_before": -30, "days_after": 400}}}),
)


def groups(children):
    lists = st.lists(children, min_size=1, max_size=3)
    return (
        lists.map(lambda rs: {"any_of": rs})
        | lists.map(lambda rs: {"all_of": rs})
        | lists.map(lambda rs: {"none_of": rs})
        | lists.flatmap(
            lambda rs: st.integers(1, len(rs)).map(lambda n: {"at_least": {"n": n, "of": rs}})
        )
    )


demographics = st.fixed_dictionaries(
    {},
    optional={
        "age": st.tuples(st.integers(0, 100), st.integers(0, 100)).map(
            lambda t: {"min": min(t), "max": max(t)}
        ),
        "sex": st.lists(st.sampled_from(["female", "male"]), min_size=1, max_size=2, unique=True),
        "municipalities": st.lists(st.sampled_from(["0180", "1280"]), min_size=1, max_size=2),
    },
)
# Demographics as a rule (inside groups, or at the top level).
demographic_rules = demographics.filter(bool).map(lambda d: {"demographics": d})
rules = st.recursive(leaf_rules | demographic_rules, groups, max_leaves=4)
criteria_documents = st.fixed_dictionaries(
    {
        "demographics": demographics,
        "include": st.lists(rules, max_size=2),
        "exclude": st.lists(rules, max_size=2),
    }
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(region_data=regions(), document=criteria_documents)
def test_reference_duckdb_and_spark_agree(region_data, document):
    criteria = parse_criteria(document)
    people, rows = region_data
    with tempfile.TemporaryDirectory() as tmp:
        region = build_region(Path(tmp) / "region", people, rows, observe_all=False)
        expected = open_engine("reference", region).evaluate(criteria, INDEX)
        duckdb = open_engine("duckdb", region)
        assert duckdb.evaluate(criteria, INDEX) == expected
        assert duckdb.persons(criteria, INDEX) == open_engine("reference", region).persons(
            criteria, INDEX
        )
        assert open_engine("spark", region).evaluate(criteria, INDEX) == expected
        optimize.build(region, threads=1, memory_limit="500MB")
        optimized = open_engine("duckdb", region)  # rules from the code arrays where they can
        assert optimized.evaluate(criteria, INDEX) == expected
        assert optimized.persons(criteria, INDEX) == duckdb.persons(criteria, INDEX)
        sql = duckdb_engine(region, code_arrays=False)
        assert sql.evaluate(criteria, INDEX) == expected


# Each person's own index date: an entry event, first or latest, over a period whose ends
# are among the dates records fall on.
# Mostly wide periods and common codes, so that people do enter (and some records fall
# before the period: a first occurrence there keeps the person out).
entry_periods = st.tuples(dates, dates).map(
    lambda t: {"from": min(t).isoformat(), "to": max(t).isoformat()}
) | st.sampled_from([(-800, 400), (-365, 400), (-31, 31), (0, 400)]).map(
    lambda t: {
        "from": (INDEX + timedelta(days=t[0])).isoformat(),
        "to": (INDEX + timedelta(days=t[1])).isoformat(),
    }
)
common_events = st.sampled_from(
    [
        {"condition": {"codes": ["E11"]}},
        {"condition": {"codes": ["I"]}},
        {"condition": {"codes": ["E10-E11", "I00-I99"]}},
        {"condition": {"codes": ["I00-I99"], "exclude_codes": ["I21"]}},
        {"drug": {"codes": ["A10"]}},
        {"measurement": {"codes": ["HbA1c", "TC"], "value": {"min": 53}}},
    ]
)
entries = st.fixed_dictionaries(
    {
        "event": common_events
        | st.one_of(
            *(event_rule(k).map(lambda spec, k=k: {k: drop_none(spec)}) for k in CODES)
        ).map(
            lambda rule: {
                kind: {
                    k: v
                    for k, v in spec.items()
                    if k not in ("within", "min_count", "latest", "among", "exposure")
                }
                for kind, spec in rule.items()
            }
        ),
        "period": entry_periods,
    },
    optional={"occurrence": st.sampled_from(["first", "latest"])},
)


@st.composite
def entry_regions(draw):
    """``regions`` with, per person, a few records of the common entry events (some before,
    in and after the periods)."""
    people, rows = draw(regions())
    for p in people:
        for _ in range(draw(st.integers(1, 3))):
            kind, code = draw(
                st.sampled_from(
                    [
                        ("condition", "E119"),
                        ("condition", "I219"),
                        ("condition", "I109"),
                        ("drug", "A10BA02"),
                        ("measurement", "NPU27300"),
                    ]
                )
            )
            value = 60.0 if kind == "measurement" else None
            rows.append(event(kind, p["person_id"], code, draw(dates), value=value))
    return people, rows


entry_documents = st.fixed_dictionaries(
    {
        "entry": entries,
        "demographics": demographics,
        "include": st.lists(rules, max_size=2),
        "exclude": st.lists(rules, max_size=2),
    }
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    region_data=entry_regions(),
    document=entry_documents,
    observe_all=st.sampled_from([True, True, False]),
)
def test_entry_questions_agree(region_data, document, observe_all):
    criteria = parse_criteria(document)
    people, rows = region_data
    if observe_all:  # everyone observed 2000-2030 besides their drawn periods
        rows = [
            *rows,
            *(period(p["person_id"], date(2000, 1, 1), date(2030, 12, 31)) for p in people),
        ]
    with tempfile.TemporaryDirectory() as tmp:
        region = build_region(Path(tmp) / "region", people, rows, observe_all=False)
        reference = open_engine("reference", region)
        expected = reference.evaluate(criteria, INDEX)
        duckdb = open_engine("duckdb", region)
        assert duckdb.evaluate(criteria, INDEX) == expected
        assert duckdb.persons(criteria, INDEX) == reference.persons(criteria, INDEX)
        assert open_engine("spark", region).evaluate(criteria, INDEX) == expected
        optimize.build(region, threads=1, memory_limit="500MB")
        optimized = open_engine("duckdb", region)  # rules from the code arrays where they can
        assert optimized.evaluate(criteria, INDEX) == expected
        assert optimized.persons(criteria, INDEX) == duckdb.persons(criteria, INDEX)
        sql = duckdb_engine(region, code_arrays=False)
        assert sql.evaluate(criteria, INDEX) == expected


# The optimized-database properties below run on small regions: twice the examples.
twice_as_many = settings(
    max_examples=EXAMPLES * 2,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_optimized_agrees(document, people, rows, *, observe_all: bool) -> None:
    """The DuckDB engine on the region's optimized database answers as the reference does."""
    criteria = parse_criteria(document)
    with tempfile.TemporaryDirectory() as tmp:
        region = build_region(Path(tmp) / "region", people, rows, observe_all=observe_all)
        reference = open_engine("reference", region)
        optimize.build(region, threads=1, memory_limit="500MB")
        # Both routes of the optimized region: the code arrays where they answer a rule, and
        # every rule through DuckDB's SQL.
        for optimized in (open_engine("duckdb", region), duckdb_engine(region, code_arrays=False)):
            assert optimized.evaluate(criteria, INDEX) == reference.evaluate(criteria, INDEX)
            assert optimized.persons(criteria, INDEX) == reference.persons(criteria, INDEX)


# Rules that the optimized database answers from its summaries (first dates, observation runs):
# no lower window bound, no value range; many records share a day (12 possible dates).
summary_windows = st.none() | st.fixed_dictionaries({"days_after": st.sampled_from([0, 30])})
summary_rules = st.one_of(
    *(
        st.fixed_dictionaries(
            {"codes": st.lists(st.sampled_from(codes), min_size=1, max_size=2)},
            optional={"within": summary_windows},
        ).map(lambda spec, k=k: {k: drop_none(spec)})
        for k, codes in {
            "condition": ["E11", "E119", "I10"],
            "drug": ["A10", "C10"],
            "observation": ["smoker", "ex_smoker", "never_smoker"],
        }.items()
    ),
    st.fixed_dictionaries(
        {
            "codes": st.lists(st.sampled_from(["smoker", "ex_smoker"]), min_size=1, max_size=2),
            "latest": st.just(True),
        },
        optional={
            "within": summary_windows,
            "among": st.lists(
                st.sampled_from(["smoker", "ex_smoker", "never_smoker"]), min_size=1, max_size=3
            ),
        },
    ).map(lambda spec: {"observation": spec}),
)


@twice_as_many
@given(
    region_data=regions(),
    document=st.fixed_dictionaries(
        {
            "include": st.lists(summary_rules, max_size=2),
            "exclude": st.lists(summary_rules, max_size=1),
        }
    ),
)
def test_optimized_summaries_agree_with_the_reference(region_data, document):
    assert_optimized_agrees(document, *region_data, observe_all=False)


# Rules that the optimized database answers from each code's latest record as of the window's
# end (next and previous dates): windows with a start, two dates, latest values among several
# codes; few people and many records, so records of one code crowd the same days.
as_of_windows = st.fixed_dictionaries(
    {"days_before": st.sampled_from([30, 365])},
    optional={"days_after": st.sampled_from([0, 30])},
)
as_of_rules = st.one_of(
    st.fixed_dictionaries(
        {
            "codes": st.lists(st.sampled_from(["A10", "A10BA02", "C10"]), min_size=1, max_size=2),
            "within": as_of_windows,
            "min_count": st.integers(1, 3),
        }
    ).map(lambda spec: {"drug": spec}),
    st.fixed_dictionaries(
        {"within": st.none() | as_of_windows, "min_count": st.integers(1, 3)},
        optional={
            "types": st.lists(st.sampled_from(["inpatient", "outpatient"]), min_size=1, max_size=4)
        },
    ).map(lambda spec: {"visit": drop_none(spec)}),
    st.fixed_dictionaries(
        {
            "codes": st.lists(st.sampled_from(["HbA1c", "TC", "SBP"]), min_size=1, max_size=2),
            "latest": st.just(True),
        },
        optional={
            "within": as_of_windows,
            "value": value_ranges(normal=True),
            "among": st.lists(st.sampled_from(["HbA1c", "TC", "SBP"]), min_size=1, max_size=3),
        },
    ).map(lambda spec: {"measurement": spec}),
)


@st.composite
def crowded_regions(draw):
    """One or two people, observed throughout, with many records of few codes: a code's
    records crowd the window edges and share days."""
    people = [person(pid) for pid in range(1, draw(st.integers(1, 2)) + 1)]
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        pid = draw(st.integers(1, len(people)))
        day = draw(dates)
        kind = draw(st.sampled_from(["drug", "measurement", "visit"]))
        if kind == "visit":
            rows.append(visit(pid, day, draw(st.sampled_from([9201, 9202]))))
        elif kind == "drug":
            rows.append(event(kind, pid, draw(st.sampled_from(["A10BA02", "C10AA05"])), day))
        else:
            code = draw(st.sampled_from(["NPU27300", "NPU01566"]))
            value = draw(st.sampled_from([None, 40.0, 53.0, 60.0]))
            normal = draw(st.sampled_from([(None, None), (20.0, 26.5)]))
            rows.append(event(kind, pid, code, day, value=value, normal=normal))
    return people, rows


@twice_as_many
@given(
    region_data=crowded_regions(),
    document=st.fixed_dictionaries(
        {
            "include": st.lists(as_of_rules, min_size=1, max_size=2),
            "exclude": st.lists(as_of_rules, max_size=1),
        }
    ),
)
def test_optimized_latest_records_agree_with_the_reference(region_data, document):
    assert_optimized_agrees(document, *region_data, observe_all=True)
