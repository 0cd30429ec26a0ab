"""Spec-test fixtures: tiny hand-made regions and one fixture per engine.

Every spec test takes ``engine`` and therefore runs on the reference evaluator, DuckDB and Spark;
they must all return the expected persons. Spark starts once per test session. A chosen subset
also runs on Spark through a real Spark Connect server (``spark_connect.py``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brygga.cohort.criteria import Criteria, parse_criteria
from brygga.cohort.engine import Engine
from brygga.cohort.engines import ENGINES, duckdb_engine, open_engine
from brygga.records import optimize, schema
from brygga.records.store import Region, RegionWriter
from tests.spec.spark_connect import CONNECT_SPEC_TESTS, spark_connect_url  # noqa: F401 (a fixture)

INDEX = date(2025, 6, 15)
EVENT_TABLES = {
    "condition": "condition_occurrence",
    "drug": "drug_exposure",
    "measurement": "measurement",
    "observation": "observation",
    "procedure": "procedure_occurrence",
}
DEFAULT_VOCABULARY = {
    "condition": "ICD10",
    "drug": "ATC",
    "measurement": "NPU",
    "observation": "SNOMED",
    "procedure": "KVA",
}


def person(
    pid: int,
    born: date = date(1960, 3, 1),
    sex: str = "female",
    municipality: str | None = "0180",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "person_id": pid,
        "gender_concept_id": {"male": 8507, "female": 8532}.get(sex, 0),
        "year_of_birth": born.year,
        "month_of_birth": born.month,
        "day_of_birth": born.day,
        "race_concept_id": 0,
        "ethnicity_concept_id": 0,
        "municipality_code": municipality,
        **extra,
    }


def event(
    kind: str,
    pid: int,
    code: str | None,
    day: date,
    *,
    vocabulary: str | None = "default",
    concept: int = 0,
    value: float | None = None,
    normal: tuple[float | None, float | None] = (None, None),
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    table = EVENT_TABLES[kind]
    t = schema.table(table)
    row: dict[str, Any] = {
        "person_id": pid,
        t.concept_column: concept,
        t.date_column: day,
        t.code_column: code,
        t.vocabulary_column: DEFAULT_VOCABULARY[kind] if vocabulary == "default" else vocabulary,
        "condition_type_concept_id": 32817,
        "drug_type_concept_id": 32869,
        "measurement_type_concept_id": 32817,
        "observation_type_concept_id": 32817,
        "procedure_type_concept_id": 32817,
        "value_as_number": value,
        "range_low": normal[0],
        "range_high": normal[1],
        **extra,
    }
    return table, row


def visit(pid: int, day: date, concept: int = 9202) -> tuple[str, dict[str, Any]]:
    return "visit_occurrence", {
        "person_id": pid,
        "visit_concept_id": concept,
        "visit_start_date": day,
        "visit_type_concept_id": 32817,
    }


def death(pid: int, day: date) -> tuple[str, dict[str, Any]]:
    return "death", {"person_id": pid, "death_date": day, "death_type_concept_id": 32817}


def period(pid: int, start: date, end: date) -> tuple[str, dict[str, Any]]:
    return "observation_period", {
        "person_id": pid,
        "observation_period_start_date": start,
        "observation_period_end_date": end,
        "period_type_concept_id": 32817,
    }


def ancestor(a: int, d: int) -> tuple[str, dict[str, Any]]:
    return "concept_ancestor", {
        "ancestor_concept_id": a,
        "descendant_concept_id": d,
        "min_levels_of_separation": 1,
        "max_levels_of_separation": 1,
    }


def build_region(
    out: Path,
    persons: list[dict[str, Any]],
    rows: list[tuple[str, dict[str, Any]]] = (),
    *,
    observe_all: bool = True,
    source: str = "synthetic",
) -> Region:
    """A region with the given people and rows; everyone is observed 2000-2030 unless
    ``observe_all`` is false (then give ``period`` rows)."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    if observe_all:
        rows = [
            *rows,
            *(period(p["person_id"], date(2000, 1, 1), date(2030, 12, 31)) for p in persons),
        ]
    for name, row in rows:
        by_table.setdefault(name, []).append(row)
    by_table["person"] = persons
    return write_tables(out, by_table, region="spec", source=source)


def write_tables(
    out: Path, by_table: dict[str, list[dict[str, Any]]], *, region: str, source: str
) -> Region:
    """Rows per table written as a region (record ids numbered where a row has none)."""
    with RegionWriter(out) as writer:
        for name, table_rows in by_table.items():
            t = schema.table(name)
            id_col = f"{name}_id"
            for i, r in enumerate(table_rows, start=1):
                if id_col in t.column_names:
                    r.setdefault(id_col, i)
            data = {c: [r.get(c) for r in table_rows] for c in t.column_names}
            writer.write(name, pa.Table.from_pydict(data, schema=t.arrow_schema()))
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"region": region, "source": source})


# "duckdb-optimized": DuckDB on the region's optimized database (``brygga optimize``), every
# rule through DuckDB's SQL; "duckdb-stored": the same database, rules answered from its code
# arrays (``cohort/codearrays.py``) where they can be, every answer then read back from disk
# as a new process would.
SPEC_ENGINES = (*ENGINES, "duckdb-optimized", "duckdb-stored")


class FromDisk:
    """DuckDB on the optimized region, each answer given by a new engine after another one has
    kept the rule bitmaps on disk (``cohort/stored.py``): a new process's cold start. Every
    rule is then read back, none computed."""

    name = "duckdb"

    def __init__(self, region: Region) -> None:
        self.region = region

    def _answer(self, method: str, criteria: Criteria, index_date: date) -> Any:
        getattr(duckdb_engine(self.region), method)(criteria, index_date)
        engine = duckdb_engine(self.region)
        answer = getattr(engine, method)(criteria, index_date)
        if engine.stored is not None:  # arrays are written only with a population table
            assert engine.stored.misses == 0, "a rule was computed, not read from disk"
        return answer

    def evaluate(self, criteria: Criteria, index_date: date) -> Any:
        return self._answer("evaluate", criteria, index_date)

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        return self._answer("persons", criteria, index_date)

    def keys(self, criteria: Criteria, index_date: date) -> Any:
        return self._answer("keys", criteria, index_date)


def open_spec_engine(name: str, region: Region) -> Engine:
    if name in ("duckdb-optimized", "duckdb-stored"):
        optimize.build(region, threads=1, memory_limit="500MB")
        if name == "duckdb-stored":
            return FromDisk(region)
        return duckdb_engine(region, code_arrays=False)
    if name == "spark-connect":  # the ``spec`` fixture has set BRYGGA_SPARK_REMOTE
        return open_engine("spark", region)
    return open_engine(name, region)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``engine_name``: every spec engine; and "spark-connect" for the tests chosen for it."""
    if "engine_name" in metafunc.fixturenames:
        chosen = (metafunc.module.__name__, metafunc.function.__name__) in CONNECT_SPEC_TESTS
        names = [*SPEC_ENGINES, *(["spark-connect"] * chosen)]
        metafunc.parametrize("engine_name", [engine_param(name) for name in names])


def engine_param(name: str) -> Any:
    """Spark (local and through Connect) starts a JVM and answers each question in seconds: its
    parameters are ``slow`` (about 100 s of the suite); ``make test-fast`` runs the others."""
    marks = [pytest.mark.slow] if name.startswith("spark") else []
    return pytest.param(name, marks=marks)


class Spec:
    """Builds regions under ``tmp_path`` and evaluates criteria on one engine."""

    def __init__(self, engine_name: str, tmp_path: Path) -> None:
        self.engine_name = engine_name
        self.tmp_path = tmp_path
        self._engines: dict[Path, Engine] = {}
        self._regions = 0

    def region(
        self,
        persons: list[dict[str, Any]],
        rows: list[tuple[str, dict[str, Any]]] = (),
        *,
        observe_all: bool = True,
    ) -> Region:
        self._regions += 1
        return build_region(
            self.tmp_path / f"region{self._regions}",
            persons,
            list(rows),
            observe_all=observe_all,
        )

    def engine(self, region: Region) -> Engine:
        if region.path not in self._engines:
            self._engines[region.path] = open_spec_engine(self.engine_name, region)
        return self._engines[region.path]

    def persons(
        self, region: Region, criteria: dict[str, Any] | Criteria, index_date: date = INDEX
    ) -> list[int]:
        c = criteria if isinstance(criteria, Criteria) else parse_criteria(criteria)
        return self.engine(region).persons(c, index_date)

    def run(
        self,
        criteria: dict[str, Any],
        persons: list[dict[str, Any]],
        rows: list[tuple[str, dict[str, Any]]] = (),
        **kwargs: Any,
    ) -> list[int]:
        """Build a region and evaluate one criteria on it."""
        index_date = kwargs.pop("index_date", INDEX)
        return self.persons(self.region(persons, rows, **kwargs), criteria, index_date)


@pytest.fixture
def spec(
    engine_name: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Spec:
    if engine_name == "spark-connect":
        monkeypatch.setenv("BRYGGA_SPARK_REMOTE", request.getfixturevalue("spark_connect_url"))
    return Spec(engine_name, tmp_path)
