"""Prevention's inputs (``extract_inputs``), pinned down on a hand-made region, on every engine
that reads them: DuckDB on the Parquet files, DuckDB on the optimized database, Spark.

Every expected value is written out by hand; the same assertions run on each engine, so the
engines agree with the specification and with each other. Index date 2025-06-15, default
look-back windows (SBP 3 years = 1,095 days: a value counts when it is after the index date
minus 1,095 days and on or before the index date). The last test runs ``brygga risk`` on the
small synthetic region on DuckDB and on Spark (the CLI) and compares the documents.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from brygga.cli import main
from brygga.cohort.engines import IbisEngine, query_engine
from brygga.errors import InputError
from brygga.prevention import inputs as inputs_module
from brygga.prevention.evaluation import simulate_invitations
from brygga.prevention.inputs import Lookback, Missing, RiskInputs, extract_inputs, id_range
from brygga.prevention.stratify import population_risk
from brygga.records import optimize
from brygga.records.store import Region
from tests.spec.conftest import INDEX, build_region, death, engine_param, event, period, person

DAY = timedelta(days=1)
SBP_EDGE = INDEX - timedelta(days=Lookback().sbp)  # 2022-06-16: just outside the window
BORN = date(1960, 3, 1)  # 65 on the index date
CURRENT, EX, NEVER = "77176002", "8517006", "266919005"


def lab(pid: int, code: str, day: date, value: float | None, row_id: int | None = None) -> Any:
    """A measurement row (numbered by ``build_region`` unless ``row_id`` is given)."""
    table, row = event("measurement", pid, code, day, value=value)
    if row_id is not None:
        row["measurement_id"] = row_id
    return table, row


def smoking(pid: int, code: str, day: date) -> Any:
    return event("observation", pid, code, day)


def diagnosis(pid: int, code: str, day: date) -> Any:
    return event("condition", pid, code, day)


OBSERVED = (date(2000, 1, 1), date(2030, 12, 31))
PEOPLE = [
    person(1, BORN),  # complete inputs; latest SBP wins; values after the index date ignored
    person(2, BORN),  # SBP only on the day the window excludes
    person(3, BORN),  # SBP on the first day inside the window
    person(4, BORN, sex="male"),  # two SBP values on one day: the larger row id wins
    person(5, BORN),  # a tie again: the larger row id wins, though its value is smaller
    person(6, BORN),  # the latest SBP row has no value: the one before counts
    person(7, BORN),  # smoking: current, then ex-smoker later (latest: ex)
    person(8, BORN),  # smoking only outside its 5-year window: unknown
    person(9, BORN),  # E10 twice, E11 once: type 1
    person(10, BORN),  # E11 twice (first 2010-05-01), E10 once: type 2, diagnosed at 50
    person(11, BORN),  # E10 once, E119 once: a tie goes to type 1
    person(12, BORN),  # E11 only after the index date: no diabetes
    person(13, BORN),  # I21 (myocardial infarction): established CVD
    person(14, BORN),  # KVÅ FNG05 (PCI): established CVD
    person(15, BORN),  # I50 (heart failure) is not atherosclerotic CVD; I20 after the index
    person(16, BORN),  # died on the index date: not counted
    person(17, BORN),  # dies the day after: counted
    person(18, BORN),  # observation ended the day before: not counted
    person(19, BORN),  # observation starts on the index date: counted
    person(20, BORN, sex="unknown"),  # counted, sex unknown, no model applies
    person(21, date(1960, 6, 16)),  # 65 tomorrow: 64
    person(22, date(1960, 6, 15)),  # 65 today
]
ROWS = [
    *(period(p["person_id"], *OBSERVED) for p in PEOPLE if p["person_id"] not in (18, 19)),
    period(18, OBSERVED[0], INDEX - DAY),
    period(19, INDEX, OBSERVED[1]),
    death(16, INDEX),
    death(17, INDEX + DAY),
    lab(1, "8480-6", INDEX - 400 * DAY, 150.0),
    lab(1, "8480-6", INDEX - 10 * DAY, 140.0),
    lab(1, "8480-6", INDEX + DAY, 199.0),  # after the index date
    lab(1, "NPU01566", INDEX - 100 * DAY, 5.5),
    lab(1, "NPU01567", INDEX - 100 * DAY, 1.3),
    lab(1, "NPU04998", date(2025, 3, 1), 80.0),  # creatinine on the 65th birthday
    lab(1, "NPU27300", INDEX - 5 * 365 * DAY, 60.0),  # HbA1c outside its 2-year window
    smoking(1, NEVER, INDEX - 30 * DAY),
    lab(2, "8480-6", SBP_EDGE, 160.0),
    lab(3, "8480-6", SBP_EDGE + DAY, 120.0),
    lab(4, "8480-6", INDEX - 7 * DAY, 130.0, row_id=900),
    lab(4, "8480-6", INDEX - 7 * DAY, 135.0, row_id=901),
    lab(4, "8480-6", INDEX - 8 * DAY, 170.0, row_id=999),  # a larger id, an earlier day
    lab(5, "8480-6", INDEX - 3 * DAY, 118.0, row_id=1),
    lab(5, "8480-6", INDEX - 3 * DAY, 112.0, row_id=2),
    lab(6, "8480-6", INDEX - 100 * DAY, 125.0),
    lab(6, "8480-6", INDEX - DAY, None),
    smoking(7, CURRENT, INDEX - 1000 * DAY),
    smoking(7, EX, INDEX - 20 * DAY),
    smoking(8, CURRENT, INDEX - (5 * 365 + 1) * DAY),
    diagnosis(9, "E109", date(2001, 1, 1)),
    diagnosis(9, "E10", date(2002, 1, 1)),
    diagnosis(9, "E119", date(2003, 1, 1)),
    diagnosis(10, "E119", date(2010, 5, 1)),
    diagnosis(10, "E11", date(2012, 1, 1)),
    diagnosis(10, "E109", date(2005, 1, 1)),
    diagnosis(11, "E10", date(2005, 1, 1)),
    diagnosis(11, "E119", date(2006, 1, 1)),
    diagnosis(12, "E119", INDEX + DAY),
    diagnosis(13, "I219", date(2015, 2, 1)),
    event("procedure", 14, "FNG05", date(2019, 9, 9)),
    diagnosis(15, "I509", date(2020, 1, 1)),
    diagnosis(15, "I209", INDEX + DAY),
]
ENGINES = ("duckdb", "duckdb-optimized", "spark")


@pytest.fixture(scope="module", params=[engine_param(name) for name in ENGINES])
def prepared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Region, IbisEngine]:
    """The hand-made region and the engine (one region per engine) that reads it."""
    region = build_region(tmp_path_factory.mktemp("prevention") / "r", PEOPLE, ROWS,
                          observe_all=False)  # fmt: skip
    if request.param == "duckdb-optimized":
        optimize.build(region, threads=1, memory_limit="500MB")
    engine = query_engine(request.param.removesuffix("-optimized"), region)
    assert (engine.table("population") is not None) == (request.param == "duckdb-optimized")
    return region, engine


@pytest.fixture(scope="module")
def inputs(prepared: tuple[Region, IbisEngine]) -> RiskInputs:
    region, engine = prepared
    return extract_inputs(region, index_date=INDEX, engine=engine)


def row(inputs: RiskInputs, pid: int) -> int:
    found = np.flatnonzero(inputs["person_id"] == pid)
    assert len(found) == 1, f"person {pid} should be counted once"
    return int(found[0])


def test_population_edges(inputs):
    counted = inputs["person_id"].tolist()
    assert counted == [p for p in range(1, 23) if p not in (16, 18)]
    assert inputs["age"][row(inputs, 21)] == 64 and inputs["age"][row(inputs, 22)] == 65
    assert inputs["sex"][row(inputs, 20)] == "unknown" and inputs["sex"][row(inputs, 4)] == "male"
    assert inputs.model[row(inputs, 20)] == -1  # unknown sex: no model
    assert inputs["municipality_code"][row(inputs, 1)] == "0180"


def test_latest_sbp_within_the_window(inputs):
    sbp = {p: inputs["sbp"][row(inputs, p)] for p in (1, 2, 3, 6)}
    assert sbp[1] == 140.0 and sbp[3] == 120.0 and sbp[6] == 125.0
    assert np.isnan(sbp[2])  # only on the day the window leaves out
    assert inputs["sbp_date"][row(inputs, 1)] == np.datetime64(INDEX - 10 * DAY)
    assert inputs["sbp_date"][row(inputs, 3)] == np.datetime64(SBP_EDGE + DAY)
    assert np.isnat(inputs["sbp_date"][row(inputs, 2)])


def test_ties_on_one_day_go_to_the_larger_row_id(inputs):
    assert inputs["sbp"][row(inputs, 4)] == 135.0  # id 901 beats 900; id 999 is a day older
    assert inputs["sbp"][row(inputs, 5)] == 112.0  # the row id decides, not the value


def test_other_labs_and_egfr(inputs):
    r = row(inputs, 1)
    assert inputs["total_chol"][r] == 5.5 and inputs["hdl"][r] == 1.3
    assert np.isnan(inputs["hba1c"][r])  # five years old: outside the two-year window
    assert inputs["creatinine"][r] == 80.0
    # CKD-EPI 2021, female, 65 on the day of the test (her birthday), creatinine 80 µmol/L:
    # 142 x (0.905 / 0.7)^-1.2 x 0.9938^65 x 1.012 = 70.48 (at 64 it would be 70.92).
    assert inputs["egfr"][r] == pytest.approx(70.48, abs=0.01)
    assert np.isnan(inputs["egfr"][row(inputs, 2)])


def test_missing_values(inputs):
    assert inputs.missing[row(inputs, 1)] == 0  # SCORE2 needs nothing more
    assert inputs.missing_fields(row(inputs, 2)) == ["sbp", "total_chol", "hdl", "smoking"]
    assert inputs.missing[row(inputs, 6)] == Missing.TOTAL_CHOL | Missing.HDL | Missing.SMOKING


def test_latest_smoking_status(inputs):
    status = {p: int(inputs["smoking_status"][row(inputs, p)]) for p in (1, 7, 8, 9)}
    assert status == {1: 0, 7: 1, 8: -1, 9: -1}  # never; ex (latest); outside; none


def test_type_1_or_type_2_by_count(inputs):
    t1 = {p: bool(inputs["type1_diabetes"][row(inputs, p)]) for p in (9, 10, 11, 12)}
    t2 = {p: bool(inputs["type2_diabetes"][row(inputs, p)]) for p in (9, 10, 11, 12)}
    assert t1 == {9: True, 10: False, 11: True, 12: False}
    assert t2 == {9: False, 10: True, 11: False, 12: False}
    assert inputs["age_at_diagnosis"][row(inputs, 10)] == 50  # first E11: 2010-05-01
    assert np.isnan(inputs["age_at_diagnosis"][row(inputs, 9)])


def test_established_cvd(inputs):
    cvd = {p: bool(inputs["established_cvd"][row(inputs, p)]) for p in (1, 13, 14, 15)}
    assert cvd == {1: False, 13: True, 14: True, 15: False}
    assert inputs.model[row(inputs, 13)] == -1


def test_nobody_counted_gives_empty_inputs(prepared):
    region, engine = prepared
    empty = extract_inputs(region, index_date=date(1990, 1, 1), engine=engine)
    assert len(empty) == 0 and empty["sbp"].shape == (0,)


def test_the_reference_engine_reads_no_inputs(prepared):
    with pytest.raises(InputError, match="available: duckdb, spark"):
        extract_inputs(prepared[0], engine="reference")


@pytest.mark.slow  # starts Spark
def test_brygga_risk_gives_the_same_document_on_duckdb_and_spark(small_region, capsys):
    region = str(small_region.region.path)
    docs = {}
    for engine in ("duckdb", "spark"):
        assert main(["risk", "--region", region, "--engine", engine, "--raw", "--json"]) == 0
        docs[engine] = json.loads(capsys.readouterr().out)
    assert docs["spark"] == docs["duckdb"]
    assert docs["duckdb"]["population"]["scored_population"]["value"] > 1000


def test_an_unknown_engine_is_a_user_error(small_region, capsys):
    region = str(small_region.region.path)
    assert main(["risk", "--region", region, "--engine", "reference", "--json"]) == 2
    assert "unknown engine 'reference'; available: duckdb, spark" in capsys.readouterr().err


def test_the_struct_key_gives_the_same_inputs(prepared, inputs, monkeypatch):
    """Row ids too far apart for one BIGINT key (no range known) take the (date, id) struct."""
    region, engine = prepared
    assert id_range(region, "measurement", "measurement_id") == (1, 999)
    monkeypatch.setattr(inputs_module, "id_range", lambda *_: None)
    wide = extract_inputs(region, index_date=INDEX, engine=engine)
    assert wide["sbp"][row(wide, 5)] == 112.0 and wide["smoking_status"][row(wide, 7)] == 1
    for name, column in inputs.columns.items():
        np.testing.assert_array_equal(wide[name], column, err_msg=name)


PROGRAM = """
name: Heart check 50-69
criteria:
  demographics: {age: {min: 50, max: 69}}
  exclude:
    - drug: {codes: ["C10AA"], vocabulary: ATC, within: {days_before: 365}}
score: {model: applicable, min_risk_percent: 5}
capacity: {default: 3}
"""


@pytest.mark.slow  # starts Spark
def test_program_equity_and_evaluate_agree_on_duckdb_and_spark(small_region, tmp_path, capsys):
    region = small_region.region
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    start = date(2025, 6, 30)
    at_start = extract_inputs(region, index_date=start, engine="duckdb")
    scored = at_start["person_id"][population_risk(at_start).category >= 0]
    invited = simulate_invitations(scored, start, seed=2)
    invitations = tmp_path / "invitations.csv"
    lines = [f"{p},{start.isoformat()}" for p in invited.person_id.tolist()]
    invitations.write_text("person_id,invitation_date\n" + "\n".join(lines) + "\n")
    where = ["--region", str(region.path), "--raw", "--json"]
    commands = {
        "program": ["program", str(program), *where],
        "equity": ["equity", "--program", str(program), *where],
        "evaluate": ["evaluate", str(invitations), "--start", start.isoformat(), *where],
    }
    docs: dict[str, dict[str, Any]] = {}
    for name, args in commands.items():
        for engine in ("duckdb", "spark"):
            assert main([*args, "--engine", engine]) == 0, (name, engine)
            docs[f"{name} {engine}"] = json.loads(capsys.readouterr().out)
        assert docs[f"{name} spark"] == docs[f"{name} duckdb"], name
    assert docs["program duckdb"]["invited"]["value"] > 0
    assert docs["evaluate duckdb"]["invited_scored"]["value"] > 100
