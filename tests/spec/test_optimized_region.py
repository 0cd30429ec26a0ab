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
from conftest import build_region, event, period, person


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
    twice = {"condition": {"codes": ["I10"], "min_count": 2}}
    assert "condition_occurrence_first" not in reads(twice)
    latest = {"observation": {"codes": ["smoker"], "latest": True}}
    assert "observation_runs" in reads(latest)
    assert engine.persons(parse_criteria({"include": [latest]}), date(2021, 6, 1)) == [1]
