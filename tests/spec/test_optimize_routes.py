"""``brygga optimize`` computes each record's next dates in NumPy while the Parquet parts
stream into DuckDB (``optimize._build_grouped``) and falls back on SQL window functions when
the parts do not allow it. Both routes must give the same database, table for table."""

from __future__ import annotations

import random
import shutil
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from brygga.records import optimize, schema
from brygga.records.store import Region, RegionWriter
from tests.spec.conftest import event, period, person, visit

CODES = {"condition": ["E119", "I10", "J44", None], "measurement": ["NPU1", "NPU2", "NPU3"]}


def rows(
    rng: random.Random, people: int, strangers: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """Events crowding few days (ties on a day, with and without a value), null codes and
    vocabularies, and (``strangers``) records of people missing from ``person``."""
    found = []
    for _ in range(400):
        kind = rng.choice(["condition", "measurement", "visit"])
        pid = rng.randint(1, people + (3 if strangers else 0))
        day = date(2020, 1, 1) + timedelta(days=rng.randint(0, 12))
        if kind == "visit":
            found.append(visit(pid, day, rng.choice([9201, 9202])))
            continue
        value = rng.choice([None, 1.5]) if kind == "measurement" else None
        vocabulary = rng.choice(["default", "default", None])
        found.append(
            event(
                kind,
                pid,
                rng.choice(CODES[kind]),
                day,
                vocabulary=vocabulary,
                concept=rng.choice([0, 0, 7]),
                value=value,
            )
        )
    return found


def write(
    out: Path, tables: dict[str, list[dict[str, Any]]], parts: int, by_person: bool
) -> Region:
    """Each table in ``parts`` Parquet parts: by person (each person in one part), or dealt
    out row by row (people in several parts)."""
    with RegionWriter(out) as writer:
        for name, table_rows in tables.items():
            t = schema.table(name)
            for i, r in enumerate(table_rows, start=1):
                if f"{name}_id" in t.column_names:
                    r.setdefault(f"{name}_id", i)
            chunks: list[list[dict[str, Any]]] = [[] for _ in range(parts)]
            for i, r in enumerate(table_rows):
                chunks[(r["person_id"] if by_person else i) % parts].append(r)
            for chunk in chunks:
                data = {c: [r.get(c) for r in chunk] for c in t.column_names}
                writer.write(name, pa.Table.from_pydict(data, schema=t.arrow_schema()))
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"region": "routes", "source": "synthetic"})


def differences(a: Path, b: Path) -> dict[str, Any]:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    names = {
        db: {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [db]
            ).fetchall()
        }
        for db in ("a", "b")
    }
    assert names["a"] == names["b"]
    found: dict[str, Any] = {}
    for name in sorted(names["a"] - {"_brygga_build"}):
        described = [con.execute(f"DESCRIBE {db}.{name}").fetchall() for db in ("a", "b")]
        if described[0] != described[1]:
            found[name] = described
            continue
        only = [
            con.execute(f"SELECT * FROM {x}.{name} EXCEPT ALL SELECT * FROM {y}.{name}").fetchall()
            for x, y in (("a", "b"), ("b", "a"))
        ]
        if any(only):
            found[name] = only
            continue
        base = name.removesuffix("_first")
        if base in schema.TABLES and optimize.order_by(schema.table(base)):
            # The same order: position by position, the same sort keys (rows with equal
            # keys may be in any order).
            keys = optimize.order_by(schema.table(base))
            if base != name:
                keys = [keys[0], keys[1], optimize.PERSON_INDEX]
            listed = ", ".join(keys)
            stored = [con.execute(f"SELECT {listed} FROM {db}.{name}").fetchall() for db in "ab"]
            if stored[0] != stored[1]:
                found[name] = "order"
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "sort", "by_person", "bucket", "strangers"),
    [
        (1, True, True, 0, True),
        (2, False, True, 0, True),
        (3, False, False, 0, True),
        (4, True, True, 0, True),
        (5, True, True, 40, True),
        (6, False, True, 25, True),
        (7, True, True, 0, False),
        (8, True, True, 60, False),
        (9, False, True, 40, False),
    ],
    ids=[
        "sorted-parts",
        "unsorted-parts",
        "people-in-several-parts",
        "sorted-parts-2",
        "buckets",
        "buckets-unsorted",
        "known-people",
        "known-people-buckets",
        "known-people-buckets-unsorted",
    ],
)
def test_numpy_and_sql_routes_build_the_same_database(
    tmp_path, monkeypatch, seed, sort, by_person, bucket, strangers
):
    """``bucket``: sorts of at most that many rows (runs of codes), as at scale 1.0 where a
    table does not fit in memory. ``strangers``: records of people missing from ``person``
    (without them, a bucket is sorted in NumPy: ``optimize._sorted_bucket``)."""
    planned: list[Any] = []
    if bucket:
        monkeypatch.setattr(optimize, "_bucket_rows", lambda limit: bucket)
        buckets = optimize._buckets

        def plan(*args: Any) -> Any:
            planned.append(found := buckets(*args))
            return found

        monkeypatch.setattr(optimize, "_buckets", plan)
    rng = random.Random(seed)
    people = 12
    tables: dict[str, list[dict[str, Any]]] = {"person": [person(p) for p in range(1, people + 1)]}
    for name, row in [
        *rows(rng, people, strangers),
        *(period(p, date(2000, 1, 1), date(2030, 12, 31)) for p in range(1, people + 1)),
    ]:
        tables.setdefault(name, []).append(row)
    if sort:  # as the generator writes a part: by code, person, date
        for name, table_rows in tables.items():
            t = schema.table(name)
            code = t.code_column or ("visit_concept_id" if name == "visit_occurrence" else None)
            if code and t.date_column:
                table_rows.sort(key=lambda r: (r[code] or "", r["person_id"], r[t.date_column]))
    else:
        for table_rows in tables.values():
            rng.shuffle(table_rows)
    region = write(tmp_path / "r", tables, parts=3, by_person=by_person)
    built: dict[bool, Path] = {}
    routes: dict[bool, list[str]] = {}
    original = optimize._build_grouped
    for grouped in (True, False):
        monkeypatch.setattr(optimize, "_GROUPED", grouped)
        took: list[str] = []

        def spy(con: Any, region: Any, table: Any, rows: int, took: list[str] = took) -> Any:
            done = original(con, region, table, rows)
            if done is not None:
                took.append(table.name)
            return done

        monkeypatch.setattr(optimize, "_build_grouped", spy)
        report = optimize.build(Region.open(region.path), threads=1, incremental=False)
        built[grouped] = tmp_path / f"grouped-{grouped}.duckdb"
        shutil.copyfile(report.path, built[grouped])
        routes[grouped] = took
    assert differences(built[True], built[False]) == {}
    if bucket:  # several buckets, one of them a code larger than a bucket (a visit type)
        assert max(len(found) for found in planned) >= 2
        assert any(low == high for found in planned for low, high, _ in found)
    assert routes[False] == []
    event_tables = ["condition_occurrence", "measurement", "visit_occurrence"]
    if by_person:  # the NumPy route was taken, null codes and vocabularies included
        assert set(event_tables) <= set(routes[True])
    else:  # a person in two parts: SQL
        assert not set(event_tables) & set(routes[True])


@pytest.mark.parametrize("ordered", [True, False])
def test_part_reader_reads_each_bucket_once(tmp_path, ordered):
    """``_PartReader`` over a part of many row groups: each bucket's rows, whether the row
    groups are in code order (each read once, the rest of one kept for the next bucket) or
    not; a bucket skipped (streamed by DuckDB, the kept rows released) is passed over."""
    rng = random.Random(11)
    codes = [rng.choice(["A", "B", "C", "D", "E", "F"]) for _ in range(200)]
    if ordered:
        codes.sort()
    table = pa.table({"code": codes, "n": list(range(200))})
    path = tmp_path / "part.parquet"
    pq.write_table(table, path, row_group_size=7)
    reader = optimize._PartReader(path, "code")
    assert reader.ordered == ordered
    for low, high, skip in [
        ("A", "A", False),
        ("B", "C", True),
        ("D", "D", False),
        ("E", "F", False),
    ]:
        want = sorted(n for c, n in zip(codes, range(200), strict=True) if low <= c <= high)
        if skip:  # as ``_build_grouped`` before and after DuckDB's sort of a bucket
            reader.release()
            reader.skip(high)
            continue
        got = reader.read(low, high)
        assert sorted(got.column("n").to_pylist()) == want


def test_next_days_match_the_window_functions():
    """``_next_days`` on rows sorted by group, then day, against the SQL windows."""
    rng = random.Random(7)
    n = 3000
    group = sorted(rng.randint(0, 300) for _ in range(n))
    raw = [(g, rng.randint(0, 40), rng.random() < 0.4) for g in group]
    raw.sort(key=lambda r: (r[0], r[1]))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, g INTEGER, d DATE, v DOUBLE)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [
            (i, g, date(2020, 1, 1) + timedelta(days=d), 1.0 if v else None)
            for i, (g, d, v) in enumerate(raw)
        ],
    )
    expected = con.execute(
        """
        SELECT first_value(d) OVER w_after, last_value(d) OVER w_before,
               first_value(CASE WHEN v IS NOT NULL THEN d END IGNORE NULLS) OVER w_after
        FROM t
        WINDOW w_after AS (PARTITION BY g ORDER BY d
                           RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING),
               w_before AS (PARTITION BY g ORDER BY d
                            RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 DAY PRECEDING)
        ORDER BY i
        """
    ).fetchall()
    groups = np.array([r[0] for r in raw])
    days = np.array(
        [(date(2020, 1, 1) + timedelta(days=r[1]) - date(1970, 1, 1)).days for r in raw]
    )
    starts = optimize._run_starts([groups])
    got = optimize._next_days(starts, days, np.array([r[2] for r in raw]))

    def as_date(x: int) -> date | None:
        return None if x < 0 else date(1970, 1, 1) + timedelta(days=int(x))

    assert [tuple(as_date(col[i]) for col in got) for i in range(n)] == expected


def test_part_reader_holds_no_memory_between_buckets(tmp_path):
    """What a bucket read is freed with the rows returned: an open Parquet file holds the
    buffers it read (at scale 1.0, 1.1 GB for the visits' 86 parts through their build,
    beside DuckDB's sort), so ``_PartReader`` opens its part for each read. Text columns come
    as dictionaries (stored as VARCHAR by DuckDB), the code as text (compared with bounds)."""
    n = 50_000
    table = pa.table(
        {
            "code": sorted(["A", "B"] * (n // 2)),
            "unit": ["mmol/L", "mg"] * (n // 2),
            "value": np.arange(n, dtype=np.float64),
        }
    )
    path = tmp_path / "part.parquet"
    pq.write_table(table, path, row_group_size=n // 2)
    reader = optimize._PartReader(path, "code")
    before = pa.total_allocated_bytes()
    got = reader.read("A", "A")
    assert got.num_rows == n // 2
    assert pa.types.is_dictionary(got.schema.field("unit").type)
    assert pa.types.is_string(got.schema.field("code").type)
    del got
    # Arrow's I/O threads free some of a read's buffers a moment after it returns (up to
    # 1 MB here, gone within 0.2 s, measured); an open file's never are.
    deadline = time.monotonic() + 5
    while pa.total_allocated_bytes() != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pa.total_allocated_bytes() == before


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("5GB", 5_000_000_000),
        ("2.5 gib", int(2.5 * 1024**3)),
        ("800MB", 800_000_000),
        ("80%", 1 << 62),
    ],
)
def test_memory_limit_in_bytes(setting, expected):
    """The build's buckets (``_bucket_rows``) and the limit after the tables (half) read
    DuckDB's ``memory_limit`` setting; a setting they cannot read counts as no limit, so
    the build leaves DuckDB's limit as it was given."""
    assert optimize._limit_bytes(setting) == expected
    if expected < 1 << 62:
        assert optimize._bucket_rows(setting) == expected // optimize._SORT_BYTES_PER_ROW


def test_disjoint_finds_a_person_in_two_parts():
    """``_disjoint``: a person's rows may repeat within a part (one group per code), never
    across two parts, whether the person has a dense index or is missing from ``person``."""
    none = np.zeros(0, dtype=np.int64)
    known = [(np.array([0, 2, 2, 5]), none), (np.array([1, 3, 1]), none)]
    assert optimize._disjoint(known, 6)
    assert not optimize._disjoint([*known, (np.array([4, 5]), none)], 6)
    others = [(np.array([0]), np.array([91, 91])), (np.array([1]), np.array([92]))]
    assert optimize._disjoint(others, 6)
    assert not optimize._disjoint([*others, (np.array([2]), np.array([92]))], 6)
    assert optimize._disjoint([], 6)


def test_null_people_in_two_parts_leave_the_numpy_route():
    """Records with a null ``person_id`` are one partition for the window functions: in two
    parts of one bucket they fail ``_disjoint``, in one part they pass; a part's own
    people's lookups (one per run of code and person) give every row its dense index."""
    people = np.array([10, 20, 30], dtype=np.int64)
    table = schema.table("condition_occurrence")
    v, c, k, d = optimize._code_columns(table)

    def part(persons: list[int | None]) -> Any:
        n = len(persons)
        return pa.table(
            {
                v: ["ICD10"] * n,
                c: ["E11"] * n,
                k: pa.array([1] * n, type=pa.int64()),
                "person_id": pa.array(persons, type=pa.int64()),
                d: [date(2020, 1, 1) + timedelta(days=i) for i in range(n)],
            }
        )

    def prepared(*parts: list[int | None]) -> tuple[list[Any], dict[str, Any]]:
        state: dict[str, Any] = {"ok": True, "persons": [], "firsts": []}
        return [optimize._grouped_part(part(p), table, people, state) for p in parts], state

    done, state = prepared([10, 10, 30, None], [20, 20])
    assert optimize._disjoint(state["persons"], len(people))
    assert done[0].column(optimize.PERSON_INDEX).to_pylist() == [0, 0, 2, None]
    assert done[1].column(optimize.PERSON_INDEX).to_pylist() == [1, 1]
    _, state = prepared([10, None], [20, None])
    assert not optimize._disjoint(state["persons"], len(people))
    _, state = prepared([10, 99], [20, 99])  # a stranger in two parts
    assert not optimize._disjoint(state["persons"], len(people))
