"""The optimized database of a region: built atomically, used when current, ignored when stale."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from brygga.cohort.compile import Compiler
from brygga.cohort.criteria import parse_criteria, rule_body
from brygga.cohort.engines import duckdb_engine
from brygga.records import optimize
from brygga.records.store import Region
from tests.spec.conftest import build_region, event, period, person, visit


def small_region(tmp_path: Path, *, one_period_each: bool = True) -> Region:
    rows = [
        event("condition", 1, "E119", date(2020, 1, 1)),
        event("condition", 2, "I10", date(2021, 1, 1)),
        event("condition", 1, "I10", date(2019, 5, 1)),
    ]
    if not one_period_each:
        rows += [period(1, date(2000, 1, 1), date(2010, 1, 1))]
    return build_region(tmp_path / "r", [person(1), person(2)], rows)


def views(con) -> set[str]:
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return {r[0] for r in rows}


def test_build_is_used_by_region_duckdb(tmp_path):
    region = small_region(tmp_path)
    assert optimize.find(region.path) is None
    assert "population" not in views(region.duckdb())

    report = optimize.build(region, threads=1)

    assert optimize.find(region.path) == report.path
    assert report.population and report.tables["condition_occurrence"] == 3
    assert [p.name for p in region.path.iterdir() if p.name.endswith(".tmp")] == []
    con = region.duckdb()
    assert "population" in views(con)
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'condition_occurrence'")
    assert "optimized.condition_occurrence" in sql.fetchone()[0]
    # Sorted by (code, date, person).
    codes = con.execute("SELECT condition_source_value FROM condition_occurrence").fetchall()
    assert [c for (c,) in codes] == ["E119", "I10", "I10"]
    population = con.execute("SELECT person_id, death_date FROM population ORDER BY 1").fetchall()
    assert population == [(1, None), (2, None)]


def test_stale_database_is_ignored_and_replaced(tmp_path):
    region = small_region(tmp_path)
    old = optimize.build(region, threads=1).path
    manifest = json.loads((region.path / "manifest.json").read_text())
    manifest["created"] = "2030-01-01T00:00:00+00:00"  # as if the region were regenerated
    (region.path / "manifest.json").write_text(json.dumps(manifest))

    assert optimize.find(region.path) is None
    assert "population" not in views(Region.open(region.path).duckdb())
    new = optimize.build(Region.open(region.path), threads=1).path
    assert new != old and new.is_file() and not old.exists()


def test_no_population_table_when_people_have_several_periods(tmp_path):
    region = small_region(tmp_path, one_period_each=False)
    report = optimize.build(region, threads=1)
    assert not report.population
    assert "population" not in views(region.duckdb())


def test_person_index_and_summaries(tmp_path):
    """Layout 3: a dense person index on rule tables, first dates per code and person, and
    observation runs (records only on days that differ from the person's previous day)."""
    smoker, never = "77176002", "266919005"
    rows = [
        event("condition", 2, "I10", date(2021, 1, 1)),
        event("condition", 2, "I10", date(2019, 5, 1)),
        event("condition", 7, "I10", date(2018, 1, 1)),  # no such person: no index
        *(event("observation", 1, smoker, date(2020, m, 1)) for m in (1, 2, 3)),
        event("observation", 1, never, date(2020, 4, 1)),
        event("observation", 1, smoker, date(2020, 5, 1)),
        event("observation", 1, never, date(2020, 5, 1)),  # same day, two statuses
        event("observation", 1, smoker, date(2020, 6, 1)),
    ]
    region = build_region(tmp_path / "r", [person(5), person(2), person(1)], rows)
    optimize.build(region, threads=1)
    con = region.duckdb()
    index = con.execute("SELECT person_id, person_index FROM person_index ORDER BY 1").fetchall()
    assert index == [(1, 0), (2, 1), (5, 2)]
    first = con.execute(
        "SELECT condition_source_value, person_index, condition_start_date "
        "FROM condition_occurrence_first"
    ).fetchall()
    assert first == [("I10", 1, date(2019, 5, 1))]
    runs = con.execute(
        "SELECT observation_date, observation_source_value FROM observation_runs ORDER BY 1, 2"
    ).fetchall()
    assert runs == [
        (date(2020, 1, 1), smoker),  # 1 Feb and 1 Mar repeat 1 Jan: dropped
        (date(2020, 4, 1), never),
        (date(2020, 5, 1), never),
        (date(2020, 5, 1), smoker),
        (date(2020, 6, 1), smoker),
    ]
    # The cohort engine reads the summaries for the rules they serve, and only those.
    engine = duckdb_engine(region)
    compiler = Compiler(engine.tables, date(2021, 6, 1), key="person_index", distinct=False)

    def reads(rule: dict) -> str:
        (spec,) = [rule_body(r) for r in parse_criteria({"include": [rule]}).include]
        if getattr(spec, "latest", False):
            return engine.to_sql(compiler.latest_candidates(spec))
        return engine.to_sql(compiler.leaf(spec))

    assert "condition_occurrence_first" in reads({"condition": {"codes": ["I10"]}})
    windowed = {"condition": {"codes": ["I10"], "within": {"days_before": 365}}}
    assert "condition_occurrence_first" not in reads(windowed)
    assert "next_date" in reads(windowed)  # each code's latest record as of the window's end
    twice = {"condition": {"codes": ["I10"], "min_count": 2}}
    assert "second_date" in reads(twice)
    thrice = {"condition": {"codes": ["I10"], "min_count": 3}}
    assert "condition_occurrence_first" not in reads(thrice)
    valued = {"measurement": {"codes": ["TC"], "value": {"min": 5}, "within": {"days_before": 9}}}
    assert "next_date" not in reads(valued)  # a value range needs every record
    latest = {"observation": {"codes": ["smoker"], "latest": True}}
    assert "observation_runs" in reads(latest)
    assert engine.persons(parse_criteria({"include": [latest]}), date(2021, 6, 1)) == [1]


def test_as_of_columns_and_the_rules_they_answer(tmp_path):
    """Layout 4: each record's next and previous date of the same code (and next date with a
    value); a first-dates summary with second dates; the person's next observation run."""
    smoker, never = "77176002", "266919005"
    tc = "NPU01566"
    rows = [
        event("measurement", 1, tc, date(2020, 1, 1), value=7.0),
        event("measurement", 1, tc, date(2020, 6, 1), value=4.0),
        event("measurement", 1, tc, date(2020, 6, 1), value=6.6),  # same day: one is high
        event("measurement", 1, tc, date(2020, 9, 1)),  # no value: not a latest value
        event("measurement", 2, tc, date(2020, 3, 1), value=7.0),
        event("measurement", 2, tc, date(2020, 8, 1), value=5.0),
        visit(1, date(2015, 1, 1)),
        event("drug", 1, "C10AA05", date(2020, 1, 1)),
        event("drug", 1, "C10AA05", date(2020, 3, 1)),
        visit(2, date(2020, 2, 1)),
        visit(2, date(2020, 2, 1), 9201),
        visit(2, date(2020, 5, 1)),
        event("observation", 1, smoker, date(2019, 1, 1)),
        event("observation", 1, never, date(2020, 1, 1)),
        event("observation", 2, smoker, date(2020, 1, 1)),
        event("observation", 2, smoker, date(2020, 2, 1)),
    ]
    region = build_region(tmp_path / "r", [person(1), person(2)], rows)
    optimize.build(region, threads=1)
    con = region.duckdb()
    measured = con.execute(
        "SELECT person_id, measurement_date, value_as_number, next_date, next_valued_date, "
        "prev_date FROM measurement ORDER BY 1, 2, 3"
    ).fetchall()
    jan, mar, jun, aug, sep = (date(2020, m, 1) for m in (1, 3, 6, 8, 9))
    assert measured == [
        (1, jan, 7.0, jun, jun, None),
        (1, jun, 4.0, sep, None, jan),
        (1, jun, 6.6, sep, None, jan),
        (1, sep, None, None, None, jun),
        (2, mar, 7.0, aug, aug, None),
        (2, aug, 5.0, None, None, mar),
    ]
    first = con.execute(
        "SELECT person_index, measurement_date, second_date FROM measurement_first ORDER BY 1"
    ).fetchall()
    assert first == [(0, jan, jun), (1, mar, aug)]
    assert con.execute(
        "SELECT measurement_source_value, persons FROM measurement_codes"
    ).fetchall() == [(tc, 2)]
    runs = con.execute(
        "SELECT person_index, observation_date, next_start FROM observation_runs ORDER BY 1, 2"
    ).fetchall()
    assert runs == [(0, date(2019, 1, 1), jan), (0, jan, None), (1, jan, None)]

    engine = duckdb_engine(region)

    def persons(rule: dict, index: date) -> list[int]:
        return engine.persons(parse_criteria({"include": [rule]}), index)

    latest_high = {"measurement": {"codes": ["TC"], "value": {"min": 6.5}, "latest": True}}
    assert persons(latest_high, date(2020, 7, 1)) == [1, 2]  # 1: 6.6 on 1 June; 2: 7.0
    assert persons(latest_high, date(2020, 12, 1)) == [1]  # 2's latest is 5.0
    in_window = {**latest_high["measurement"], "within": {"days_before": 100}}
    assert persons({"measurement": in_window}, date(2020, 12, 1)) == []
    recent_visit = {"visit": {"within": {"days_before": 120}}}
    assert persons(recent_visit, date(2020, 6, 1)) == [2]
    two_visits = {"visit": {"within": {"days_before": 150}, "min_count": 2}}
    assert persons(two_visits, date(2020, 6, 1)) == [2]
    assert persons(two_visits, date(2020, 4, 1)) == []  # two visits, one date
    # The window's first day counts: 1 January is 60 days before 1 March 2020.
    statin = {"codes": ["C10"], "min_count": 2}
    assert persons({"drug": {**statin, "within": {"days_before": 60}}}, date(2020, 3, 1)) == [1]
    assert persons({"drug": {**statin, "within": {"days_before": 59}}}, date(2020, 3, 1)) == []
    statuses = ["smoker", "ex_smoker", "never_smoker"]
    smoking = {"observation": {"codes": ["smoker"], "latest": True, "among": statuses}}
    assert persons(smoking, date(2020, 6, 1)) == [2]
    assert persons(smoking, date(2019, 6, 1)) == [1]
    # Person 1's latest day holds "never" only; among smoker alone it is 2019's "smoker".
    smoking_only = {"observation": {**smoking["observation"], "among": ["smoker"]}}
    assert persons(smoking_only, date(2020, 6, 1)) == [1, 2]
