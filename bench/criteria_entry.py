"""Each person's own index date (``entry``) against one index date for everyone.

    .venv/bin/python bench/criteria_entry.py --region bench/data/stockholm-0.1 --generate --scale 0.1

Two questions with the same demographics and rules (docs/criteria.md): incident type 2
diabetes started on metformin, without an earlier diabetes drug, aged 40-75.

* **global**: ``index_date`` 2020-12-31, rules relative to it: the DuckDB engine's kept bitmaps
  (``cohort/bitmaps.py``); a cold run (bitmaps dropped) and warm runs;
* **entry**: ``entry`` with the first E11 in 2015-2020, the same rules relative to each
  person's entry date: the plain plan (one query joined to the entry dates; nothing is kept
  between runs, so every run is cold).

On the region's optimized database (built if missing, in a subprocess). Prints the milliseconds
of each run, the medians and the ratio entry / global (issue 19: within 2x at Stockholm 1.0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.engines import duckdb_engine
from brygga.records import optimize
from brygga.records.store import Region

INDEX = date(2020, 12, 31)
RULES = {
    "demographics": {"age": {"min": 40, "max": 75}},
    "include": [{"drug": {"codes": ["A10BA02"], "within": {"days_after": 90}}}],
    "exclude": [{"drug": {"codes": ["A10"], "within": {"days_before": 3650, "days_after": -1}}}],
}
GLOBAL = {"name": "global", "index_date": INDEX.isoformat(), **RULES}
GLOBAL["include"] = [{"condition": {"codes": ["E11"]}}, *RULES["include"]]
ENTRY = {
    "name": "entry",
    "entry": {
        "event": {"condition": {"codes": ["E11"]}},
        "period": {"from": "2015-01-01", "to": INDEX.isoformat()},
    },
    **RULES,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--region", type=Path, required=True)
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.region / "manifest.json").is_file():
        if not args.generate:
            parser.error(f"{args.region} is not a region; pass --generate to create it")
        started = time.perf_counter()
        subprocess.run(
            [
                *(sys.executable, "-m", "brygga.cli", "synth", "--region", "stockholm"),
                *("--scale", str(args.scale), "--seed", "1", "--out", str(args.region), "--quiet"),
            ],
            check=True,
        )
        print(f"generated in {time.perf_counter() - started:.0f} s")
    region = Region.open(args.region)
    if optimize.find(region.path) is None:
        subprocess.run(
            [sys.executable, "-m", "brygga.cli", "optimize", str(region.path), "--json"],
            check=True,
            capture_output=True,
        )
    engine = duckdb_engine(region)
    people = region.row_counts.get("person", 0)
    print(f"region {region.name}: {people:,} people; load {os.getloadavg()[0]:.1f}")
    global_q, entry_q = parse_criteria(GLOBAL), parse_criteria(ENTRY)
    engine.population(INDEX)  # built once, as on a running server

    def run(criteria, drop: bool) -> tuple[float, int]:
        if drop:
            engine.kept.drop_bitmaps()
        start = time.perf_counter()
        evaluation = engine.evaluate(criteria, INDEX)
        return (time.perf_counter() - start) * 1000, evaluation.count

    # The first question at an index date also builds that date's population.
    engine.kept.populations.clear()
    engine.kept.drop_bitmaps()
    first, _ = run(global_q, drop=True)
    print(f"global, first question at its index date (population built): {first:.0f} ms")
    figures = {}
    for name, criteria in (("global", global_q), ("entry", entry_q)):
        cold, n = run(criteria, drop=True)
        warm = [run(criteria, drop=False)[0] for _ in range(args.repeat)]
        # The entry question's plain SQL is cached after the first run; its query is not.
        figures[name] = (cold, statistics.median(warm), n)
        print(
            f"{name:6s}: {n:,} people; cold {cold:.0f} ms; warm median "
            f"{statistics.median(warm):.0f} ms ({', '.join(f'{w:.0f}' for w in warm)})"
        )
    print(
        f"entry / global: cold {figures['entry'][0] / figures['global'][0]:.2f}x, "
        f"warm {figures['entry'][1] / max(figures['global'][1], 0.5):.0f}x; "
        f"entry cold / global first at its date {figures['entry'][0] / first:.2f}x; "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
