"""A new process's cold start (issue 18): the optimized database's arrays and the rule bitmaps
kept on disk are used, give the answers DuckDB and the reference give, and are never used
once the region has changed; ``brygga optimize`` rebuilds only what a changed table feeds."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from brygga.cohort import stored as stored_module
from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import duckdb_engine, open_engine
from brygga.config import get_settings
from brygga.records import optimize, schema
from brygga.records.store import Region
from tests.spec.conftest import build_region, death, event, period, person

INDEX = date(2024, 6, 1)
CRITERIA = parse_criteria(
    {
        "demographics": {"age": {"min": 18}},
        "include": [
            {"condition": {"codes": ["E11"]}},
            {"measurement": {"codes": ["HbA1c"], "value": {"min": 53}, "latest": True}},
        ],
        "exclude": [{"condition": {"codes": ["I21"], "within": {"days_before": 365}}}],
    }
)
RULES = 3


def region_with_people(tmp_path: Path) -> Region:
    people = [
        person(1, born=date(1950, 6, 1)),
        person(2, born=date(2006, 6, 2), sex="male"),  # 18 the day after the index date
        person(3, born=date(2006, 6, 1), municipality=None),  # 18 on the index date
        person(4, born=date(1972, 2, 29), sex="male", municipality="1280"),
        person(5, born=date(1980, 1, 1)),  # died before the index date
        person(6, born=date(1990, 1, 1)),  # observed only until 2020
    ]
    rows = [
        *(event("condition", p, "E119", date(2015, 1, 1)) for p in range(1, 7)),
        *(event("measurement", p, "HbA1c", date(2023, 1, 1), value=60.0) for p in range(1, 7)),
        event("measurement", 4, "HbA1c", date(2024, 1, 1), value=40.0),
        event("condition", 3, "I21", date(2024, 1, 1)),
        death(5, date(2024, 1, 1)),
        *(period(p, date(2000, 1, 1), date(2030, 12, 31)) for p in range(1, 6)),
        period(6, date(2000, 1, 1), date(2020, 1, 1)),
    ]
    return build_region(tmp_path / "r", people, rows, observe_all=False)


def rewrite(region: Region, name: str, extra: dict | None = None) -> None:
    """Write one table's file again (with one more row when given): same manifest."""
    path = region.table_path(name)
    assert path is not None
    target = path if path.is_file() else sorted(path.glob("*.parquet"))[0]
    table = pq.read_table(target)
    if extra is not None:
        row = {c: [extra.get(c)] for c in table.column_names}
        table = pa.concat_tables([table, pa.table(row, schema=table.schema)])
    pq.write_table(table, target)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000))


def test_population_and_bitmaps_come_from_disk_in_a_new_engine(tmp_path):
    region = region_with_people(tmp_path)
    reference = open_engine("reference", region).evaluate(CRITERIA, INDEX)
    optimize.build(region, threads=1)

    first = duckdb_engine(region)
    assert first.stored is not None
    assert first.evaluate(CRITERIA, INDEX) == reference
    assert (first.stored.hits, first.stored.misses, first.stored.writes) == (0, RULES, RULES)
    assert first.stored.populations == 1

    # A new engine (as in a new process): every rule read from disk, DuckDB never opened.
    second = duckdb_engine(region)
    assert second.evaluate(CRITERIA, INDEX) == reference
    assert (second.stored.hits, second.stored.misses) == (RULES, 0)
    assert callable(second.tables._present), "the DuckDB connection was opened"
    assert second.persons(CRITERIA, INDEX) == open_engine("reference", region).persons(
        CRITERIA, INDEX
    )
    # Another day: the population from the arrays, the rules computed again.
    other = date(2019, 12, 31)
    assert second.evaluate(CRITERIA, other) == open_engine("reference", region).evaluate(
        CRITERIA, other
    )


def test_an_entry_question_comes_from_disk_in_a_new_engine(tmp_path):
    """Each person's own index date: the entries and the rules' bitmaps kept on disk too."""
    region = region_with_people(tmp_path)
    entry = {
        "event": {"condition": {"codes": ["E11"]}},
        "period": {"from": "2014-01-01", "to": "2019-12-31"},
    }
    criteria = parse_criteria(
        {
            "entry": entry,
            "include": [{"condition": {"codes": ["I21"], "within": {"days_after": 3650}}}],
            "exclude": [{"death": {"within": {"days_after": 3650}}}],
        }
    )
    reference = open_engine("reference", region).evaluate(criteria, INDEX)
    assert reference.steps[0][1] == 6 and reference.count == 1  # 3's I21 in 2024
    optimize.build(region, threads=1)

    first = duckdb_engine(region)
    assert first.evaluate(criteria, INDEX) == reference
    assert (first.stored.hits, first.stored.misses, first.stored.writes) == (0, 2, 2)

    second = duckdb_engine(region)
    assert second.evaluate(criteria, INDEX) == reference
    assert (second.stored.hits, second.stored.misses) == (2, 0)
    assert callable(second.tables._present), "the DuckDB connection was opened"
    assert second.persons(criteria, INDEX) == open_engine("reference", region).persons(
        criteria, INDEX
    )
    # A rule not kept yet: computed on the connection (the entries' table created there).
    more = parse_criteria(
        {"entry": entry, "exclude": [{"death": {"within": {"days_after": 3300}}}]}
    )
    assert second.evaluate(more, INDEX) == open_engine("reference", region).evaluate(more, INDEX)


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    monkeypatch.setenv("BRYGGA_COHORT_CACHE", "false")
    get_settings.cache_clear()
    try:
        engine = duckdb_engine(region)
        assert engine.stored is None and engine.kept.stored is None
        assert engine.evaluate(CRITERIA, INDEX) == open_engine("reference", region).evaluate(
            CRITERIA, INDEX
        )
    finally:
        monkeypatch.delenv("BRYGGA_COHORT_CACHE")
        get_settings.cache_clear()
    assert not (optimize.arrays_path(optimize.find(region.path)) / "bitmaps").exists()


def test_a_changed_table_is_never_answered_from_the_old_cache(tmp_path):
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    duckdb_engine(region).evaluate(CRITERIA, INDEX)  # rule bitmaps kept on disk
    old = optimize.find(region.path)
    assert old is not None and any((optimize.arrays_path(old) / "bitmaps").iterdir())

    # Person 4's last HbA1c is now high: the rule's answer changes; the manifest does not.
    rewrite(
        region,
        "measurement",
        {
            "measurement_id": 99,
            "person_id": 4,
            "measurement_concept_id": 0,
            "measurement_date": date(2024, 3, 1),
            "measurement_type_concept_id": 32817,
            "measurement_source_value": "HbA1c",
            "measurement_source_vocabulary": "NPU",
            "value_as_number": 70.0,
        },
    )
    region = Region.open(region.path)
    assert optimize.find(region.path) is None  # the old database (and its arrays) is stale
    expected = open_engine("reference", region).evaluate(CRITERIA, INDEX)
    assert expected != open_engine("duckdb", region).evaluate(CRITERIA, date(2023, 6, 1))
    engine = duckdb_engine(region)
    assert engine.stored is None
    assert engine.evaluate(CRITERIA, INDEX) == expected

    report = optimize.build(region, threads=1)
    assert report.rebuilt == ["measurement"]  # incremental: only the changed table
    assert not old.exists() and not optimize.arrays_path(old).exists()
    rebuilt = duckdb_engine(region)
    assert rebuilt.evaluate(CRITERIA, INDEX) == expected
    assert rebuilt.stored.hits == 0


def test_only_the_dependents_of_a_changed_table_are_rebuilt(tmp_path):
    region = region_with_people(tmp_path)
    first = optimize.build(region, threads=1)
    assert set(first.rebuilt) == {*region.tables(), optimize.POPULATION}
    written = first.path.stat().st_mtime_ns
    again = optimize.build(region, threads=1)
    assert again.rebuilt == [] and again.path == first.path  # nothing changed: not rewritten
    assert first.path.stat().st_mtime_ns == written and again.tables == first.tables

    rewrite(region, "observation_period")
    assert optimize.build(Region.open(region.path), threads=1).rebuilt == [
        "observation_period",
        optimize.POPULATION,
    ]
    rewrite(region, "person")
    rebuilt = optimize.build(Region.open(region.path), threads=1).rebuilt
    indexed = [n for n in region.tables() if optimize.indexed(schema.table(n))]
    assert set(rebuilt) == {"person", *indexed, optimize.POPULATION}
    assert "observation_period" not in rebuilt and "location" not in rebuilt
    region = Region.open(region.path)
    assert duckdb_engine(region).evaluate(CRITERIA, INDEX) == open_engine(
        "reference", region
    ).evaluate(CRITERIA, INDEX)


def test_bitmaps_of_another_engine_version_are_not_read(tmp_path, monkeypatch):
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    duckdb_engine(region).evaluate(CRITERIA, INDEX)
    monkeypatch.setattr(stored_module, "SEMANTICS", "another")
    monkeypatch.setattr("brygga.cohort.engines.SEMANTICS", "another")
    engine = duckdb_engine(region)
    engine.evaluate(CRITERIA, INDEX)
    assert (engine.stored.hits, engine.stored.misses) == (0, RULES)


@pytest.mark.parametrize("day", [date(2024, 6, 1), date(2024, 1, 1), date(2020, 1, 1)])
def test_population_arrays_agree_with_duckdb(tmp_path, day):
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    on_disk = duckdb_engine(region).population(day)
    queried = duckdb_engine(region)
    queried.stored = None
    queried.kept.stored = None
    asked = queried.population(day)
    whole = parse_criteria({})
    assert on_disk.cell_counts(on_disk.alive) == asked.cell_counts(asked.alive)
    assert (on_disk.alive == asked.alive).all() and (on_disk.age == asked.age).all()
    assert duckdb_engine(region).evaluate(whole, day) == open_engine("reference", region).evaluate(
        whole, day
    )
