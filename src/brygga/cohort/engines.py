"""Where criteria run: DuckDB (embedded default), Spark (local mode or a cluster), reference.

Every engine answers the same two questions, ``evaluate`` (attrition counts and breakdown
cells) and ``persons`` (eligible pseudonymous ids), from the same compiled Ibis expressions
(``compile.py``); only how tables are opened and results fetched differs. DuckDB's and Spark's
engines also give their tables to queries written elsewhere (``IbisEngine.table``, ``to_arrow``;
prevention's inputs), so those too are written once for both. The pure-Python
``reference`` engine is the specification the others are tested against (small regions only).

Spark is configured through the environment:

* ``BRYGGA_SPARK_MASTER`` - master URL (default ``local[2]``), e.g. ``spark://host:7077``;
* ``BRYGGA_SPARK_REMOTE`` - a Spark Connect URL (``sc://host:15002``), used instead of a master
  (the server reads the region's Parquet files by their path, so it must see the same storage);
* ``BRYGGA_SPARK_SHUFFLE_PARTITIONS`` (default 4) and ``BRYGGA_SPARK_DRIVER_MEMORY`` (``2g``).

One Spark session serves the whole process (and one per Spark Connect URL); each region's
Parquet files are registered as temporary views named after the region folder, so several
regions can be open at once.
PostgreSQL is not offered: regions are Parquet folders, and DuckDB and Spark read them in place.
"""

from __future__ import annotations

__all__ = [
    "ENGINES",
    "QUERY_ENGINES",
    "SHARED_ENGINES",
    "IbisEngine",
    "duckdb_engine",
    "engine_for",
    "forget_engines",
    "open_engine",
    "query_engine",
    "quiet_spark",
    "settle_garbage_collector",
    "spark_engine",
    "spark_schema",
    "spark_session",
    "stop_spark_session",
]

import gc
import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from brygga.cohort.codearrays import open_codes
from brygga.cohort.compile import Compiled, compile_criteria
from brygga.cohort.criteria import Criteria
from brygga.cohort.engine import Engine, Evaluation
from brygga.cohort.population import step_description
from brygga.cohort.stored import SEMANTICS, open_stored
from brygga.config import SparkSettings, get_settings
from brygga.errors import InputError, MissingExtra
from brygga.privacy.cellkey import SCALE, FeasibilityKeys
from brygga.records import optimize, schema
from brygga.records.store import Region, quiet_duckdb
from brygga.util import lazy_module

# Imported on first use, for start-up time: a question answered from stored bitmaps needs no Ibis.
ibis = lazy_module("ibis")
ir = lazy_module("ibis.expr.types")

if TYPE_CHECKING:
    from brygga.cohort.bitmaps import BitmapEngine

ENGINES = ("duckdb", "spark", "reference")
# The engines that also run queries other than criteria (``IbisEngine.to_arrow``).
QUERY_ENGINES = ("duckdb", "spark")


class IbisEngine:
    """Runs compiled criteria on an Ibis backend, as SQL (Spark; and the plan DuckDB shares).

    The SQL of each question is cached by the criteria's fingerprint and index date: building
    and compiling the Ibis expression costs more than the engine takes to run it, and
    feasibility questions are asked again and again while criteria are being refined.
    """

    CACHE_SIZE = 256

    def __init__(
        self,
        name: str,
        tables: Any,
        to_sql: Callable[[Any], str],
        run_sql: Callable[[str], list[dict[str, Any]]],
        fetch: Callable[[str], pa.Table],
    ) -> None:
        self.name = name
        self.tables = tables
        self.to_sql = to_sql
        self.run_sql = run_sql
        self.fetch = fetch
        self.lock = threading.RLock()  # engines are shared between threads (engine_for)
        self._sql: dict[tuple[str, str, date], str] = {}

    def table(self, name: str) -> ir.Table | None:
        """The region's table ``name`` as an Ibis table (None when the region lacks it), for
        callers that write queries of their own (prevention's inputs): the engine is then a
        ``population.Tables``, so those queries take their people from ``cohort.population``."""
        return self.tables.table(name)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        """Run an Ibis expression over this engine's tables; the rows as Arrow."""
        return self.fetch(self.to_sql(expr))

    def compile(self, criteria: Criteria, index_date: date) -> Compiled:
        return compile_criteria(criteria, self.tables, index_date)

    def sql(self, kind: str, criteria: Criteria, index_date: date) -> str:
        key = (kind, criteria.fingerprint(index_date), index_date)
        with self.lock:
            if key not in self._sql:
                if len(self._sql) >= self.CACHE_SIZE:
                    self._sql.clear()
                compiled = self.compile(criteria, index_date)
                self._sql[key] = self.to_sql(getattr(compiled, kind)())
            return self._sql[key]

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        rows = self.run_sql(self.sql("summary", criteria, index_date))
        descriptions = [step_description(index_date, criteria.entry)]
        descriptions += [d for _, d, _ in criteria.steps()]
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

    def keys(self, criteria: Criteria, index_date: date) -> FeasibilityKeys:
        """The same grouping as ``Compiled.summary`` with each group's record-key units
        summed where the data is (the cell key method; ``privacy/cellkey.py``)."""
        with self.lock:
            compiled = self.compile(criteria, index_date)
            keys = self.tables.table("person_key")
            reached = sum(
                (ibis.ifelse(c, 1, 0) for c in compiled.conditions[1:]), start=ibis.literal(0)
            ).cast("int32")
            t = compiled.flags.mutate(reached=reached).select(
                "person_id", "sex", "age_band", "municipality", "reached"
            )
            units = keys.select(
                key_person=keys.person_id, units=(keys.record_key * SCALE).floor().cast("int64")
            )
            t = t.left_join(units, t.person_id == units.key_person)
            summary = t.group_by(["sex", "age_band", "municipality", "reached"]).aggregate(
                k=t.units.sum().cast("int64")
            )
            rows = self.run_sql(self.to_sql(summary))
        last = len(compiled.conditions) - 1
        steps = [sum(int(r["k"] or 0) for r in rows if r["reached"] >= i) for i in range(last + 1)]
        cells: dict[tuple[str, int, str | None], int] = {}
        for r in rows:
            if r["reached"] == last:
                key = (r["sex"], int(r["age_band"]), r["municipality"])
                cells[key] = cells.get(key, 0) + int(r["k"] or 0)
        return FeasibilityKeys(steps, cells)

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


_engines_lock = threading.Lock()
_engines: OrderedDict[tuple[str, ...], Engine] = OrderedDict()
SHARED_ENGINES = 4


def engine_for(name: str, region: Region) -> Engine:
    """The process's engine for a region, opened on first use and then shared (CLI, web
    requests from several threads, matching), so kept rule sets serve every caller.

    Keyed by the region folder, its manifest (bytes and modification time: a regenerated
    region gets a new engine), its optimized database and the engine kind; the least recently
    used of ``SHARED_ENGINES`` is dropped.
    """
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")
    manifest = region.path / "manifest.json"
    database = optimize.find(region.path)
    key = (
        name,
        str(region.path.resolve()),
        hashlib.sha256(manifest.read_bytes()).hexdigest(),
        str(manifest.stat().st_mtime_ns),
        database.name if database else "",
    )
    with _engines_lock:
        if key in _engines:
            _engines.move_to_end(key)
            return _engines[key]
    # Outside the lock: opening Spark takes seconds. (The database found above is passed on:
    # finding it stats every table file, 20-40 ms at scale 1.0.)
    engine = (
        duckdb_engine(region, found=database) if name == "duckdb" else open_engine(name, region)
    )
    with _engines_lock:
        engine = _engines.setdefault(key, engine)
        _engines.move_to_end(key)
        while len(_engines) > SHARED_ENGINES:
            _engines.popitem(last=False)
    return engine


def query_engine(name: str, region: Region) -> IbisEngine:
    """The shared engine (``engine_for``) of a region for queries of one's own over its Ibis
    tables: DuckDB or Spark (the reference evaluator answers criteria only)."""
    if name not in QUERY_ENGINES:
        raise InputError(f"unknown engine {name!r}; available: {', '.join(QUERY_ENGINES)}")
    engine = engine_for(name, region)
    assert isinstance(engine, IbisEngine)
    return engine


def forget_engines() -> None:
    """Drop every shared engine (tests; or to release memory)."""
    with _engines_lock:
        _engines.clear()


# --- DuckDB ---------------------------------------------------------------------------------


class _RegionTables:
    """The region's Ibis tables, each looked up once (a lookup asks the backend for the
    schema: 10-20 ms per rule otherwise). ``present``: the table names, or a function giving
    them (asked on first use: the DuckDB engine opens its connection only when needed)."""

    def __init__(
        self, present: set[str] | Callable[[], set[str]], get: Callable[[str], Any]
    ) -> None:
        self._present = present
        self.get = get
        self._tables: dict[str, Any] = {}

    @property
    def present(self) -> set[str]:
        if callable(self._present):
            self._present = self._present()
        return self._present

    def table(self, name: str) -> Any:
        if name not in self.present:
            return None
        if name not in self._tables:
            self._tables[name] = self.get(name)
        return self._tables[name]


def duckdb_engine(
    region: Region,
    *,
    optimized: bool = True,
    threads: int | None = None,
    code_arrays: bool = True,
    found: Path | None = None,
) -> BitmapEngine:
    """DuckDB computes each rule's person set; ``bitmaps.BitmapEngine`` keeps and combines them.
    ``threads``: DuckDB's (default: BRYGGA_DUCKDB_THREADS, else every core).

    The connection (and Ibis' DuckDB backend) is opened on first use: on an optimized region
    with its arrays (``stored.py``), a question whose rules earlier processes computed is
    answered without it (a new process's cold start). ``found``: the optimized database
    ``optimize.find`` just gave (None: find it)."""
    from brygga.cohort.bitmaps import BitmapEngine
    from brygga.config import get_settings

    settings = get_settings()
    database = (found or optimize.find(region.path)) if optimized else None
    stored = open_stored(database, SEMANTICS) if settings.cohort_cache else None
    # ``code_arrays=False``: every rule through DuckDB (the spec tests run both routes).
    code_arrays = code_arrays and settings.cohort_code_arrays
    codes = open_codes(stored.folder) if stored is not None and code_arrays else None
    lock = threading.Lock()
    opened: dict[str, Any] = {}

    def connection() -> dict[str, Any]:
        with lock:
            if not opened:
                import ibis

                raw = region.duckdb(
                    threads=threads or settings.duckdb_threads,
                    memory_limit=settings.duckdb_memory_limit,
                    optimized=optimized,
                )
                # Keep Parquet footers in memory between queries of a long-lived engine.
                raw.execute("SET parquet_metadata_cache = true")
                # Views: the region's tables, plus what an optimized region adds (``population``).
                present = {
                    r[0]
                    for r in raw.execute(
                        "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                    ).fetchall()
                }
                opened.update(raw=raw, con=ibis.duckdb.from_connection(raw), present=present)
                settle_garbage_collector()
            return opened

    def get(name: str) -> Any:
        with quiet_duckdb():
            return connection()["con"].table(name)

    def to_sql(expr: Any) -> str:
        with quiet_duckdb():
            return str(connection()["con"].compile(expr))

    def run_sql(sql: str) -> list[dict[str, Any]]:
        cursor = connection()["raw"].execute(sql)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def fetch(sql: str) -> Any:
        return connection()["raw"].sql(sql).to_arrow_table()

    def execute(sql: str) -> None:
        connection()["raw"].execute(sql)

    tables = _RegionTables(lambda: connection()["present"], get)
    return BitmapEngine(
        tables,
        to_sql,
        run_sql,
        fetch,
        execute,
        stored=stored,
        codes=codes,
        threads=settings.cohort_threads,
    )


_settled = threading.Event()


def settle_garbage_collector() -> None:
    """Once per process, when the first engine opens: take what is alive then (the modules
    above all) out of the collector's generations. Otherwise every full collection walks
    Ibis', DuckDB's and pydantic's objects again: about 140,000 here, a 100-130 ms pause in
    the middle of whichever question triggers it (measured). Garbage is collected first, so
    none is kept."""
    if not _settled.is_set():
        _settled.set()
        gc.collect()
        gc.freeze()


# --- Spark ----------------------------------------------------------------------------------


_spark_lock = threading.Lock()
_spark: dict[str, Any] = {}  # sessions by Spark Connect URL; "" is the classic session


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
    """The process's Spark session for the configured master or Connect URL (made on first use).

    Sessions are kept per ``BRYGGA_SPARK_REMOTE``, so a classic session (local mode or a
    master) and Spark Connect sessions can serve one process side by side.
    """
    _require_pyspark()
    settings = get_settings().spark
    key = settings.remote or ""
    with _spark_lock:
        if key not in _spark:
            with quiet_spark():
                make = _connect_session if settings.remote else _classic_session
                _spark[key] = make(settings)
        return _spark[key]


def _require_pyspark() -> None:
    """PySpark is an optional extra: without it, one line naming the extra, not a traceback."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise MissingExtra("the Spark engine", "PySpark", "spark") from None


def stop_spark_session(remote: str | None = None) -> None:
    """Stop and forget the session for a Connect URL (``None``: the classic session)."""
    with _spark_lock:
        session = _spark.pop(remote or "", None)
    if session is not None:
        with quiet_spark():
            session.stop()


def _session_conf(settings: SparkSettings) -> dict[str, str]:
    return {
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        **settings.conf,
    }


def _classic_session(settings: SparkSettings) -> Any:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName("brygga")
        .master(settings.master)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config(map=_session_conf(settings))
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _connect_session(settings: SparkSettings) -> Any:
    """A Spark Connect client session. Built with the Connect session's own builder: PySpark's
    general builder would switch the whole process into Connect mode (an environment variable)
    and then refuse to make a classic session, or refuse Connect once a classic one exists."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    assert settings.remote is not None
    builder = ConnectSession.builder.remote(settings.remote).appName("brygga")
    # Only runtime SQL settings apply to a Connect session; static ones are dropped silently.
    return builder.config(map=_session_conf(settings)).create()


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

    def fetch(sql: str) -> pa.Table:
        with quiet_spark():
            return session.sql(sql).toArrow()

    return IbisEngine("spark", _RegionTables(present, get), to_sql, run_sql, fetch)


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
