"""A region on disk: a folder of Parquet tables plus ``manifest.json``.

Layout::

    REGION/
      manifest.json            region name, source, seed, scale, created, row counts, schema version
      person.parquet           a table as one file ...
      measurement/part-*.parquet  ... or as a folder of parts

``Region.open(path)`` validates the manifest; ``region.connect()`` opens an Ibis connection with
one view per table. ``RegionWriter`` builds a region in a temporary folder beside the target and
renames it into place only when complete, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

__all__ = [
    "MANIFEST",
    "SOURCES",
    "Region",
    "RegionWriter",
    "check_output_dir",
    "conform",
    "identities_path",
    "iter_batches",
    "quiet_duckdb",
]

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from brygga import clock
from brygga.errors import InputError, OutputExistsError, RegionError
from brygga.records import codes as codes_catalogue
from brygga.records import schema
from brygga.util import lazy_module

# Imported on first use, for start-up time: a question answered from the arrays and bitmaps
# kept on disk reads no Parquet file (``pyarrow.parquet`` also loads ssl and fsspec).
pq = lazy_module("pyarrow.parquet")

MANIFEST = "manifest.json"
SOURCES = ("synthetic", "omop-import")


def identities_path(region_path: Path) -> Path:
    """The identities file (``schema.IDENTITY``) beside a region: kept outside the region's
    folder so the health tables can be shared without it."""
    return region_path.parent / f"{region_path.name}.identities.parquet"


@dataclass(frozen=True)
class Region:
    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Region:
        path = Path(path)
        if not path.is_dir():
            raise RegionError(f"region folder {str(path)!r} does not exist")
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise RegionError(f"{str(path)!r} is not a region: it has no {MANIFEST}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegionError(
                f"{manifest_path}: line {exc.lineno}: invalid JSON ({exc.msg})"
            ) from None
        version = manifest.get("schema_version")
        if version != schema.SCHEMA_VERSION:
            raise RegionError(
                f"{str(path)!r} has schema version {version!r}; this Brygga reads version "
                f"{schema.SCHEMA_VERSION}. Regenerate or re-import the region."
            )
        region = cls(path, manifest)
        missing = [t for t in schema.CORE_TABLES if region.table_path(t) is None]
        if missing:
            raise RegionError(f"region {str(path)!r} is missing tables: {', '.join(missing)}")
        return region

    @property
    def name(self) -> str:
        return str(self.manifest.get("region", self.path.name))

    @property
    def synthetic(self) -> bool:
        return self.manifest.get("source") == "synthetic"

    @property
    def row_counts(self) -> dict[str, int]:
        return dict(self.manifest.get("row_counts", {}))

    @cached_property
    def period(self) -> tuple[date, date] | None:
        """The days the records cover: the manifest's period (a synthetic region's extract),
        else the span of the observation periods (an imported region's manifest has none);
        None when there are none."""
        stated = self.manifest.get("period") or {}
        if stated.get("start") and stated.get("end"):
            return date.fromisoformat(str(stated["start"])), date.fromisoformat(str(stated["end"]))
        con = self.duckdb(optimized=False)
        try:
            start, end = con.execute(
                "SELECT min(observation_period_start_date), max(observation_period_end_date) "
                "FROM observation_period"
            ).fetchone()
        finally:
            con.close()
        return (start, end) if start is not None and end is not None else None

    def code_names(self, codes: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Names of (vocabulary, code) pairs, for people to read: from the region's ``concept``
        table (an imported OMOP region: "SNOMED 44054006" is "Diabetes mellitus type 2"; the
        vocabulary "OMOP" names a concept id), else from the codes Brygga knows by name
        (``records.codes``). A code without a name is left out."""
        wanted = sorted(set(codes))
        names = {
            (c.vocabulary, c.code): c.label
            for group in (codes_catalogue.CONDITIONS, codes_catalogue.DRUGS,
                          codes_catalogue.LABS, codes_catalogue.PROCEDURES,
                          codes_catalogue.OBSERVATIONS)
            for c in group.values()
        }  # fmt: skip
        found = {pair: names[pair] for pair in wanted if pair in names}
        if not wanted or self.table_path("concept") is None:
            return found
        ids = [int(c) for v, c in wanted if v == "OMOP" and c.isdigit()]
        pairs = [(v, c) for v, c in wanted if v != "OMOP"]
        con = self.duckdb(optimized=False)
        try:
            rows = []
            if ids:
                rows += [
                    (("OMOP", str(i)), n)
                    for i, n in con.execute(
                        "SELECT concept_id, concept_name FROM concept WHERE concept_id IN "
                        "(SELECT unnest(?::BIGINT[]))",
                        [ids],
                    ).fetchall()
                ]
            if pairs:
                rows += [
                    ((v, c), n)
                    for v, c, n in con.execute(
                        "SELECT c.vocabulary_id, c.concept_code, c.concept_name FROM concept c "
                        "JOIN (SELECT unnest(?::VARCHAR[]) AS v, unnest(?::VARCHAR[]) AS k) w "
                        "ON c.vocabulary_id = w.v AND c.concept_code = w.k",
                        [[v for v, _ in pairs], [c for _, c in pairs]],
                    ).fetchall()
                ]
        finally:
            con.close()
        return found | {pair: str(name) for pair, name in rows if name}

    def records_date(self, today: date | None = None) -> date:
        """The day the records describe: today, or the end of the records if earlier (a
        region is an extract taken on some day; after it nobody is under observation)."""
        today = today or clock.today()
        period = self.period
        return min(today, period[1]) if period else today

    def table_path(self, name: str) -> Path | None:
        single = self.path / f"{name}.parquet"
        if single.is_file():
            return single
        folder = self.path / name
        if folder.is_dir():
            return folder
        return None

    def tables(self) -> list[str]:
        return [t for t in schema.TABLES if self.table_path(t) is not None]

    def parquet_glob(self, name: str) -> str:
        p = self.table_path(name)
        if p is None:
            raise RegionError(f"region {self.name!r} has no table {name!r}")
        return str(p / "*.parquet") if p.is_dir() else str(p)

    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Read a whole table into memory (small tables and tests only)."""
        p = self.table_path(name)
        if p is None:
            raise RegionError(f"region {self.name!r} has no table {name!r}")
        return pq.read_table(p, columns=columns, schema=schema.table(name).arrow_schema())

    def duckdb(
        self, threads: int | None = None, memory_limit: str | None = None, optimized: bool = True
    ) -> Any:
        """A DuckDB connection with one view per table: over the region's optimized database
        when ``brygga optimize`` has built a current one (see ``records/optimize.py``; it also
        adds a ``population`` view) unless ``optimized`` is false, else over the Parquet files."""
        import duckdb

        from brygga.records import optimize

        con = duckdb.connect()
        if threads:
            con.execute(f"SET threads={int(threads)}")
        if memory_limit:
            con.execute("SET memory_limit=?", [memory_limit])
        native: set[str] = set()
        database = optimize.find(self.path) if optimized else None
        if database is not None:
            quoted = str(database).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS optimized (READ_ONLY)")
            native = {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'optimized'"
                ).fetchall()
            }
        for name in native - set(self.tables()):
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM optimized.{name}")
        for name in self.tables():
            if name in native:
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM optimized.{name}")
                continue
            glob = self.parquet_glob(name).replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}')")
        return con

    def connect(self, engine: str = "duckdb") -> Any:
        """An Ibis backend with one table per region table."""
        if engine != "duckdb":
            raise InputError(f"unknown engine {engine!r}; available: duckdb")
        import ibis

        return ibis.duckdb.from_connection(self.duckdb())


class RegionWriter:
    """Builds a region in a temporary folder; ``commit()`` renames it into place."""

    def __init__(self, out: str | Path, *, force: bool = False) -> None:
        self.out = Path(out)
        check_output_dir(self.out, force=force)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        except OSError as exc:
            raise InputError(f"cannot write to {str(self.out.parent)!r}: {exc.strerror}") from None
        self._parts: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._force = force

    def write(self, name: str, data: pa.Table, *, row_group_size: int = 1_000_000) -> None:
        """Append ``data`` as the next part of table ``name`` (cast to the schema)."""
        part = self._parts.get(name, 0)
        self.write_part(self.tmp, name, part, data, row_group_size=row_group_size)
        self._parts[name] = part + 1
        self.record_rows(name, data.num_rows)

    @staticmethod
    def write_part(
        root: Path, name: str, index: int, data: pa.Table, *, row_group_size: int = 1_000_000
    ) -> None:
        """Write part ``index`` of table ``name`` under ``root`` (usable from worker processes)."""
        data = conform(data, schema.table(name))
        folder = root / name
        folder.mkdir(exist_ok=True)
        pq.write_table(
            data,
            folder / f"part-{index:05d}.parquet",
            compression="zstd",
            row_group_size=row_group_size,
        )

    def record_rows(self, name: str, rows: int) -> None:
        """Count rows written to ``name`` by ``write_part``."""
        self._parts.setdefault(name, 1)
        self._rows[name] = self._rows.get(name, 0) + rows

    def ensure_tables(self, names: list[str]) -> None:
        """Write an empty part for every named table that got no rows."""
        for name in names:
            if name not in self._parts:
                self.write(name, schema.table(name).arrow_schema().empty_table())

    def add_file(self, relative: str, content: bytes) -> None:
        (self.tmp / relative).write_bytes(content)

    def commit(self, manifest: dict[str, Any]) -> Region:
        manifest = {
            "schema_version": schema.SCHEMA_VERSION,
            "created": clock.now().isoformat(timespec="seconds"),
            "row_counts": dict(sorted(self._rows.items())),
            **manifest,
        }
        if manifest.get("source") not in SOURCES:
            raise ValueError(f"manifest source must be one of {SOURCES}")
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)
        return Region.open(self.out)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> RegionWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or self.tmp.exists():
            self.abort()


def conform(data: pa.Table, table_def: schema.Table) -> pa.Table:
    """Select and cast ``data`` to the table's schema; missing optional columns become null."""
    target = table_def.arrow_schema()
    arrays = []
    for f in target:
        if f.name in data.column_names:
            arrays.append(data.column(f.name).cast(f.type))
        elif not f.nullable:
            raise InputError(f"table {table_def.name}: required column {f.name!r} is missing")
        else:
            arrays.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(arrays, schema=target)


def check_output_dir(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(
            f"output folder {str(out)!r} exists and is not empty; use --force to replace it"
        )
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise InputError(f"cannot write to {str(parent)!r}: permission denied")


def iter_batches(region: Region, name: str, batch_size: int = 500_000) -> Iterator[pa.RecordBatch]:
    import pyarrow.dataset as ds

    dataset = ds.dataset(region.parquet_glob(name).removesuffix("/*.parquet"), format="parquet")
    yield from dataset.to_batches(batch_size=batch_size)


@contextmanager
def quiet_duckdb() -> Iterator[None]:
    """Ibis 12 still calls DuckDB 2's deprecated ``fetch_arrow_table``; not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")
        yield
