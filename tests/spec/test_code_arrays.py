"""Rules answered from the code arrays ``brygga optimize`` writes (issue 18): a question never
asked before is answered without opening DuckDB, gives the answers of DuckDB's SQL and of the
reference, and the arrays follow the region's tables incrementally."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from brygga.cohort.codearrays import CodeArrays
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


# Every kind of rule the arrays answer relative to each person's own entry date, from the
# (code, person, day) keys: windows after, before and around it (negative bounds), no lower
# bound, exclude_codes, two and three dates, "latest" without a value range, visits, deaths.
ENTRY_CRITERIA = parse_criteria(
    {
        "entry": {
            "event": {"condition": {"codes": ["E11"]}},
            "period": {"from": "2015-01-01", "to": "2020-12-31"},
        },
        "include": [
            {"drug": {"codes": ["A10BA02"], "within": {"days_after": 90}}},
            {"visit": {"types": ["outpatient"], "within": {"days_before": 365}, "min_count": 2}},
            {
                "any_of": [
                    {"observation": {"codes": ["smoker"], "latest": True, "among": ["ex_smoker"]}},
                    {"condition": {"codes": ["I10"], "min_count": 3}},
                ]
            },
        ],
        "exclude": [
            {
                "drug": {
                    "codes": ["A10"],
                    "exclude_codes": ["A10BA02"],
                    "within": {"days_before": 3650, "days_after": -1},
                }
            },
            {"condition": {"codes": ["I21"], "within": {"days_before": -10, "days_after": 20}}},
            {"death": {"within": {"days_after": 30}}},
        ],
    }
)


def region_with_entries(tmp_path: Path) -> Region:
    """People 1-9 entering on their own dates (the first E11: 9's before the period)."""
    people = [person(p, born=date(1950 + p, 1, 1)) for p in range(1, 11)]
    entered = {p: date(2015, 1, 1) + timedelta(days=97 * p) for p in range(1, 10)}
    entered[9] = date(2014, 6, 1)
    rows = [
        *(event("condition", p, "E119", d) for p, d in entered.items()),
        event("condition", 1, "E119", date(2021, 1, 1)),  # a later record: not the entry
        event("condition", 10, "E109", date(2016, 1, 1)),  # E10 only: never entered
        *(event("drug", p, "A10BA02", d + timedelta(days=10)) for p, d in entered.items()),
        event("drug", 7, "A10BA02", entered[7] - timedelta(days=1)),  # before: an exclude_code
        event("drug", 2, "A10BJ02", entered[2] - timedelta(days=200)),  # an earlier A10 drug
        event("drug", 3, "A10BJ02", entered[3]),  # on the entry date: after the window's end
        event("drug", 4, "A10BJ02", entered[4] - timedelta(days=3651)),  # before the window
        *(visit(p, d - timedelta(days=10), 9202) for p, d in entered.items() if p != 5),
        *(visit(p, d - timedelta(days=20), 9202) for p, d in entered.items() if p not in (5, 6)),
        visit(6, entered[6] - timedelta(days=10), 9202),  # the same day twice: one date
        visit(5, entered[5] - timedelta(days=400), 9202),  # outside the window
        visit(5, entered[5] - timedelta(days=5), 9201),  # another type
        *(event("observation", p, "77176002", d - timedelta(days=50)) for p, d in entered.items()),
        event("observation", 1, "8517006", entered[1] - timedelta(days=10)),  # ex-smoker since
        event("observation", 2, "8517006", entered[2] + timedelta(days=10)),  # after the entry
        *(event("condition", 1, "I10", entered[1] - timedelta(days=d)) for d in (1, 2, 3)),
        event("condition", 8, "I219", entered[8] + timedelta(days=15)),  # 10-20 days after
        event("condition", 2, "I219", entered[2] + timedelta(days=5)),  # too soon to count
        death(3, entered[3] + timedelta(days=25)),
        death(8, entered[8] + timedelta(days=400)),
        *(period(p, date(2000, 1, 1), date(2030, 12, 31)) for p in range(1, 11)),
    ]
    return build_region(tmp_path / "r", people, rows, observe_all=False)


def test_an_entry_question_is_answered_from_the_person_day_keys(tmp_path):
    region = region_with_entries(tmp_path)
    reference = open_engine("reference", region)
    expected = reference.evaluate(ENTRY_CRITERIA, INDEX)
    optimize.build(region, threads=1)
    engine = duckdb_engine(region)
    engine.kept.stored = None  # computed here, not read from an earlier process's files
    assert engine.evaluate(ENTRY_CRITERIA, INDEX) == expected
    assert (engine.codes.answered, engine.codes.declined) == (7, 0)
    assert engine.persons(ENTRY_CRITERIA, INDEX) == reference.persons(ENTRY_CRITERIA, INDEX)
    sql = duckdb_engine(region, code_arrays=False)
    sql.kept.stored = None
    assert sql.evaluate(ENTRY_CRITERIA, INDEX) == expected
    assert [n for _, n in expected.steps] == [8, 8, 8, 6, 6, 5, 4, 3]
    assert engine.persons(ENTRY_CRITERIA, INDEX) == [1, 4, 7]


def test_an_older_builds_arrays_gain_their_keys_in_place(tmp_path, monkeypatch):
    """A build from before the keys existed (``bench/add_code_arrays.py`` on scale 1.0): only
    ``person_day.npy`` and ``person_blocks.npy`` are added, each code's keys sorted, also when
    sorted in parts (``SORT_ROWS``: a code with more rows), with the first row of each block
    of people (``BLOCK_PEOPLE``: several blocks here)."""
    region = region_with_entries(tmp_path)
    built = optimize.build(region, threads=1)
    codes = optimize.arrays_path(built.path) / code_arrays.FOLDER
    expected = {}
    for name in code_arrays.TABLES:
        expected[name] = np.load(codes / name / f"{code_arrays.KEYS}.npy")
        for kind in (code_arrays.KEYS, code_arrays.BLOCKS):
            (codes / name / f"{kind}.npy").unlink()
    assert not (codes / "condition_occurrence_first" / f"{code_arrays.KEYS}.npy").exists()
    inodes = {p: p.stat().st_ino for p in codes.glob("*/*")}
    monkeypatch.setattr(code_arrays, "SORT_ROWS", 3)
    monkeypatch.setattr(code_arrays, "BLOCK_PEOPLE", 2)
    again = optimize.build(region, threads=1)
    assert again.rebuilt == [] and again.path == built.path
    assert {p: p.stat().st_ino for p in codes.glob("*/*") if p in inodes} == inodes
    for name in code_arrays.TABLES:
        keys = np.load(codes / name / f"{code_arrays.KEYS}.npy")
        blocks = np.load(codes / name / f"{code_arrays.BLOCKS}.npy")
        assert np.array_equal(keys, expected[name])
        offsets = np.load(codes / name / "offsets.npy")
        person = np.load(codes / name / "person.npy")
        day = np.load(codes / name / "day.npy")
        people = int(person.max()) + 1 if len(person) else 0
        assert blocks.shape == (len(offsets) - 1, -(-people // 2) + 1)
        for i, (a, b) in enumerate(itertools.pairwise(offsets.tolist())):
            assert np.array_equal(keys[a:b], np.sort(code_arrays.key(person[a:b], day[a:b])))
            starts = [int((person[a:b] < 2 * k).sum()) for k in range(blocks.shape[1])]
            assert blocks[i].tolist() == starts
    engine = duckdb_engine(region)
    engine.kept.stored = None
    reference = open_engine("reference", region)
    assert engine.evaluate(ENTRY_CRITERIA, INDEX) == reference.evaluate(ENTRY_CRITERIA, INDEX)
    assert engine.codes.declined == 0


def test_entry_rules_the_keys_cannot_answer_go_to_duckdb(tmp_path):
    region = region_with_entries(tmp_path)
    optimize.build(region, threads=1)
    criteria = parse_criteria(
        {
            "entry": ENTRY_CRITERIA.entry.model_dump(mode="json", by_alias=True),
            "include": [
                {"drug": {"codes": ["A10"], "exposure": {"current": True}}},
                {"measurement": {"codes": ["HbA1c"], "value": {"min": 53}}},
            ],
        }
    )
    engine = duckdb_engine(region)
    engine.kept.stored = None
    answer = engine.evaluate(criteria, INDEX)
    assert (engine.codes.answered, engine.codes.declined) == (0, 2)
    assert answer == open_engine("reference", region).evaluate(criteria, INDEX)


SMOKER, EX, NEVER = "77176002", "8517006", "266919005"
STATUS_DAYS = [date(2019, 6, 1), date(2021, 6, 1), date(2022, 6, 1), date(2024, 6, 1)]
STATUS_RULES = [
    {"codes": ["smoker"], "among": ["smoker", "ex_smoker", "never_smoker"]},
    {"codes": ["smoker", "ex_smoker"], "among": ["never_smoker"]},  # every status too
    {"codes": ["smoker"], "among": ["ex_smoker"]},  # never_smoker does not compete
    {"codes": ["ex_smoker"]},
]


def status_region(tmp_path: Path, *, without_code: bool) -> Region:
    rows = [
        event("observation", 1, SMOKER, date(2020, 1, 1)),
        event("observation", 1, EX, date(2022, 1, 1)),
        event("observation", 2, SMOKER, date(2020, 1, 1)),
        event("observation", 2, SMOKER, date(2021, 1, 1)),  # the same run
        event("observation", 3, SMOKER, date(2020, 1, 1)),
        event("observation", 3, NEVER, date(2023, 6, 1)),
        event("observation", 4, SMOKER, date(2021, 1, 1)),
        event("observation", 4, EX, date(2021, 1, 1)),  # two statuses on one day
        event("observation", 5, EX, date(2019, 1, 1)),
        event("observation", 5, NEVER, date(2020, 1, 1)),
        event("observation", 5, SMOKER, date(2022, 1, 1)),
        event("observation", 5, NEVER, date(2022, 1, 1)),
    ]
    if without_code:  # a later record without a code: a run the arrays leave out
        rows.append(event("observation", 2, None, date(2022, 1, 1)))
    people = [person(p, born=date(1960 + p, 1, 1)) for p in range(1, 7)]
    periods = [period(p, date(2000, 1, 1), date(2030, 12, 31)) for p in range(1, 7)]
    return build_region(tmp_path, people, [*rows, *periods], observe_all=False)


@pytest.mark.parametrize("without_code", [False, True])
def test_latest_status_over_all_history_reads_the_runs(tmp_path, monkeypatch, without_code):
    """Smoking status over all history from the observation runs' arrays (issue 18): each
    person's current run when every status competes (one pass, not every candidate run),
    every candidate run otherwise, and never the current run when runs without a code were
    left out of the arrays; the reference's answers and people on every day."""
    region = status_region(tmp_path / "r", without_code=without_code)
    optimize.build(region, threads=1)
    runs = next(optimize.arrays_path(optimize.find(region.path)).glob("codes/observation_runs"))
    assert code_arrays.fingerprint(runs) is not None
    reference = open_engine("reference", region)
    passes = spy(monkeypatch, "_latest")
    for rule in STATUS_RULES:
        criteria = parse_criteria({"include": [{"observation": {**rule, "latest": True}}]})
        for day in STATUS_DAYS:
            engine = duckdb_engine(region)
            engine.kept.stored = None  # every rule computed here
            assert engine.evaluate(criteria, day) == reference.evaluate(criteria, day), (rule, day)
            assert engine.persons(criteria, day) == reference.persons(criteria, day)
            assert (engine.codes.answered, engine.codes.declined) == (1, 0)
    # Every status competes in the first two rules: their current runs, unless one is missing.
    every_run_rules = len(STATUS_RULES) if without_code else len(STATUS_RULES) - 2
    assert passes == ["observation_runs"] * every_run_rules * len(STATUS_DAYS)


def visits_region(tmp_path: Path) -> Region:
    """Visits of three types up to 2024-05-20 (the table's last day)."""
    days = [date(2019, 3, 1), date(2023, 6, 30), date(2023, 7, 1), date(2024, 1, 1)]
    days += [date(2024, 3, 31), date(2024, 4, 1), date(2024, 5, 20)]
    rows = []
    for p in range(1, 10):
        for k, day in enumerate(days):
            if (p + k) % 3 == 0 or p == k:
                rows.append(visit(p, day, (9202, 9201, 9203)[(p * k) % 3]))
    rows.append(visit(3, date(1975, 1, 1)))  # long before: the snapshots' base
    people = [person(p, born=date(1950 + p, 1, 1)) for p in range(1, 11)]
    periods = [period(p, date(1970, 1, 1), date(2030, 12, 31)) for p in range(1, 11)]
    return build_region(tmp_path, people, [*rows, *periods], observe_all=False)


VISIT_RULES = [
    {},
    {"within": {"days_before": 0}},
    {"within": {"days_before": 1}},
    {"within": {"days_before": 91}},
    {"within": {"days_before": 365}},
    {"within": {"days_before": 1825}},
    {"within": {"days_before": 30, "days_after": -10}},  # ends before the index date
    {"types": ["outpatient"], "within": {"days_before": 180}},
    {"types": ["inpatient"]},
]


def test_a_visit_rule_ending_on_a_snapshot_day_reads_one_day_per_person(tmp_path, monkeypatch):
    """Visits as of the table's last day and the recent month starts (issue 18): a visit
    rule whose window ends on such a day compares each person's latest day with the
    window's start, every other rule reads the visits themselves; the reference's answers
    and people on every day."""
    region = visits_region(tmp_path / "r")
    optimize.build(region, threads=1)
    folder = optimize.arrays_path(optimize.find(region.path)) / "codes" / "visit_occurrence"
    days = json.loads((folder / "asof.json").read_text())["days"]
    snapshots = [code_arrays.EPOCH + timedelta(days=d) for d in days]
    assert snapshots[-1] == date(2024, 5, 20) and len(snapshots) == 13
    assert snapshots[:2] == [date(2023, 6, 1), date(2023, 7, 1)]
    reference = open_engine("reference", region)
    passes = spy(monkeypatch, "_dated")
    later = [date(2024, 5, 21), date(2025, 1, 1)]  # after the last day: its snapshot
    others = [date(2023, 6, 30), date(2024, 3, 31)]  # no snapshot: the visits
    for rule in VISIT_RULES:
        criteria = parse_criteria({"include": [{"visit": rule}]})
        for day in [*snapshots, *later, *others]:
            engine = duckdb_engine(region)
            engine.kept.stored = None
            passes.clear()
            assert engine.evaluate(criteria, day) == reference.evaluate(criteria, day), (rule, day)
            assert engine.persons(criteria, day) == reference.persons(criteria, day)
            end = day + timedelta(days=rule.get("within", {}).get("days_after", 0))
            snapshot = end in snapshots or end > snapshots[-1]
            assert passes == ([] if snapshot else ["visit_occurrence"]), (rule, day)


def spy(monkeypatch, name: str) -> list[str]:
    """The table folders ``CodeArrays.<name>`` (a static method) is called with, in order."""
    calls: list[str] = []
    original = getattr(CodeArrays, name)

    def counted(*args):
        calls.append(args[0].folder.name)
        return original(*args)

    monkeypatch.setattr(CodeArrays, name, staticmethod(counted))
    return calls
