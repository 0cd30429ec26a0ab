"""Time ``brygga optimize`` per step: a full build (no previous database) of REGION, with the
wall and CPU seconds of every step the build reports (each table, its summaries, the
population, the arrays), the peak RSS, and the load average at start and end.

    PYTHONPATH=src .venv/bin/python bench/optimize.py REGION [--memory-limit 3GB] [--threads N]
        [--keep] [--sql-windows]

REGION must be a region folder you may write into (for a read-only region, make a folder of
symlinks to its Parquet files and a copy of its manifest.json). The database is deleted
afterwards unless ``--keep``. ``--sql-windows`` computes the next dates by SQL window functions
(the route before the NumPy one) for a comparison in one run. Prints JSON."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from brygga.records import optimize
from brygga.records.store import Region


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("region", type=Path)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--sql-windows", action="store_true", help="the next dates by SQL window functions"
    )
    args = parser.parse_args()
    region = Region.open(args.region)
    optimize._GROUPED = not args.sql_windows
    for old in args.region.glob(f"{optimize.PREFIX}*"):  # a full build
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    steps: dict[str, list[float]] = {}
    last = {"name": "start", "wall": time.perf_counter(), "cpu": _cpu()}

    def progress(name: str) -> None:
        now, cpu = time.perf_counter(), _cpu()
        # step: [wall seconds, CPU seconds]
        last_name = str(last["name"])
        steps[last_name] = [
            round(now - float(last["wall"]), 1),
            round(cpu - float(last["cpu"]), 1),
        ]
        last.update(name=name, wall=now, cpu=cpu)
        print(f"{last_name}: {steps[last_name]}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    started, cpu_started = time.perf_counter(), _cpu()
    options = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    report = optimize.build(
        region, threads=args.threads, progress=progress, incremental=False, **options
    )
    progress("end")
    result = {
        "region": str(args.region),
        "rows": sum(report.tables.values()),
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(_cpu() - cpu_started, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "database_gb": round(report.bytes / 1e9, 2),
        "load_start": [round(x, 1) for x in load_start],
        "load_end": [round(x, 1) for x in os.getloadavg()],
        "steps": {k: v for k, v in steps.items() if k != "start"},
    }
    if not args.keep:
        shutil.rmtree(optimize.arrays_path(report.path), ignore_errors=True)
        report.path.unlink()
    steps_text = ",\n  ".join(f"{json.dumps(k)}: {v}" for k, v in result.pop("steps").items())
    print(json.dumps(result, indent=1)[:-2] + ',\n "steps": {\n  ' + steps_text + "\n }\n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
