"""Where criteria run: DuckDB (embedded default), Spark (local mode or a cluster), reference.

Every engine answers the same two questions, ``evaluate`` (attrition counts and breakdown
cells) and ``persons`` (eligible pseudonymous ids), from the same compiled Ibis expressions
(``compile.py``); only how tables are opened and results fetched differs. The pure-Python
``reference`` engine is the specification the others are tested against (small regions only).

Spark is configured through the environment:

* ``BRYGGA_SPARK_MASTER`` - master URL (default ``local[2]``), e.g. ``spark://host:7077``;
* ``BRYGGA_SPARK_REMOTE`` - a Spark Connect URL (``sc://host:15002``), used instead of a master;
* ``BRYGGA_SPARK_SHUFFLE_PARTITIONS`` (default 4) and ``BRYGGA_SPARK_DRIVER_MEMORY`` (``2g``).

One Spark session serves the whole process; each region's Parquet files are registered as
temporary views named after the region folder, so several regions can be open at once.
PostgreSQL is not offered: regions are Parquet folders, and DuckDB and Spark read them in place.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

from brygga.cohort.compile import Compiled, compile_criteria
from brygga.cohort.criteria import Criteria
from brygga.errors import InputError
from brygga.records import schema
from brygga.records.store import Region

ENGINES = ("duckdb", "spark", "reference")


@dataclass(frozen=True)
class Evaluation:
    """Raw (undisclosed) results: never print these; feasibility applies the policy."""

    index_date: date
    steps: list[tuple[str, int]]  # (description, people remaining after the step)
    cells: dict[tuple[str, int, str | None], int]  # (sex, age band start, municipality) -> n

    @property
    def count(self) -> int:
        return self.steps[-1][1]


def alive_and_observed_step(index_date: date) -> str:
    return f"Alive and under observation on {index_date.isoformat()}"


class Results(Protocol):
    """Intermediate results an engine keeps between questions (see ``compile.Materialize``)."""

    full: bool

    def __call__(self, key: dict[str, Any], expr: Any) -> Any: ...

    def clear(self) -> None: ...


class Engine(Protocol):
    name: str

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation: ...

    def persons(self, criteria: Criteria, index_date: date) -> list[int]: ...


class IbisEngine:
    """Runs compiled criteria on an Ibis backend, as SQL.

    The SQL of each question is cached by the criteria's fingerprint and index date: building
    and compiling the Ibis expression costs more than DuckDB takes to run it, and feasibility
    questions are asked again and again while criteria are being refined.
    """

    CACHE_SIZE = 256

    def __init__(
        self,
        name: str,
        tables: Any,
        to_sql: Callable[[Any], str],
        run_sql: Callable[[str], list[dict[str, Any]]],
        results: Results | None = None,
    ) -> None:
        self.name = name
        self.tables = tables
        self.to_sql = to_sql
        self.run_sql = run_sql
        self.results = results
        self._sql: dict[tuple[str, str, date], str] = {}

    def compile(self, criteria: Criteria, index_date: date) -> Compiled:
        return compile_criteria(criteria, self.tables, index_date, self.results)

    def sql(self, kind: str, criteria: Criteria, index_date: date) -> str:
        key = (kind, criteria.fingerprint(index_date), index_date)
        if key not in self._sql:
            full = self.results is not None and self.results.full
            if len(self._sql) >= self.CACHE_SIZE or full:
                self._sql.clear()
                if self.results is not None:
                    self.results.clear()  # the cached SQL may name the results dropped here
            compiled = self.compile(criteria, index_date)
            self._sql[key] = self.to_sql(getattr(compiled, kind)())
        return self._sql[key]

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        rows = self.run_sql(self.sql("summary", criteria, index_date))
        descriptions = [alive_and_observed_step(index_date)] + [d for _, d, _ in criteria.steps()]
        last = len(descriptions) - 1
        steps = [
            (d, sum(int(r["n"]) for r in rows if r["reached"] >= i))
            for i, d in enumerate(descriptions)
        ]
        cells: dict[tuple[str, int, str | None], int] = {}
        for r in rows:
            if r["reached"] == last:
                key = (r["sex"], int(r["age_band"]), r["municipality"])
                cells[key] = cells.get(key, 0) + int(r["n"])
        return Evaluation(index_date=index_date, steps=steps, cells=cells)

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        rows = self.run_sql(self.sql("persons", criteria, index_date))
        return sorted(int(r["person_id"]) for r in rows)


def open_engine(name: str, region: Region) -> Engine:
    if name == "duckdb":
        return duckdb_engine(region)
    if name == "spark":
        return spark_engine(region)
    if name == "reference":
        from brygga.cohort.reference import ReferenceEngine

        return ReferenceEngine.from_region(region)
    raise InputError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


# --- DuckDB ---------------------------------------------------------------------------------


class _RegionTables:
    def __init__(self, present: set[str], get: Callable[[str], Any]) -> None:
        self.present = present
        self.get = get

    def table(self, name: str) -> Any:
        return self.get(name) if name in self.present else None


def duckdb_engine(region: Region, *, optimized: bool = True) -> IbisEngine:
    from brygga.config import get_settings

    settings = get_settings()
    import ibis

    raw = region.duckdb(
        threads=settings.duckdb_threads,
        memory_limit=settings.duckdb_memory_limit,
        optimized=optimized,
    )
    # Keep Parquet footers in memory between queries of a long-lived engine.
    raw.execute("SET parquet_metadata_cache = true")
    con = ibis.duckdb.from_connection(raw)

    def get(name: str) -> Any:
        with quiet_duckdb():
            return con.table(name)

    def to_sql(expr: Any) -> str:
        with quiet_duckdb():
            return str(con.compile(expr))

    # Binding and optimizing the deeply nested SQL that Ibis writes costs tens of milliseconds,
    # as much as running it on millions of people: each statement is prepared once.
    prepared: dict[str, str] = {}

    def run_sql(sql: str) -> list[dict[str, Any]]:
        if sql not in prepared:
            if len(prepared) >= IbisEngine.CACHE_SIZE:
                deallocate()
            name = f"brygga_{hashlib.sha1(sql.encode()).hexdigest()[:16]}"
            raw.execute(f"PREPARE {name} AS {sql}")
            prepared[sql] = name
        cursor = raw.execute(f"EXECUTE {prepared[sql]}")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def deallocate() -> None:
        for name in prepared.values():
            raw.execute(f"DEALLOCATE {name}")
        prepared.clear()

    # Views: the region's tables, plus what an optimized region adds (``population``).
    present = {
        r[0]
        for r in raw.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    results = DuckDBResults(raw, get, to_sql, on_clear=deallocate)
    return IbisEngine("duckdb", _RegionTables(present, get), to_sql, run_sql, results)


class DuckDBResults:
    """The population and each rule's person set at an index date, kept as in-memory tables.

    Feasibility criteria are refined one rule at a time and share rules (type 2 diabetes,
    smoking status, a recent visit), so a long-lived engine computes each rule's person set
    once per index date and then only joins the population to those sets. Everything is
    dropped once the kept sets hold ``MAX_ROWS`` ids (8 bytes each).
    """

    MAX_ROWS = 50_000_000

    def __init__(
        self,
        raw: Any,
        get: Callable[[str], Any],
        to_sql: Callable[[Any], str],
        on_clear: Callable[[], None],
    ) -> None:
        self.raw, self.get, self.to_sql, self.on_clear = raw, get, to_sql, on_clear
        self.names: dict[str, str] = {}
        self.rows = 0

    @property
    def full(self) -> bool:
        return self.rows >= self.MAX_ROWS

    def __call__(self, key: dict[str, Any], expr: Any) -> Any:
        canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:20]
        if digest not in self.names:
            name = f"brygga_result_{digest}"
            self.raw.execute(f"CREATE OR REPLACE TABLE {name} AS {self.to_sql(expr)}")
            self.rows += self.raw.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            self.names[digest] = name
        return self.get(self.names[digest])

    def clear(self) -> None:
        self.on_clear()
        for name in self.names.values():
            self.raw.execute(f"DROP TABLE IF EXISTS {name}")
        self.names.clear()
        self.rows = 0


@contextmanager
def quiet_duckdb() -> Iterator[None]:
    """Ibis 12 still calls DuckDB 2's deprecated ``fetch_arrow_table``; not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")
        yield


# --- Spark ----------------------------------------------------------------------------------


class SparkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRYGGA_SPARK_", extra="ignore")

    master: str = "local[2]"
    remote: str | None = None
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    # Any further Spark settings, as JSON: BRYGGA_SPARK_CONF='{"spark.executor.memory": "8g"}'.
    conf: dict[str, str] = {}


_spark_lock = threading.Lock()
_spark: dict[str, Any] = {}


@contextmanager
def quiet_spark() -> Iterator[None]:
    """PySpark and Ibis warn about pandas 3 compatibility on import and on every result; we do
    not use pandas results (rows are collected directly), so those notices are noise here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        warnings.filterwarnings("ignore", module=r"pyspark\..*")
        warnings.filterwarnings("ignore", module=r"ibis\.formats\.pandas")
        yield


def spark_session() -> Any:
    """The process-wide Spark session (created on first use)."""
    with _spark_lock:
        if "session" not in _spark:
            with quiet_spark():
                from pyspark.sql import SparkSession

                settings = SparkSettings()
                builder = SparkSession.builder.appName("brygga")
                if settings.remote:
                    builder = builder.remote(settings.remote)
                else:
                    builder = (
                        builder.master(settings.master)
                        .config("spark.driver.memory", settings.driver_memory)
                        .config("spark.ui.enabled", "false")
                        .config("spark.ui.showConsoleProgress", "false")
                    )
                builder = builder.config(
                    "spark.sql.shuffle.partitions", settings.shuffle_partitions
                ).config("spark.sql.session.timeZone", "UTC")
                for key, value in settings.conf.items():
                    builder = builder.config(key, value)
                session = builder.getOrCreate()
                if not settings.remote:
                    session.sparkContext.setLogLevel("ERROR")
                _spark["session"] = session
        return _spark["session"]


def spark_engine(region: Region) -> IbisEngine:
    session = spark_session()
    with quiet_spark():
        import ibis

        con = ibis.pyspark.connect(session)
        # View names are unique per region folder (and its creation time), so regions coexist.
        token = hashlib.sha1(
            f"{region.path.resolve()}|{region.manifest.get('created')}".encode()
        ).hexdigest()[:12]
        present = set(region.tables())
        for name in present:
            view = f"brygga_{token}_{name}"
            path = region.table_path(name)
            # Giving the schema spares Spark a job that reads every file footer.
            reader = session.read.schema(spark_schema(schema.table(name).arrow_schema()))
            reader.parquet(str(path)).createOrReplaceTempView(view)

    def get(name: str) -> Any:
        with quiet_spark():
            return con.table(f"brygga_{token}_{name}")

    def to_sql(expr: Any) -> str:
        with quiet_spark():
            return str(con.compile(expr))

    def run_sql(sql: str) -> list[dict[str, Any]]:
        with quiet_spark():
            return [row.asDict() for row in session.sql(sql).collect()]

    return IbisEngine("spark", _RegionTables(present, get), to_sql, run_sql)


def spark_schema(arrow: Any) -> Any:
    """The Spark StructType of an Arrow schema (the types regions use)."""
    from pyspark.sql import types as T

    spark_types = {
        "int8": T.ByteType(),
        "int32": T.IntegerType(),
        "int64": T.LongType(),
        "double": T.DoubleType(),
        "string": T.StringType(),
        "date32[day]": T.DateType(),
    }
    return T.StructType(
        [T.StructField(f.name, spark_types[str(f.type)], f.nullable) for f in arrow]
    )
