"""Import an OMOP CDM v5.4 CSV export into a region.

``import_omop(source, out)`` reads one CSV file per OMOP table (``PERSON.csv`` or ``person.csv``,
optionally gzip-compressed), maps its columns by name onto ``records/schema.py`` (which keeps
OMOP's column names) and writes a region through ``RegionWriter``: in a temporary folder, renamed
into place only when every table has been read, so a failed import leaves nothing behind.

Speed and memory: DuckDB parses and casts each file and streams the result to Parquet in Arrow
batches, so a multi-gigabyte export never becomes Python objects. DuckDB's own errors count CSV
records, not lines, and quote the offending row, so on failure a second, slower pass
(``_locate``) re-reads the file with Python's csv module and checks each chunk of rows with the
*same* SQL expressions, to name the file, line and column of the first problem without echoing
the row.

Extension columns: ``*_source_vocabulary`` is filled from the ``concept`` table (the vocabulary
of the row's source concept; else of its standard concept when that concept's code is the source
value). ICD-10 source values are stored without the dot, as ``codes.normalize_icd10`` does.
"""

from __future__ import annotations

__all__ = [
    "BATCH_ROWS",
    "BLANK",
    "DEFAULT_MEMORY_LIMIT",
    "DUCKDB_TYPES",
    "IMPORT_ORDER",
    "LOCATE_CHUNK",
    "PERSONNUMMER_LIKE",
    "PROBLEMS",
    "QUOTED",
    "CsvSource",
    "find_files",
    "import_omop",
    "read_header",
]

import contextlib
import csv
import gzip
import io
import re
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa

from brygga.config import get_settings
from brygga.errors import InputError, NotFoundError
from brygga.privacy.cellkey import write_record_keys
from brygga.privacy.pseudonym import load_key, pseudonymize_parts
from brygga.records import schema
from brygga.records.store import Region, RegionWriter

# Vocabulary tables first: the other tables look their concepts up in ``concept``.
IMPORT_ORDER = ["concept", "concept_ancestor", *schema.CORE_TABLES]
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB's, unless BRYGGA_DUCKDB_MEMORY_LIMIT says otherwise
PERSONNUMMER_LIKE = r"(19|20)?[0-9]{6}[-+]?[0-9]{4}"
BATCH_ROWS = 1_000_000  # rows per Arrow batch and Parquet part
LOCATE_CHUNK = 50_000  # rows per check in the error-locating pass

DUCKDB_TYPES = {
    pa.int8(): "TINYINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
    pa.string(): "VARCHAR",
}
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
BLANK = "'…'"
PROBLEMS = {
    "TINYINT": "is not an integer",
    "INTEGER": "is not an integer",
    "BIGINT": "is not an integer",
    "DOUBLE": "is not a number",
    "DATE": "is not a date (expected YYYY-MM-DD)",
}


@dataclass(frozen=True)
class CsvSource:
    """One OMOP CSV file and the table it feeds."""

    table: schema.Table
    path: Path
    header: tuple[str, ...]  # lower-cased column names, in file order; empty for a 0-byte file
    delimiter: str

    @property
    def label(self) -> str:
        return self.path.name

    def raw(self, column: str) -> str | None:
        """The file's column of that name, if it has one."""
        return column if column in self.header else None


def import_omop(
    source: Path,
    out: Path,
    *,
    name: str | None = None,
    force: bool = False,
    pseudonymize: bool = False,
) -> Region:
    """Import the OMOP CSV export in folder ``source`` into a new region at ``out``.

    ``pseudonymize``: person_source_value holds personnummer; derive every person_id from it
    with the deployment's pseudonym key (privacy/pseudonym.py) and leave the numbers out.
    Every region gets fresh record keys for the cell key method (table ``person_key``).
    """
    source, out = Path(source), Path(out)
    key = load_key() if pseudonymize else None  # no key, no work
    files = find_files(source)
    _check_not_overlapping(source, out)
    sources = {table: read_header(path, schema.table(table)) for table, path in files.items()}
    settings = get_settings()
    with RegionWriter(out, force=force) as writer, _duckdb(settings, out) as con:
        has_concepts = False
        for table in IMPORT_ORDER:
            src = sources.get(table)
            if src is None:
                continue
            rows = _copy_table(con, writer, src, with_concepts=has_concepts)
            if table == "concept" and rows:
                _create_vocab_lookup(con, writer.tmp / "concept")
                has_concepts = True
            if table == "person" and rows and key is None:
                _refuse_personnummer(con, writer.tmp / "person", src)
        if key is not None and "person" in sources:
            pseudonymize_parts(con, writer.tmp, key, label=sources["person"].label)
        writer.ensure_tables(schema.CORE_TABLES)
        write_record_keys(con, writer)
        return writer.commit(
            {
                "source": "omop-import",
                "region": name or source.resolve().name,
                "source_folder": str(source.resolve()),
                "source_files": {t: p.name for t, p in sorted(files.items())},
                "pseudonymized": key is not None,
                **_cdm_source(source),
            }
        )


# --- Finding and checking the files ---------------------------------------------------------


def find_files(source: Path) -> dict[str, Path]:
    """Map table name -> CSV file; names are matched case-insensitively, other files ignored."""
    if not source.exists():
        raise NotFoundError(f"OMOP export folder {str(source)!r} does not exist")
    if not source.is_dir():
        raise InputError(f"{str(source)!r} is not a folder of OMOP CSV files")
    found: dict[str, Path] = {}
    for path in sorted(source.iterdir()):
        stem = _table_stem(path.name)
        if stem not in schema.TABLES or not path.is_file():
            continue
        if stem in found:
            raise InputError(
                f"{str(source)!r} has both {found[stem].name} and {path.name}; keep one"
            )
        found[stem] = path
    if "person" not in found:
        raise InputError(
            f"{str(source)!r} has no PERSON.csv (or person.csv); an OMOP export needs at least "
            "the person table"
        )
    return found


def _table_stem(filename: str) -> str | None:
    lower = filename.lower()
    for suffix in (".csv", ".csv.gz"):
        if lower.endswith(suffix):
            return lower.removesuffix(suffix)
    return None


def _check_not_overlapping(source: Path, out: Path) -> None:
    # ``--force`` replaces ``out``; it must never be the export itself or a folder holding it.
    src, dst = source.resolve(), out.resolve()
    if src == dst or dst in src.parents:
        raise InputError(f"--out {str(out)!r} would replace the OMOP export it reads from")


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: exports written on Windows often start with a byte-order mark.
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_header(path: Path, table: schema.Table) -> CsvSource:
    """Read and check a file's header: known delimiter, no duplicates, required columns."""
    try:
        with _open_text(path) as f:
            first = f.readline()
    except UnicodeDecodeError:
        raise InputError(f"{path.name} line 1: not valid UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not first.strip():
        if first == "":  # a 0-byte file: an empty table
            return CsvSource(table, path, (), ",")
        raise InputError(f"{path.name} line 1: the header line is empty")
    delimiter = "\t" if "\t" in first else ","  # Athena's vocabulary files are tab-separated
    header = tuple(c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter)))
    seen: set[str] = set()
    for column in header:
        if not column:
            raise InputError(f"{path.name} line 1: a column has no name")
        if column in seen:
            raise InputError(f"{path.name} line 1: column {column} appears twice")
        seen.add(column)
    src = CsvSource(table, path, header, delimiter)
    for column in table.required_columns:
        if src.raw(column) is None:
            raise InputError(
                f"{path.name} line 1: required column {column} is missing from the header"
            )
    return src


def _cdm_source(source: Path) -> dict[str, Any]:
    """Provenance from CDM_SOURCE.csv, when the export has one (first row only)."""
    path = next((p for p in source.iterdir() if _table_stem(p.name) == "cdm_source"), None)
    if path is None:
        return {}
    keep = ("cdm_source_name", "cdm_version", "vocabulary_version", "cdm_release_date")
    with contextlib.suppress(UnicodeDecodeError, OSError, csv.Error), _open_text(path) as f:
        for row in csv.DictReader(f):
            found = {k: row[k] for k in keep if row.get(k)}
            return {"cdm_source": found} if found else {}
    return {}


# --- The fast path: DuckDB -------------------------------------------------------------------


@contextlib.contextmanager
def _duckdb(settings: Any, out: Path) -> Iterator[Any]:
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    # Sorting a large table spills to disk: keep the spill beside the output, not in the cwd.
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.spill.", dir=out.parent) as spill:
        con = duckdb.connect()
        try:
            con.execute("SET temp_directory=?", [spill])
            con.execute("SET enable_progress_bar=false")  # stdout is for --json
            if settings.duckdb_threads:
                con.execute(f"SET threads={int(settings.duckdb_threads)}")
            # Bounded by default: sorting a large table then spills instead of taking the RAM.
            limit = settings.duckdb_memory_limit or DEFAULT_MEMORY_LIMIT
            con.execute("SET memory_limit=?", [limit])
            # DuckDB cannot estimate a CSV's size and would build the vocabulary joins' hash
            # tables on the event file instead of the concept table: keep joins as written.
            known = {name for (name,) in con.sql("SELECT name FROM duckdb_optimizers()").fetchall()}
            keep = [o for o in ("join_order", "build_side_probe_side") if o in known]
            con.execute("SET disabled_optimizers=?", [",".join(keep)])
            yield con
        finally:
            con.close()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cast(raw: str, duck_type: str) -> str:
    """SQL for the typed value of VARCHAR expression ``raw``; NULL when it does not convert."""
    if duck_type == "VARCHAR":
        return raw
    if duck_type == "DATE":
        # ISO dates; also datetimes (some exports write them in date columns) and YYYYMMDD.
        return (
            f"COALESCE(TRY_CAST({raw} AS DATE), TRY_CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE), "
            f"TRY_CAST(TRY_STRPTIME({raw}, '%Y%m%d') AS DATE))"
        )
    if duck_type == "DOUBLE":
        return f"TRY_CAST({raw} AS DOUBLE)"
    # Integers: DuckDB would round '8507.5' to 8508; accept only integral values ('8507.0').
    return (
        f"CASE WHEN TRY_CAST({raw} AS DOUBLE) = trunc(TRY_CAST({raw} AS DOUBLE)) "
        f"THEN TRY_CAST({raw} AS {duck_type}) END"
    )


def _checked(raw: str, column: schema.Column) -> str:
    """The typed value, raising inside DuckDB on a bad or missing value (located later)."""
    duck_type = DUCKDB_TYPES[column.type]
    missing = "error('missing value')" if column.required else "NULL"
    if duck_type == "VARCHAR":
        return f"CASE WHEN {raw} IS NULL THEN {missing} ELSE {raw} END"
    cast = _cast(raw, duck_type)
    return (
        f"CASE WHEN {raw} IS NULL THEN {missing} WHEN ({cast}) IS NULL "
        f"THEN error('bad value') ELSE {cast} END"
    )


def _read_csv_sql(src: CsvSource) -> str:
    columns = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in src.header)
    return (
        f"read_csv({_literal(str(src.path))}, auto_detect=false, header=true, "
        f"delim={_literal(src.delimiter)}, quote='\"', escape='\"', strict_mode=true, "
        f"columns={{{columns}}})"
    )


def _select_sql(src: CsvSource, *, with_concepts: bool) -> str:
    """One query: rename, cast and check every column, look source vocabularies up, sort.

    The inner query only renames raw text columns and computes lookup keys without side
    effects; the outer one converts, raising on a bad value (DuckDB refuses to join on
    expressions that can raise).
    """
    table = src.table
    inner: list[str] = []
    outer: list[str] = []
    for column in table.columns:
        name = _ident(column.name)
        raw = src.raw(column.name)
        if column.name.endswith("_source_vocabulary"):
            outer.append("")  # filled in below
        elif raw is None:
            outer.append(f"NULL::{DUCKDB_TYPES[column.type]} AS {name}")
        else:
            inner.append(f"{_ident(raw)} AS {name}")
            outer.append(f"{_checked(f't.{name}', column)} AS {name}")
    joins: list[str] = []
    vocab_columns = [c.name for c in table.columns if c.name.endswith("_source_vocabulary")]
    for i, vocab_column in enumerate(vocab_columns):
        stem = vocab_column.removesuffix("_source_vocabulary")
        value_col = f"{stem}_source_value"
        source_key = _concept_key(src, f"{stem}_source_concept_id")
        concept_key = _concept_key(src, f"{stem}_concept_id")
        inner += [f"{source_key} AS __source_concept{i}", f"{concept_key} AS __concept{i}"]
        candidates = []
        if with_concepts:
            # The source concept's vocabulary is what the ETL asserted; the standard concept's
            # only when the source value is that concept's own code (else it would mislabel,
            # say, an ICD-10 code mapped to a SNOMED concept as SNOMED).
            value = f"replace(t.{_ident(value_col)}, '.', '')" if src.raw(value_col) else "NULL"
            joins += [
                f"LEFT JOIN vocab s{i} ON s{i}.concept_id = t.__source_concept{i}",
                f"LEFT JOIN vocab c{i} ON c{i}.concept_id = t.__concept{i} AND c{i}.code = {value}",
            ]
            candidates += [f"s{i}.vocabulary_id", f"c{i}.vocabulary_id"]
        if given := src.raw(vocab_column):
            inner.append(f"{_ident(given)} AS __given_vocabulary{i}")
            candidates.append(f"t.__given_vocabulary{i}")
        vocab = f"COALESCE({', '.join(candidates)})" if candidates else "NULL::VARCHAR"
        outer[table.column_names.index(vocab_column)] = f"{vocab} AS {_ident(vocab_column)}"
        if src.raw(value_col):
            value = f"t.{_ident(value_col)}"
            outer[table.column_names.index(value_col)] = (
                f"CASE WHEN starts_with({vocab}, 'ICD10') THEN upper(replace({value}, '.', '')) "
                f"ELSE {value} END AS {_ident(value_col)}"
            )
    order = f" ORDER BY {', '.join(_ident(k) for k in table.sort_keys)}" if table.sort_keys else ""
    return (
        f"WITH t AS (SELECT {', '.join(inner) or 'NULL AS __none'} FROM {_read_csv_sql(src)}) "
        f"SELECT {', '.join(outer)} FROM t {' '.join(joins)}{order}"
    )


def _concept_key(src: CsvSource, column: str) -> str:
    """SQL for a concept id to look a vocabulary up by; NULL for none (0 means none in OMOP)."""
    raw = src.raw(column)
    if raw is None:
        return "NULL::INTEGER"
    return f"NULLIF({_cast(_ident(raw), 'INTEGER')}, 0)"


def _create_vocab_lookup(con: Any, concept_folder: Path) -> None:
    # One row per concept id so the joins can never multiply event rows; OMOP's 'None'
    # vocabulary (concept 0, "No matching concept") means unknown.
    glob = _literal(str(concept_folder / "*.parquet"))
    con.execute(
        "CREATE TEMP TABLE vocab AS SELECT concept_id, "
        "any_value(NULLIF(vocabulary_id, 'None')) AS vocabulary_id, "
        "any_value(replace(concept_code, '.', '')) AS code "
        f"FROM read_parquet({glob}) GROUP BY concept_id"
    )


def _refuse_personnummer(con: Any, person_folder: Path, src: CsvSource) -> None:
    """A region carries pseudonymous ids only (security property 1): some exports keep the
    personnummer in person_source_value. Refuse them, without showing any."""
    from personnummer import personnummer

    glob = _literal(str(person_folder / "*.parquet"))
    candidates = con.execute(
        f"SELECT person_source_value FROM read_parquet({glob}) "
        "WHERE regexp_full_match(trim(person_source_value), ?) LIMIT 1000",
        [PERSONNUMMER_LIKE],
    ).fetchall()
    if any(personnummer.valid(value.strip()) for (value,) in candidates):
        raise InputError(
            f"{src.label}, column person_source_value: holds Swedish personal identity numbers; "
            "a region carries only pseudonymous ids. Replace them with pseudonyms (or leave the "
            "column empty) before importing."
        )


def _copy_table(con: Any, writer: RegionWriter, src: CsvSource, *, with_concepts: bool) -> int:
    """Stream one file into the region; return its row count. Nothing for an empty vocabulary."""
    if not src.header:
        return 0
    import duckdb

    rows = 0
    try:
        relation = con.sql(_select_sql(src, with_concepts=with_concepts))
        # DuckDB 1.x calls it fetch_arrow_reader, 2.x to_arrow_reader.
        stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader = stream(BATCH_ROWS)
        for batch in reader:
            if batch.num_rows:
                writer.write(src.table.name, pa.Table.from_batches([batch]))
                rows += batch.num_rows
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        # A problem in the data (ours from error(), or the CSV parser's): find where it is.
        raise InputError(_locate(src) or _duckdb_message(src, exc)) from None
    except duckdb.OutOfMemoryException as exc:
        raise InputError(
            f"{_duckdb_message(src, exc)}; allow more with BRYGGA_DUCKDB_MEMORY_LIMIT "
            f"(now {get_settings().duckdb_memory_limit or DEFAULT_MEMORY_LIMIT})"
        ) from None
    except duckdb.IOException as exc:  # e.g. a full disk while spilling or writing
        raise InputError(_duckdb_message(src, exc)) from None
    return rows


def _duckdb_message(src: CsvSource, exc: Exception) -> str:
    # DuckDB's first line, with quoted values (which may be data) blanked out.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{src.label}: cannot be imported: {QUOTED.sub(BLANK, first)}"


# --- The slow path: locate the first problem -------------------------------------------------


def _locate(src: CsvSource) -> str | None:
    """Re-read the file to name the line and column of the first problem, or None."""
    import duckdb

    # A connection of its own: the import's connection still holds the failed result.
    with duckdb.connect() as con:
        return _locate_with(con, src)


def _locate_with(con: Any, src: CsvSource) -> str | None:
    # Chunks of records are read and picked apart by C code (csv, islice, itemgetter, zip);
    # only the first failing record's line is then counted, in a second pass.
    csv.field_size_limit(2**31 - 1)
    checked = [(raw, c) for c in src.table.columns if (raw := src.raw(c.name))]
    before = 1  # records before the current chunk, counting the header
    with _open_text(src.path) as f:
        reader = csv.reader(f, delimiter=src.delimiter)
        try:
            next(reader)  # the header, already checked
            while chunk := list(islice(reader, LOCATE_CHUNK)):
                if found := _check_chunk(con, src, checked, chunk):
                    index, problem = found
                    return f"{src.label} line {_line_of(src, before + index)}{problem}"
                before += len(chunk)
        except csv.Error as exc:
            return f"{src.label} line {reader.line_num}: malformed CSV ({exc})"
        except UnicodeDecodeError:
            return f"{src.label} near line {reader.line_num + 1}: not valid UTF-8 text"
    return None


def _line_of(src: CsvSource, records: int) -> int:
    """The line on which the record after the first ``records`` records starts."""
    with _open_text(src.path) as f:
        reader = csv.reader(f, delimiter=src.delimiter)
        deque(islice(reader, records), maxlen=0)
        return reader.line_num + 1


def _check_chunk(
    con: Any, src: CsvSource, checked: list[tuple[str, schema.Column]], chunk: list[list[str]]
) -> tuple[int, str] | None:
    """The first record of the chunk with a problem: (its index, what is wrong), or None.

    Values are checked with the import's own SQL conversions, so both passes agree."""
    width = len(src.header)
    lengths = list(map(len, chunk))  # 0 for a blank line, which is skipped
    bad_width = next((i for i, n in enumerate(lengths) if n and n != width), None)
    end = len(chunk) if bad_width is None else bad_width
    keep = [i for i in range(end) if lengths[i]]
    positions = [src.header.index(raw) for raw, _ in checked]
    rows = [chunk[i] for i in keep]
    if len(positions) > 1:
        columns = list(zip(*map(itemgetter(*positions), rows), strict=True))
    else:  # itemgetter of one position gives values, not tuples
        columns = [[row[positions[0]] for row in rows]]
    data = {"__i": pa.array(keep, pa.int64())}
    for j in range(len(checked)):
        data[f"v{j}"] = pa.array(columns[j] if rows else [], pa.string())
    flags = []
    for j, (_, column) in enumerate(checked):
        duck_type = DUCKDB_TYPES[column.type]
        bad = "false" if duck_type == "VARCHAR" else f"({_cast(f'v{j}', duck_type)}) IS NULL"
        flags.append(f"CASE WHEN v{j} IS NULL THEN {str(column.required).lower()} ELSE {bad} END")
    values = ", ".join(f"v{j}" for j in range(len(checked)))
    nulls = ", ".join(f"NULLIF(v{j}, '') AS v{j}" for j in range(len(checked)))  # '' is NULL
    con.register("__chunk", pa.table(data))
    try:
        found = con.execute(
            f"SELECT __i, {', '.join(flags)}, {values} FROM (SELECT __i, {nulls} FROM __chunk) "
            f"WHERE {' OR '.join(flags)} ORDER BY __i LIMIT 1"
        ).fetchall()
    finally:
        con.unregister("__chunk")
    if found:
        return found[0][0], _describe(src, checked, found[0][1:])
    if bad_width is not None:
        return bad_width, (
            f": expected {width} fields as in the header, found {lengths[bad_width]}"
        )
    return None


def _describe(src: CsvSource, checked: list[tuple[str, schema.Column]], row: tuple) -> str:
    flags, values = row[: len(checked)], row[len(checked) :]
    j = min(
        (j for j, flag in enumerate(flags) if flag),
        key=lambda j: src.header.index(checked[j][0]),  # the leftmost column in the file
    )
    raw, column = checked[j]
    duck_type = DUCKDB_TYPES[column.type]
    if values[j] is None:
        problem = "a value is required"
    elif _integral(values[j]) and duck_type in ("TINYINT", "INTEGER", "BIGINT"):
        problem = f"{_show(values[j])} is out of range ({column.type} column)"
    else:
        problem = f"{_show(values[j])} {PROBLEMS[duck_type]}"
    return f", column {raw}: {problem}"


def _show(value: str) -> str:
    # Quote the offending value only when it cannot be identifying: never a long value or one
    # with a run of digits that could be a personnummer or phone number (security property 1).
    if len(value) <= 20 and not re.search(r"\d{6}", value) and "@" not in value:
        return repr(value)
    return f"a value of {len(value)} characters"


def _integral(value: str) -> bool:
    try:
        return float(value).is_integer()
    except ValueError:
        return False
