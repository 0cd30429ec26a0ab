"""Each person's own index date (``entry``) against one index date for everyone.

    .venv/bin/python bench/criteria_entry.py --region bench/data/stockholm-0.1 --generate --scale 0.1

Two questions with the same demographics and rules (docs/criteria.md): incident type 2
diabetes started on metformin, without an earlier diabetes drug, aged 40-75.

* **global**: ``index_date`` 2020-12-31, rules relative to it (with "E11 before it" as a rule);
* **entry**: ``entry`` with the first E11 in 2015-2020, the same rules relative to each
  person's entry date.

Both on the DuckDB engine over the region's optimized database, both kept the same way
(``cohort/bitmaps.py``, ``cohort/_entrykeep.py``): a population per index date or per entry
definition, a bitmap per rule. Bitmaps are not written to or read from disk here (a cold run
computes its rules). For each question:

* **first**: nothing kept (its population built too: at the index date, or the entry dates);
* **cold**: the population kept, the rule bitmaps dropped (median of ``--repeat`` runs);
* **warm**: everything kept (median of ``--repeat`` runs).

Prints the milliseconds (wall and CPU) of each and the ratios entry / global (issue 19: within
2x at Stockholm 1.0), with the load average at the start and the end; and, for comparison, the
entry question through the plain plan (one query, nothing kept: how the engine answered it
before), checked to give the same answer.
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
from brygga.cohort.engines import IbisEngine, duckdb_engine
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
    engine.kept.stored = None  # computed, not read from disk: cold means cold for both
    people = region.row_counts.get("person", 0)
    print(f"region {region.name}: {people:,} people; load {os.getloadavg()[0]:.1f}")
    questions = {"global": parse_criteria(GLOBAL), "entry": parse_criteria(ENTRY)}
    # The connection opened and Ibis' compiler loaded, by a rule at another date and an entry
    # in another period (the code arrays answer the rule without DuckDB; the entries need
    # it): neither question pays for them.
    warmup = {"index_date": "2000-01-01", "include": [{"condition": {"codes": ["I10"]}}]}
    engine.persons(parse_criteria(warmup), date(2000, 1, 1))
    other = {
        "event": {"condition": {"codes": ["I10"]}},
        "period": {"from": "2000-01-01", "to": "2000-12-31"},
    }
    engine.persons(parse_criteria({"entry": other, "include": warmup["include"]}), INDEX)

    def run(name: str, *, populations: bool, bitmaps: bool) -> tuple[float, float, int]:
        """(wall ms, CPU ms, count) of one question; dropping what is asked first."""
        if populations:
            engine.kept.populations.clear()
        if bitmaps:
            engine.kept.drop_bitmaps()
        wall, cpu = time.perf_counter(), time.process_time()
        evaluation = engine.evaluate(questions[name], INDEX)
        return (
            (time.perf_counter() - wall) * 1000,
            (time.process_time() - cpu) * 1000,
            evaluation.count,
        )

    figures: dict[tuple[str, str], tuple[float, float]] = {}
    counts = {}
    for name in questions:
        wall, cpu, counts[name] = run(name, populations=True, bitmaps=True)
        figures[name, "first"] = (wall, cpu)
    # Cold and warm runs alternate between the questions, so that a change of the machine's
    # load falls on both.
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for name in questions:
            runs.setdefault((name, "cold"), []).append(
                run(name, populations=False, bitmaps=True)[:2]
            )
            runs.setdefault((name, "warm"), []).append(
                run(name, populations=False, bitmaps=False)[:2]
            )
    for key, values in runs.items():
        figures[key] = (
            statistics.median(v[0] for v in values),
            statistics.median(v[1] for v in values),
        )
    for name in questions:
        print(
            f"{name:6s}: {counts[name]:,} people; "
            + "; ".join(
                f"{kind} {figures[name, kind][0]:.1f} ms (CPU {figures[name, kind][1]:.1f})"
                for kind in ("first", "cold", "warm")
            )
        )
    # For comparison, the plain plan (the population and every rule joined to the entry dates
    # in one query, nothing kept): how the DuckDB engine answered entry questions before.
    plain = []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        answer = IbisEngine.evaluate(engine, questions["entry"], INDEX)
        plain.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        assert answer == engine.evaluate(questions["entry"], INDEX), "the two plans disagree"
    print(
        f"entry, plain plan: first {plain[0][0]:.1f} ms (CPU {plain[0][1]:.1f}); again "
        f"{statistics.median(w for w, _ in plain[1:] or plain):.1f} ms "
        f"(CPU {statistics.median(c for _, c in plain[1:] or plain):.1f})"
    )
    print(
        "entry / global: "
        + ", ".join(
            f"{kind} {figures['entry', kind][0] / max(figures['global', kind][0], 0.05):.2f}x"
            for kind in ("first", "cold", "warm")
        )
        + "; CPU "
        + ", ".join(
            f"{kind} {figures['entry', kind][1] / max(figures['global', kind][1], 0.05):.2f}x"
            for kind in ("first", "cold", "warm")
        )
        + f"; load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
