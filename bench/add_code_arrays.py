"""Add the code arrays (``records/code_arrays.py``) to a region's existing optimized database,
and nothing else: never a rebuild, the database opened read-only, only folders that are
missing written (the runs summaries' arrays, the entry keys, on a build from before them). ``brygga optimize REGION``
does the same when the database is current; this script refuses to do anything more, so it is
safe on a large region whose database someone else built.

    PYTHONPATH=src .venv/bin/python bench/add_code_arrays.py bench/data/stockholm-1

Prints the seconds per table, the arrays' size and the process's peak RSS (JSON)."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import duckdb

from brygga.records import code_arrays, optimize


def main(region: Path) -> int:
    database = optimize.find(region)
    if database is None:
        raise SystemExit(f"{region}: no current optimized database (run brygga optimize)")
    arrays = optimize.arrays_path(database)
    if not arrays.is_dir():
        raise SystemExit(f"{arrays}: missing (a region without a population table)")
    started = time.perf_counter()
    cpu = time.process_time()
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("SET memory_limit='3GB'")  # as ``brygga optimize``'s default
        wanted = dict(con.execute("SELECT unit, fingerprint FROM _brygga_build").fetchall())
        # Only new files: a table folder written by another build or format version would be
        # rewritten by ``build``; refuse instead (that is ``brygga optimize``'s job).
        folder = arrays / code_arrays.FOLDER
        for name in code_arrays.folders():
            unit = name.removesuffix(code_arrays.FIRST).removesuffix(code_arrays.RUNS)
            found = code_arrays.fingerprint(folder / name)
            if (
                found is not None
                and unit in wanted
                and found != f"{code_arrays.VERSION}:{wanted[unit]}"
            ):
                raise SystemExit(f"{folder / name}: written by another build; not rewritten")
        spent = code_arrays.build(con, arrays, wanted)
    finally:
        con.close()
    folder = arrays / code_arrays.FOLDER
    sizes = {t.name: sum(f.stat().st_size for f in t.iterdir()) for t in sorted(folder.iterdir())}
    report = {
        "database": database.name,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "tables": spent,
        "bytes": sizes,
        "total_gb": round(sum(sizes.values()) / 1e9, 2),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
