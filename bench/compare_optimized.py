"""Compare two optimized databases table by table: the same tables, columns and rows (EXCEPT
ALL both ways), and whether each table's rows are in the same (code, date, person) order
(position by position; rows with equal sort keys may be in any order).

    PYTHONPATH=src .venv/bin/python bench/compare_optimized.py A.duckdb B.duckdb

Prints one line per table and exits 1 when any differs."""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

import duckdb
import numpy as np

from brygga.records import optimize, schema


def _sort_keys(name: str) -> list[str]:
    """The columns a table of the optimized database is sorted by (none: any order)."""
    base = name.removesuffix("_first").removesuffix("_runs")
    if base not in schema.TABLES:
        return []
    keys = optimize.order_by(schema.table(base))
    if base != name and keys:  # the summaries: by code, date, person index
        return [keys[0], keys[1], optimize.PERSON_INDEX]
    return keys


def _out_of_order(con: duckdb.DuckDBPyConnection, name: str) -> int | str:
    """How many rows of ``name`` differ in their sort keys between a and b, position by
    position (rows with equal keys may be in any order); "-": a table in no order."""
    keys = _sort_keys(name)
    if not keys:
        return "-"
    left = ", ".join(f"{k} AS a{i}" for i, k in enumerate(keys))
    right = ", ".join(f"{k} AS b{i}" for i, k in enumerate(keys))
    differ = " OR ".join(f"a{i} IS DISTINCT FROM b{i}" for i in range(len(keys)))
    return con.execute(
        f"SELECT count(*) FROM (SELECT {left} FROM a.{name}) "
        f"POSITIONAL JOIN (SELECT {right} FROM b.{name}) WHERE {differ}"
    ).fetchall()[0][0]


def main(a: str, b: str) -> int:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")

    def tables(db: str) -> set[str]:
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [db]
        ).fetchall()
        return {r[0] for r in rows}

    left, right = tables("a"), tables("b")
    bad = 0
    if left != right:
        print("tables differ:", sorted(left ^ right))
        bad += 1
    for name in sorted(left & right):
        if name == "_brygga_build":
            continue
        columns = [con.execute(f"DESCRIBE {db}.{name}").fetchall() for db in ("a", "b")]
        if columns[0] != columns[1]:
            print(f"{name}: columns differ")
            bad += 1
            continue
        only = [
            con.execute(
                f"SELECT count(*) FROM (SELECT * FROM {x}.{name} EXCEPT ALL SELECT * FROM {y}.{name})"
            ).fetchall()[0][0]
            for x, y in (("a", "b"), ("b", "a"))
        ]
        rows = con.execute(f"SELECT count(*) FROM a.{name}").fetchall()[0][0]
        moved = _out_of_order(con, name)
        print(f"{name}: {rows} rows, only in a {only[0]}, only in b {only[1]}, order {moved}")
        bad += any(only) or moved not in (0, "-")
    bad += _compare_arrays(Path(a + optimize.ARRAYS), Path(b + optimize.ARRAYS))
    return 1 if bad else 0


def _compare_arrays(a: Path, b: Path) -> int:
    """The code arrays of both databases (``<database>.arrays/codes``), table by table: the
    same codes and offsets, and per code the same rows (every column), as sets when the
    files differ in bytes (rows with equal code, day and person may be in any order)."""
    if not (a / "codes").is_dir() or not (b / "codes").is_dir():
        print("code arrays: not in both")
        return 0
    bad = 0
    for folder in sorted(p.name for p in (a / "codes").iterdir()):
        x, y = a / "codes" / folder, b / "codes" / folder
        files = sorted(f.name for f in x.iterdir() if f.name != "complete")
        if files != sorted(f.name for f in y.iterdir() if f.name != "complete"):
            print(f"arrays {folder}: files differ")
            bad += 1
            continue
        same = [f for f in files if filecmp.cmp(x / f, y / f, shallow=False)]
        differ = sorted(set(files) - set(same))
        if differ and not {"codes.json", "offsets.npy"} & set(differ):
            offsets = np.load(x / "offsets.npy")
            rows = [f for f in files if f.endswith(".npy") and f not in ("offsets.npy",)]
            rows = [f for f in rows if f not in ("person_blocks.npy", "person_day.npy")]
            ok = True
            left = [np.load(x / f, mmap_mode="r") for f in rows]
            right = [np.load(y / f, mmap_mode="r") for f in rows]
            for i in range(len(offsets) - 1):
                s, e = int(offsets[i]), int(offsets[i + 1])
                cols = [np.asarray(c[s:e]) for c in left]
                other = [np.asarray(c[s:e]) for c in right]
                o1, o2 = np.lexsort(cols[::-1]), np.lexsort(other[::-1])
                if not all(
                    np.array_equal(c[o1], d[o2], equal_nan=c.dtype.kind == "f")
                    for c, d in zip(cols, other, strict=True)
                ):
                    ok = False
                    break
            print(f"arrays {folder}: {len(same)} files identical, {differ} equal as sets: {ok}")
            bad += not ok
        else:
            print(f"arrays {folder}: {len(same)} files identical, differ: {differ}")
            bad += bool(differ)
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
