"""Rules answered from the code arrays ``brygga optimize`` writes (issue 18): a question never
asked before is answered without opening DuckDB, gives the answers of DuckDB's SQL and of the
reference, and the arrays follow the region's tables incrementally."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import duckdb_engine, open_engine
from brygga.records import code_arrays, optimize
from brygga.records.store import Region
from tests.spec.conftest import build_region, death, event, period, person, visit
from tests.spec.test_cold_start import rewrite

INDEX = date(2024, 6, 1)
# Every kind of rule the arrays answer: prefixes, ranges and exclusions, windows, two dates,
# value ranges (normal ranges too), latest among codes, visits and deaths.
CRITERIA = parse_criteria(
    {
        "include": [
            {"condition": {"codes": ["E10-E11"], "exclude_codes": ["E109"]}},
            {"drug": {"codes": ["A10"], "within": {"days_before": 365}, "min_count": 2}},
            {
                "any_of": [
                    {"measurement": {"codes": ["HbA1c"], "value": {"min": 53}, "latest": True}},
                    {"measurement": {"codes": ["TC"], "value": {"max_times_upper_normal": 2}}},
                ]
            },
            {"visit": {"types": ["outpatient"], "within": {"days_before": 730}}},
        ],
        "exclude": [
            {"observation": {"codes": ["smoker"], "latest": True, "among": ["ex_smoker"]}},
            {"death": {"within": {"days_after": 30}}},
        ],
    }
)


def region_with_people(tmp_path: Path) -> Region:
    people = [person(p, born=date(1950 + p, 1, 1)) for p in range(1, 9)]
    rows = [
        *(event("condition", p, "E119", date(2015, 1, 1)) for p in range(1, 8)),
        event("condition", 8, "E109", date(2015, 1, 1)),  # excluded code only
        *(event("drug", p, "A10BA02", date(2024, 1, 1)) for p in range(1, 9)),
        *(event("drug", p, "A10BA02", date(2024, 3, 1)) for p in range(1, 7)),
        event("drug", 7, "A10BA02", date(2024, 1, 1)),  # the same day twice: one date
        *(event("measurement", p, "NPU27300", date(2023, 1, 1), value=60.0) for p in range(1, 9)),
        event("measurement", 2, "NPU27300", date(2024, 1, 1), value=40.0),  # latest is low
        event("measurement", 2, "NPU01566", date(2024, 1, 1), value=9.0, normal=(3.0, 5.0)),
        *(visit(p, date(2024, 2, 1), 9202) for p in range(1, 9) if p != 3),
        event("observation", 4, "77176002", date(2020, 1, 1)),
        event("observation", 5, "77176002", date(2020, 1, 1)),
        event("observation", 5, "8517006", date(2022, 1, 1)),  # latest: no longer a smoker
        death(6, date(2024, 6, 20)),
        *(period(p, date(2000, 1, 1), date(2030, 12, 31)) for p in range(1, 9)),
    ]
    return build_region(tmp_path / "r", people, rows, observe_all=False)


def test_a_new_question_is_answered_without_duckdb(tmp_path):
    region = region_with_people(tmp_path)
    expected = open_engine("reference", region).evaluate(CRITERIA, INDEX)
    optimize.build(region, threads=1)
    engine = duckdb_engine(region)
    assert engine.codes is not None
    assert engine.evaluate(CRITERIA, INDEX) == expected
    assert callable(engine.tables._present), "the DuckDB connection was opened"
    assert (engine.codes.answered, engine.codes.declined) == (7, 0)
    assert engine.persons(CRITERIA, INDEX) == [1, 2, 5]  # the expected people, named
    sql = duckdb_engine(region, code_arrays=False)
    assert sql.codes is None and sql.evaluate(CRITERIA, INDEX) == expected


@pytest.mark.slow
def test_rules_found_on_several_threads_give_the_answers_of_one(tmp_path):
    """A question's rules and the population on a new day are found side by side (issue 18):
    the same answers and people as one thread, each rule computed once and kept on disk
    once; rules only DuckDB answers still go to it."""
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    mixed = parse_criteria(
        {
            "include": [*CRITERIA.model_dump(mode="json", exclude_none=True)["include"]],
            "exclude": [{"drug": {"codes": ["A10"], "exposure": {"current": True}}}],
        }
    )
    answers = {}
    for threads in (1, 2):
        engine = duckdb_engine(region)
        engine.threads = threads
        engine.kept.stored = None  # nothing read from the other engine's disk
        for criteria in (CRITERIA, mixed):
            answers[(threads, criteria is mixed)] = (
                engine.evaluate(criteria, INDEX),
                engine.persons(criteria, INDEX),
            )
        assert (engine.codes.answered, engine.codes.declined) == (7, 1)
    assert answers[(1, False)] == answers[(2, False)]
    assert answers[(1, True)] == answers[(2, True)]
    assert answers[(2, False)][0] == open_engine("reference", region).evaluate(CRITERIA, INDEX)
    assert answers[(2, True)][0] == open_engine("reference", region).evaluate(mixed, INDEX)
    # Kept on disk once each, and read back by a new engine.
    first, again = duckdb_engine(region), duckdb_engine(region)
    assert first.evaluate(mixed, INDEX) == answers[(2, True)][0]
    assert first.stored.writes == first.stored.misses == 6
    assert again.evaluate(mixed, INDEX) == answers[(2, True)][0]
    assert (again.stored.hits, again.stored.misses, again.stored.writes) == (6, 0, 0)


def test_rules_the_arrays_cannot_answer_go_to_duckdb(tmp_path):
    region = region_with_people(tmp_path)
    optimize.build(region, threads=1)
    criteria = parse_criteria(
        {
            "include": [
                {"drug": {"codes": ["A10"], "exposure": {"current": True}}},
                {"condition": {"codes": ["201826"], "vocabulary": "OMOP"}},
            ]
        }
    )
    engine = duckdb_engine(region)
    answer = engine.evaluate(criteria, INDEX)
    assert (engine.codes.answered, engine.codes.declined) == (0, 2)
    assert answer == open_engine("reference", region).evaluate(criteria, INDEX)


def test_only_a_changed_tables_arrays_are_rewritten(tmp_path):
    region = region_with_people(tmp_path)
    first = optimize.build(region, threads=1)
    codes = optimize.arrays_path(first.path) / code_arrays.FOLDER
    assert sorted(p.name for p in codes.iterdir()) == sorted(code_arrays.folders())
    inodes = {p.name: (p / "person.npy").stat().st_ino for p in codes.iterdir()}

    rewrite(
        region,
        "measurement",
        {
            "measurement_id": 99,
            "person_id": 2,
            "measurement_concept_id": 0,
            "measurement_date": date(2024, 3, 1),
            "measurement_type_concept_id": 32817,
            "measurement_source_value": "NPU27300",
            "measurement_source_vocabulary": "NPU",
            "value_as_number": 70.0,
        },
    )
    region = Region.open(region.path)
    report = optimize.build(region, threads=1)
    assert report.rebuilt == ["measurement"]
    codes = optimize.arrays_path(report.path) / code_arrays.FOLDER
    now = {p.name: (p / "person.npy").stat().st_ino for p in codes.iterdir()}
    changed = sorted(n for n in now if now[n] != inodes[n])
    assert changed == ["measurement", "measurement_first"]  # the others linked
    engine = duckdb_engine(region)
    assert engine.evaluate(CRITERIA, INDEX) == open_engine("reference", region).evaluate(
        CRITERIA, INDEX
    )
    assert engine.codes.declined == 0


def test_an_older_build_gains_its_arrays_without_a_rebuild(tmp_path):
    region = region_with_people(tmp_path)
    first = optimize.build(region, threads=1)
    codes = optimize.arrays_path(first.path) / code_arrays.FOLDER
    for table in codes.iterdir():  # as written before the code arrays existed
        for f in table.iterdir():
            f.unlink()
        table.rmdir()
    again = optimize.build(region, threads=1)
    assert again.rebuilt == [] and again.path == first.path
    assert sorted(p.name for p in codes.iterdir()) == sorted(code_arrays.folders())
