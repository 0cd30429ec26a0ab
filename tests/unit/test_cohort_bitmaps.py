"""The bitmap engine (cohort/bitmaps.py) against the plain SQL plan, and the shared engines.

The spec tests (tests/spec) check every rule kind and edge against the reference evaluator on
hand-made regions; here the realistic benchmark criteria run on a small synthetic region, where
the bitmap answers must equal those of ``Compiled.summary`` run as one SQL query.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from brygga.cohort._entrykeep import entry_key, table_name
from brygga.cohort.bitmaps import Kept, Population
from brygga.cohort.criteria import load_criteria, parse_criteria
from brygga.cohort.engines import IbisEngine, duckdb_engine, engine_for, forget_engines
from brygga.cohort.feasibility import eligible_persons
from brygga.records.store import Region

CRITERIA = Path(__file__).resolve().parents[2] / "bench" / "criteria"
INDEX = date(2024, 6, 1)


@pytest.fixture(scope="module")
def region(small_region) -> Region:
    return small_region.region


@pytest.fixture(scope="module")
def engines(region):
    bitmaps = duckdb_engine(region)
    plain = IbisEngine("duckdb", bitmaps.tables, bitmaps.to_sql, bitmaps.run_sql, bitmaps.fetch)
    return bitmaps, plain


# Between them: any_of, at_least, latest values, min_count, visits, deaths, demographics.
@pytest.mark.parametrize(
    "name", ["ckd", "prevention_cvd", "healthy_volunteers", "copd_smokers", "oncology_breast"]
)
def test_bitmaps_agree_with_the_sql_plan(engines, name):
    bitmaps, plain = engines
    criteria = load_criteria(CRITERIA / f"{name}.yaml")
    expected = plain.evaluate(criteria, INDEX)
    assert bitmaps.evaluate(criteria, INDEX) == expected
    assert bitmaps.evaluate(criteria, INDEX) == expected  # from the kept bitmaps
    assert bitmaps.persons(criteria, INDEX) == plain.persons(criteria, INDEX)
    assert bitmaps.keys(criteria, INDEX) == plain.keys(criteria, INDEX)


def test_groups_reuse_the_bitmaps_of_their_rules(engines):
    bitmaps, _ = engines
    e11 = {"condition": {"codes": ["E11"], "vocabulary": "ICD10"}}
    i10 = {"condition": {"codes": ["I10"], "vocabulary": "ICD10"}}
    bitmaps.kept.drop_bitmaps()
    bitmaps.evaluate(parse_criteria({"include": [e11], "exclude": [i10]}), INDEX)
    assert len(bitmaps.kept.bitmaps) == 3  # the two rules and the (empty) demographics
    grouped = parse_criteria({"include": [{"any_of": [e11, i10]}, {"all_of": [i10, e11]}]})
    result = bitmaps.evaluate(grouped, INDEX)
    assert len(bitmaps.kept.bitmaps) == 3  # no new rule set was computed
    alone = bitmaps.evaluate(parse_criteria({"include": [e11, i10]}), INDEX)
    assert result.count == alone.count > 0


def test_population_cells_and_demographics():
    table = pa.table(
        {
            "person_id": pa.array([3, 10, 11, 40], pa.int64()),
            "gender_concept_id": [8532, 8507, 8507, 0],
            "sex": ["female", "male", "male", "unknown"],
            "age": pa.array([34, 65, 61, 7], pa.int32()),
            "age_band": pa.array([30, 60, 60, 0], pa.int32()),
            "municipality": ["0180", "0114", None, "0180"],
            "i": pa.array([0, 1, 3, 4], pa.int32()),
        }
    )
    population = Population.from_arrow(table, 6)  # people 2 and 5: not in the population
    assert population.cell_counts(population.alive) == {
        ("female", 30, "0180"): 1,
        ("male", 60, "0114"): 1,
        ("male", 60, None): 1,
        ("unknown", 0, "0180"): 1,
    }
    men_over_60 = parse_criteria({"demographics": {"sex": ["male"], "age": {"min": 62}}})
    assert population.mask(population.demographics(men_over_60.demographics)).tolist() == [
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    # An unknown municipality never passes a municipality filter.
    stockholm = parse_criteria({"demographics": {"municipalities": ["0180", "0114"]}})
    assert population.mask(population.demographics(stockholm.demographics)).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize("size", [9_000, 9_001, 9_007])  # whole bytes and a partial last one
def test_a_sparse_population_answers_as_a_dense_one(size):
    # An entry's people are a few among many: demographics and cell counts then work on them
    # alone (``Population._sparse``); built without ``at``, the same population takes the pass
    # over everyone. Both must give the same bits and counts, down to the last partial byte.
    rng = np.random.default_rng(size)
    at = np.sort(rng.choice(size, 700, replace=False))
    at[-1] = size - 1  # the last person, in the last (partial) byte
    n = len(at)
    sparse = Population.from_arrays(
        at=at,
        age=rng.integers(0, 100, n),
        age_band=np.zeros(n, dtype=np.int64),
        gender=rng.choice([8507, 8532], n),
        sex=rng.integers(0, 2, n),
        sexes=["male", "female"],
        municipality=rng.integers(-1, 3, n).astype(np.int32),
        municipalities=["0180", "0114", "0127"],
        size=size,
    )
    assert sparse._sparse() is not None  # the sparse route is the one under test
    dense = dataclasses.replace(sparse, at=None)
    assert dense._sparse() is None
    for rules in (
        {"age": {"min": 40, "max": 75}},
        {"sex": ["female"], "municipalities": ["0114", "0127"]},
        {"age": {"min": 150}},  # nobody
    ):
        d = parse_criteria({"demographics": rules}).demographics
        bits = sparse.demographics(d)
        assert bits.tobytes() == dense.demographics(d).tobytes()
        assert sparse.cell_counts(bits) == dense.cell_counts(bits)
    assert sparse.mask(sparse.demographics(parse_criteria({}).demographics))[at].all()
    assert sparse.cell_counts(sparse.alive) == dense.cell_counts(sparse.alive)
    assert sum(sparse.cell_counts(sparse.alive).values()) == n


def test_cell_sums_are_exact_beyond_float_precision():
    n = 2_200_000
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    table = pa.table(
        {
            "person_id": pa.array(np.arange(n), pa.int64()),
            "gender_concept_id": np.full(n, 8507),
            "sex": pa.array(["male"]).take(zeros),
            "age": pa.array(np.full(n, 50), pa.int32()),
            "age_band": pa.array(np.full(n, 50), pa.int32()),
            "municipality": pa.array(["0180"]).take(zeros),
            "i": pa.array(np.arange(n, dtype=np.int32)),
        }
    )
    population = Population.from_arrow(table, n)
    units = np.full(n, 2**32 - 1, dtype=np.int64)
    units[::97] = 2**31 + 12345
    sevenths = len(units[::97])
    expected = (n - sevenths) * (2**32 - 1) + sevenths * (2**31 + 12345)
    assert expected > 2**53  # a float64 sum would round
    assert population.cell_sums(population.alive, units) == {("male", 50, "0180"): expected}


def test_kept_bitmaps_are_bounded_and_follow_their_population():
    kept = Kept(max_bytes=3_000, max_dates=1)
    day1, day2 = date(2024, 1, 1), date(2025, 1, 1)
    kept.population(day1, lambda: "population 1")  # type: ignore[arg-type, return-value]
    for i in range(5):
        kept.bitmap((day1, str(i)), lambda: np.zeros(1_000, dtype=np.uint8))
    assert list(kept.bitmaps) == [(day1, "2"), (day1, "3"), (day1, "4")]
    assert kept.bytes == 3_000
    kept.bitmap((day1, "2"), lambda: pytest.fail("kept, not rebuilt"))
    kept.bitmap((day1, "5"), lambda: np.zeros(1_000, dtype=np.uint8))
    assert list(kept.bitmaps) == [(day1, "4"), (day1, "2"), (day1, "5")]  # least recent out
    kept.population(day2, lambda: "population 2")  # type: ignore[arg-type, return-value]
    assert list(kept.populations) == [day2] and kept.bitmaps == {} and kept.bytes == 0


def test_one_shared_engine_per_region(region, tmp_path):
    forget_engines()
    first = engine_for("duckdb", region)
    assert engine_for("duckdb", Region.open(region.path)) is first

    # A regenerated region (a new manifest) gets a new engine.
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.json").write_text(region.path.joinpath("manifest.json").read_text())
    for table in region.path.iterdir():
        if table.is_dir():
            (copy / table.name).symlink_to(table)
    before = engine_for("duckdb", Region.open(copy))
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest | {"created": "2030-01-01"}))
    assert engine_for("duckdb", Region.open(copy)) is not before
    forget_engines()


def test_shared_engine_answers_threads_alike(region):
    forget_engines()
    criteria = [load_criteria(p) for p in sorted(CRITERIA.glob("*.yaml"))[:4]]
    expected = [eligible_persons(c, region, index_date=INDEX) for c in criteria]
    results: dict[int, list[list[int]]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = [
                eligible_persons(c, region, index_date=date(2024, 6, 1 + k % 2)) for c in criteria
            ]
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results[0] == results[2] == expected
    assert results[1] == results[3]
    forget_engines()


# --- Each person's own index date: kept per entry definition (cohort/_entrykeep.py) ---------------

ENTRY_E11 = {
    "event": {"condition": {"codes": ["E11"]}},
    "period": {"from": "2012-01-01", "to": "2023-12-31"},
}
ENTRY_RULES = {
    "demographics": {"age": {"min": 40, "max": 80}},
    "include": [
        {"drug": {"codes": ["A10BA02"], "within": {"days_after": 90}}},
        {
            "at_least": {
                "n": 1,
                "of": [
                    {"condition": {"codes": ["I10"]}},
                    {
                        "measurement": {
                            "codes": ["TC"],
                            "value": {"min": 5},
                            "latest": True,
                            "within": {"days_before": 1825},
                        }
                    },
                    {
                        "all_of": [
                            {"demographics": {"sex": ["male"]}},
                            {"condition": {"codes": ["I"]}},
                        ]
                    },
                ],
            }
        },
    ],
    "exclude": [
        {"drug": {"codes": ["A10"], "within": {"days_before": 3650, "days_after": -1}}},
        {"none_of": [{"visit": {"within": {"days_before": 730, "days_after": 365}}}]},
    ],
}
ENTRIES = {
    "first": {"entry": ENTRY_E11, **ENTRY_RULES},
    "latest": {"entry": {**ENTRY_E11, "occurrence": "latest"}, **ENTRY_RULES},
    "death": {
        "entry": {
            "event": {"condition": {"codes": ["I21"]}},
            "period": {"from": "2010-01-01", "to": "2024-06-01"},
        },
        "include": [
            {"death": {"within": {"days_after": 365}}},
            {"drug": {"codes": ["C07"], "exposure": {"min_days": 60}}},
        ],
    },
}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_questions_agree_with_the_sql_plan(engines, name):
    bitmaps, plain = engines
    criteria = parse_criteria(ENTRIES[name])
    expected = plain.evaluate(criteria, INDEX)
    assert expected.steps[0][1] > 0  # people entered: the question is not vacuous
    assert bitmaps.evaluate(criteria, INDEX) == expected
    assert bitmaps.evaluate(criteria, INDEX) == expected  # from the kept bitmaps
    assert bitmaps.persons(criteria, INDEX) == plain.persons(criteria, INDEX)
    assert bitmaps.keys(criteria, INDEX) == plain.keys(criteria, INDEX)


def test_entry_questions_are_kept_per_entry_definition(engines, monkeypatch):
    bitmaps, plain = engines
    first, latest = parse_criteria(ENTRIES["first"]), parse_criteria(ENTRIES["latest"])
    bitmaps.kept.populations.clear()
    bitmaps.kept.drop_bitmaps()
    answer = bitmaps.evaluate(first, INDEX)
    assert list(bitmaps.kept.populations) == [entry_key(first.entry)]
    # A10BA02, I10, TC, I, A10, the visit (demographics are not leaves)
    leaves = {k for k in bitmaps.kept.bitmaps if not k[1].startswith("demographics")}
    assert len(leaves) == 6 and {k[0] for k in leaves} == {entry_key(first.entry)}

    # Asked again, from what is kept: neither the entered people nor a rule is computed.
    monkeypatch.setattr(bitmaps, "execute", lambda sql: pytest.fail(f"computed again: {sql}"))
    monkeypatch.setattr(bitmaps, "fetch", lambda sql: pytest.fail(f"computed again: {sql}"))
    assert bitmaps.evaluate(first, INDEX) == answer
    monkeypatch.undo()

    # Another entry definition with the same rules has its own people and bitmaps; so has an
    # index date. Neither changes the first one's answer.
    assert bitmaps.evaluate(latest, INDEX) == plain.evaluate(latest, INDEX)
    assert entry_key(latest.entry) != entry_key(first.entry)
    glob = parse_criteria({k: v for k, v in ENTRIES["first"].items() if k != "entry"})
    assert bitmaps.evaluate(glob, INDEX) == plain.evaluate(glob, INDEX)
    assert {k[0] for k in bitmaps.kept.bitmaps} == {
        entry_key(first.entry),
        entry_key(latest.entry),
        INDEX,
    }
    assert bitmaps.evaluate(first, INDEX) == answer == plain.evaluate(first, INDEX)

    # An entry's temporary table lives as long as its kept population.
    bitmaps.kept.populations.clear()
    bitmaps.evaluate(first, INDEX)
    tables = bitmaps.fetch(
        "SELECT table_name FROM duckdb_tables() WHERE temporary "
        "AND starts_with(table_name, 'brygga_entry_')"
    )
    assert tables.column("table_name").to_pylist() == [table_name(entry_key(first.entry))]
