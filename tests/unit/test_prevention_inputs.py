"""The fast input extraction (prevention/inputs.py, inputs_sql.py) against a plain evaluation.

``reference`` below reads the region's tables with pyarrow and finds each input with Python
loops and dictionaries, the obvious way; the fast path (one filtered scan per table,
(date, id) argmax keys, numpy alignment, YYYYMMDD ages) must agree with it exactly, on a
hand-made region with the edge cases (same-day ties, window edges, dead and unobserved people,
mixed diabetes coding, code-prefix boundaries) and on the small synthetic region, on its
Parquet files and on its optimized database.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from brygga.cohort.engines import duckdb_engine
from brygga.prevention.egfr import ckd_epi_2021
from brygga.prevention.inputs import (
    ESTABLISHED_CVD_ICD10,
    ESTABLISHED_CVD_KVA,
    TYPE1_DIABETES_ICD10,
    TYPE2_DIABETES_ICD10,
    Lookback,
    extract_inputs,
    has_population_table,
)
from brygga.prevention.inputs_sql import LABS
from brygga.records import codes as K
from brygga.records import optimize, schema
from brygga.records.store import Region, RegionWriter

SMOKING = {K.OBSERVATIONS[k].code: i for i, k in enumerate(("never_smoker", "ex_smoker", "smoker"))}


def completed_years(later: date, born: date) -> int:
    return later.year - born.year - ((later.month, later.day) < (born.month, born.day))


def latest(rows: list[dict[str, Any]], key: str, day: str, row_id: str, since: dict[str, date],
           idx: date, value: str) -> dict[tuple[int, str], tuple[date, int, Any]]:  # fmt: skip
    """(person, code) -> (date, id, value) of the latest row per code inside its window."""
    best: dict[tuple[int, str], tuple[date, int, Any]] = {}
    for r in rows:
        code = r[key]
        if code not in since or r[value] is None or not since[code] < r[day] <= idx:
            continue
        k = (r["person_id"], code)
        if k not in best or (r[day], r[row_id]) > best[k][:2]:
            best[k] = (r[day], r[row_id], r[value])
    return best


COLUMNS = {
    "person": ["person_id", "gender_concept_id", "year_of_birth", "month_of_birth",
               "day_of_birth"],
    "observation_period": ["person_id", "observation_period_start_date",
                           "observation_period_end_date"],
    "death": ["person_id", "death_date"],
    "measurement": ["measurement_id", "person_id", "measurement_date", "value_as_number",
                    "measurement_source_value"],
    "observation": ["observation_id", "person_id", "observation_date",
                    "observation_source_value"],
    "condition_occurrence": ["person_id", "condition_start_date", "condition_source_value"],
    "procedure_occurrence": ["person_id", "procedure_date", "procedure_source_value"],
}  # fmt: skip
# Reading is the slow part of the plain evaluation: once per region, and only rows whose code
# could matter (the Python below still tests every code itself).
RELEVANT = {
    "measurement": ("measurement_source_value", {K.LABS[k].code for k, _, _ in LABS}),
    "observation": ("observation_source_value", set(SMOKING)),
    "condition_occurrence": ("condition_source_value", {
        *ESTABLISHED_CVD_ICD10, *TYPE1_DIABETES_ICD10, *TYPE2_DIABETES_ICD10}),
    "procedure_occurrence": ("procedure_source_value", set(ESTABLISHED_CVD_KVA)),
}  # fmt: skip
_ROWS: dict[str, dict[str, list[dict[str, Any]]]] = {}


def read_rows(region: Region) -> dict[str, list[dict[str, Any]]]:
    if str(region.path) not in _ROWS:
        rows = {}
        for name, columns in COLUMNS.items():
            table = region.read_table(name, columns=columns)
            if name in RELEVANT:
                column, codes = RELEVANT[name]
                head = table.column(column)  # the whole code, or the 3 characters of a prefix
                if name in ("condition_occurrence", "procedure_occurrence"):
                    head = pc.utf8_slice_codeunits(head, 0, 3)
                table = table.filter(pc.fill_null(pc.is_in(head, pa.array(sorted(codes))), False))
            rows[name] = table.to_pylist()
        _ROWS[str(region.path)] = rows
    return _ROWS[str(region.path)]


def reference(region: Region, idx: date, lookback: Lookback) -> dict[int, dict[str, Any]]:
    """Every input, per person alive and observed on ``idx``, computed the plain way."""
    rows = read_rows(region)
    observed = {
        r["person_id"]
        for r in rows["observation_period"]
        if r["observation_period_start_date"] <= idx <= r["observation_period_end_date"]
    }
    dead = {r["person_id"] for r in rows["death"] if r["death_date"] <= idx}
    out: dict[int, dict[str, Any]] = {}
    for p in rows["person"]:
        if p["person_id"] not in observed or p["person_id"] in dead:
            continue
        born = date(p["year_of_birth"], p["month_of_birth"] or 1, p["day_of_birth"] or 1)
        sex = {8507: "male", 8532: "female"}.get(p["gender_concept_id"], "unknown")
        out[p["person_id"]] = {"born": born, "age": completed_years(idx, born), "sex": sex,
                               "t1": 0, "t2": 0, "t2_first": None, "cvd": False,
                               "smoking": -1}  # fmt: skip

    windows = lookback.as_dict()
    since = {K.LABS[k].code: idx - timedelta(days=windows[w]) for k, _, w in LABS}
    labs = latest(rows["measurement"], "measurement_source_value", "measurement_date",
                  "measurement_id", since, idx, "value_as_number")  # fmt: skip
    for (pid, code), (day, _, value) in labs.items():
        if pid in out:
            name = next(n for k, n, _ in LABS if K.LABS[k].code == code)
            out[pid][name], out[pid][f"{name}_date"] = value, day
    since = {code: idx - timedelta(days=lookback.smoking) for code in SMOKING}
    smoking = latest(rows["observation"], "observation_source_value", "observation_date",
                     "observation_id", since, idx, "observation_source_value")  # fmt: skip
    # The latest smoking observation of any of the three codes wins.
    for (pid, _), (_day, _oid, code) in sorted(smoking.items(), key=lambda kv: kv[1][:2]):
        if pid in out:
            out[pid]["smoking"] = SMOKING[code]

    for r in rows["condition_occurrence"]:
        p = out.get(r["person_id"])
        code = r["condition_source_value"] or ""
        if p is None or r["condition_start_date"] > idx:
            continue
        if code.startswith(TYPE2_DIABETES_ICD10):
            p["t2"] += 1
            first = p["t2_first"]
            p["t2_first"] = min(first, r["condition_start_date"]) if first else r[
                "condition_start_date"]  # fmt: skip
        p["t1"] += code.startswith(TYPE1_DIABETES_ICD10)
        p["cvd"] |= code.startswith(ESTABLISHED_CVD_ICD10)
    for r in rows["procedure_occurrence"]:
        p = out.get(r["person_id"])
        if p is not None and r["procedure_date"] <= idx:
            p["cvd"] |= (r["procedure_source_value"] or "").startswith(ESTABLISHED_CVD_KVA)
    return out


def assert_same(fast, ref: dict[int, dict[str, Any]]) -> None:
    c = fast.columns
    assert c["person_id"].tolist() == sorted(ref)
    for name in ("age", *(n for _, n, _ in LABS)):
        want = [ref[p].get(name, np.nan) for p in sorted(ref)]
        np.testing.assert_array_equal(c[name], np.array(want, dtype=float), err_msg=name)
        if name != "age":
            days = [ref[p].get(f"{name}_date") for p in sorted(ref)]
            want_days = np.array([d or "NaT" for d in days], dtype="datetime64[D]")
            np.testing.assert_array_equal(c[f"{name}_date"], want_days, err_msg=name)
    assert c["smoking_status"].tolist() == [ref[p]["smoking"] for p in sorted(ref)]
    assert c["established_cvd"].tolist() == [ref[p]["cvd"] for p in sorted(ref)]
    type1 = [r["t1"] > 0 and r["t1"] >= r["t2"] for r in (ref[p] for p in sorted(ref))]
    assert c["type1_diabetes"].tolist() == type1
    assert c["type2_diabetes"].tolist() == [r["t2"] > 0 and not t1 for r, t1 in zip(
        (ref[p] for p in sorted(ref)), type1, strict=True)]  # fmt: skip
    diagnosed = [
        completed_years(r["t2_first"], r["born"]) if c["type2_diabetes"][i] else np.nan
        for i, r in enumerate(ref[p] for p in sorted(ref))
    ]
    np.testing.assert_array_equal(c["age_at_diagnosis"], np.array(diagnosed, dtype=float))
    assert c["sex"].tolist() == [ref[p]["sex"] for p in sorted(ref)]
    # eGFR with the age at the creatinine test (not today's age).
    has = [p for p in sorted(ref) if "creatinine" in ref[p] and ref[p]["sex"] != "unknown"]
    tested = [completed_years(ref[p]["creatinine_date"], ref[p]["born"]) for p in has]
    want = np.full(len(ref), np.nan)
    if has:
        rows = np.searchsorted(c["person_id"], has)
        adult = np.array(tested) >= 18
        egfr = ckd_epi_2021([ref[p]["creatinine"] for p in has], np.array(tested, float),
                            [ref[p]["sex"] for p in has], on_invalid="nan").egfr  # fmt: skip
        want[rows[adult]] = egfr[adult]
    np.testing.assert_array_equal(c["egfr"], want)


# --- A hand-made region with the edge cases ---------------------------------------------------

IDX = date(2025, 6, 15)
SBP, TC, HBA1C = K.LABS["SBP"].code, K.LABS["TC"].code, K.LABS["HbA1c"].code


def person(pid: int, born: date, sex: int = 8532) -> dict[str, Any]:
    return {"person_id": pid, "gender_concept_id": sex, "year_of_birth": born.year,
            "month_of_birth": born.month, "day_of_birth": born.day, "care_site_id": 7}  # fmt: skip


def measurement(pid: int, code: str, day: date, value: float | None, mid: int) -> dict[str, Any]:
    return {"measurement_id": mid, "person_id": pid, "measurement_date": day,
            "measurement_source_value": code, "value_as_number": value}  # fmt: skip


def write(out, tables: dict[str, list[dict[str, Any]]]) -> Region:
    with RegionWriter(out) as writer:
        for name, rows in tables.items():
            arrow = schema.table(name).arrow_schema()
            # Concept ids the inputs do not read: 0 where the schema wants a value.
            data = {f.name: [r.get(f.name, None if f.nullable else 0) for r in rows]
                    for f in arrow}  # fmt: skip
            writer.write(name, pa.Table.from_pydict(data, schema=arrow))
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"region": "edges", "source": "synthetic",
                              "period": {"end": IDX.isoformat()}})  # fmt: skip


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> Region:
    day = IDX - timedelta(days=100)
    three_years = IDX - timedelta(days=3 * 365)
    people = [person(i, date(1960, 6, 16 if i == 1 else 15), 8507 if i % 2 else 8532)
              for i in range(1, 9)]  # fmt: skip
    rows = [
        # 1: a tie on one day -> the larger id (value 150); a later row after the index ignored.
        measurement(1, SBP, day, 130.0, 10),
        measurement(1, SBP, day, 150.0, 11),
        measurement(1, SBP, IDX + timedelta(days=1), 99.0, 12),
        # 2: SBP exactly at the window's edge (excluded) and one day inside (counted).
        measurement(2, SBP, three_years, 111.0, 20),
        measurement(2, TC, three_years + timedelta(days=1), 5.5, 21),
        measurement(2, SBP, three_years + timedelta(days=1), 112.0, 22),
        # 3: the latest value is null -> the one before counts; HbA1c on the index date counts.
        measurement(3, TC, day, None, 30),
        measurement(3, TC, day - timedelta(days=5), 6.1, 31),
        measurement(3, HBA1C, IDX, 48.0, 32),
        # 4 dead, 5 not observed: not in the population at all.
        measurement(4, SBP, day, 140.0, 40),
        measurement(5, SBP, day, 140.0, 50),
        measurement(6, K.LABS["creatinine"].code, day, 80.0, 60),
    ]
    periods = [
        {"observation_period_id": i, "person_id": i,
         "observation_period_start_date": date(2000, 1, 1) if i != 5 else date(2026, 1, 1),
         "observation_period_end_date": date(2030, 1, 1)}
        for i in range(1, 9)
    ]  # fmt: skip
    obs = [{"observation_id": i, "person_id": p, "observation_date": d,
            "observation_source_value": code} for i, (p, d, code) in enumerate([
        (1, day, "266919005"), (1, day, "77176002"),  # same day: the larger id (smoker) wins
        (2, day - timedelta(days=9), "77176002"), (2, day, "8517006"),  # later: ex-smoker
        (3, IDX - timedelta(days=5 * 365), "77176002"),  # at the window edge: unknown
    ], start=1)]  # fmt: skip
    conditions = [{"condition_occurrence_id": i, "person_id": p, "condition_start_date": d,
                   "condition_source_value": code} for i, (p, d, code) in enumerate([
        (6, date(2010, 3, 1), "E119"), (6, date(2008, 3, 1), "E109"), (6, date(2012, 1, 1), "E11"),
        (7, date(2010, 3, 1), "E109"), (7, date(2011, 3, 1), "E119"),  # tie -> type 1
        (8, date(2015, 1, 1), "I2"), (8, date(2015, 1, 1), "I10"),  # neither is CVD
        (8, IDX + timedelta(days=1), "I21"),  # after the index date: ignored
        (1, date(2001, 1, 1), "I639"),
    ], start=1)]  # fmt: skip
    procedures = [{"procedure_occurrence_id": 1, "person_id": 3, "procedure_date": day,
                   "procedure_source_value": "FNG05"}]  # fmt: skip
    death = [{"person_id": 4, "death_date": day}]
    return write(tmp_path_factory.mktemp("edges") / "r", {
        "person": people, "observation_period": periods, "measurement": rows,
        "observation": obs, "condition_occurrence": conditions,
        "procedure_occurrence": procedures, "death": death})  # fmt: skip


def test_edge_cases_match_the_plain_evaluation(edges):
    fast = extract_inputs(edges)
    assert_same(fast, reference(edges, IDX, Lookback()))
    c = fast.columns
    row = {int(p): i for i, p in enumerate(c["person_id"])}
    assert sorted(row) == [1, 2, 3, 6, 7, 8]  # 4 died, 5 not yet observed
    assert c["sbp"][row[1]] == 150.0 and c["sbp"][row[2]] == 112.0
    assert c["total_chol"][row[3]] == 6.1 and c["hba1c"][row[3]] == 48.0
    assert c["age"][row[1]] == 64 and c["age"][row[2]] == 65  # birthday tomorrow vs today
    assert c["smoking_status"].tolist() == [2, 1, -1, -1, -1, -1]
    assert c["type2_diabetes"].tolist() == [False, False, False, True, False, False]
    assert c["type1_diabetes"][row[7]] and c["age_at_diagnosis"][row[6]] == 49
    assert c["established_cvd"].tolist() == [True, False, True, False, False, False]
    assert np.isfinite(c["egfr"][row[6]])


def test_edge_cases_on_the_optimized_database(edges, tmp_path):
    copy = Region.open(shutil.copytree(edges.path, tmp_path / "r"))
    optimize.build(copy, threads=1, memory_limit="500MB")
    assert has_population_table(copy.duckdb(threads=1))
    assert_same(extract_inputs(copy, engine="duckdb"), reference(copy, IDX, Lookback()))


# --- The small synthetic region -----------------------------------------------------------------


@pytest.fixture(scope="module")
def region(small_region) -> Region:
    return small_region.region


@pytest.mark.parametrize(
    ("index_date", "lookback"),
    [
        (None, Lookback()),
        (date(2016, 6, 30), Lookback()),
        (None, Lookback(sbp=200, lipids=400, hba1c=90, creatinine=150, smoking=300)),
    ],
)
def test_small_region_matches_the_plain_evaluation(region, index_date, lookback):
    fast = extract_inputs(region, index_date=index_date, lookback=lookback)
    assert len(fast) > 1000 and np.isfinite(fast["sbp"]).sum() > 100
    assert_same(fast, reference(region, fast.index_date, lookback))


@pytest.mark.slow  # builds the small region's optimized database (about 15 s)
def test_optimized_database_gives_the_same_inputs(region, tmp_path):
    copy = Region.open(shutil.copytree(region.path, tmp_path / "r"))
    optimize.build(copy, threads=2, memory_limit="1GB")
    plain_engine = duckdb_engine(copy, optimized=False)
    fast, plain = extract_inputs(copy), extract_inputs(copy, engine=plain_engine)
    assert plain_engine.table("population") is None
    assert has_population_table(copy.duckdb()) and not has_population_table(
        copy.duckdb(optimized=False))  # fmt: skip
    for name, column in plain.columns.items():
        np.testing.assert_array_equal(fast.columns[name], column, err_msg=name)
    for name in ("model", "exclusion", "missing"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name))


def test_nobody_observed_gives_empty_inputs(edges):
    empty = extract_inputs(edges, index_date=date(1990, 1, 1))
    assert len(empty) == 0 and empty.columns["sbp"].shape == (0,)
    assert empty.missing_counts()["people"] == 0


def test_rows_are_placed_by_person_sorted_or_not():
    from brygga.prevention.inputs import _place

    population = np.array([3, 7, 9, 20])
    for ids in ([9, 3, 99, 20], [3, 9, 20, 99], [1, 2]):  # 99, 1, 2: not in the population
        pos, rows = _place(population, pa.table({"person_id": np.array(ids, np.int64)}))
        assert population[pos].tolist() == np.array(ids)[rows].tolist()
        assert sorted(population[pos].tolist()) == sorted(set(ids) & {3, 7, 9, 20})
