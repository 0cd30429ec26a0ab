"""Feasibility benchmark: the criteria suite in bench/criteria/ on a region, several times each.

    .venv/bin/python bench/feasibility.py --region bench/data/stockholm-1 [--repeat 7] [--spark]

With ``--generate`` and no region folder present, the region is generated first with
``brygga synth --region stockholm --scale SCALE --seed 1``.

Three runs over the same criteria, in one process:

1. **brygga**: DuckDB on the region's optimized database (``brygga optimize``, built in a
   subprocess if missing; ``--layout parquet`` to run on the Parquet files instead), one
   engine (``cohort/bitmaps.py``). Per criteria: a **first run** (cold) with the engine's kept
   rule bitmaps dropped just before it, so every rule's person set is computed by DuckDB (the
   population at the index date, built once before the suite, is kept, as on a running
   server); then ``--repeat`` **warm** runs, which reuse the kept bitmaps. Both are reported.
2. **baseline**: the naive approach on the region's Parquet files: one COUNT query per attrition
   step (re-evaluating every rule each time) plus one GROUP BY per breakdown, from the same rule
   expressions, on a fresh connection per criteria.
3. **spark** (``--spark``): the brygga plan on Spark local mode (no target; same answers).

With ``--cold``, instead: every question is asked ``--cold-repeat`` times through
``brygga feasibility --json --raw``, **a new process each time** (wall time of the process, and the
engine's own ``elapsed_ms``), after the rule bitmaps kept on disk by earlier processes are
removed (``--keep-bitmaps`` keeps them); the first ask of a question then computes its rules
(unless another question shares them) and later asks read them. The plain-SQL baseline
(2., one fresh connection per question) runs in the same invocation, and the startup of
``brygga --help`` is timed too. The processes keep their compiled bytecode in a temporary
folder, as an installed Brygga does (``--no-bytecode``: they inherit this shell's
``PYTHONDONTWRITEBYTECODE`` and compile Brygga's modules every time).

Counts must agree between the three runs; the script stops if they do not. Reports p50/p95
latency per criteria and overall, peak memory (RSS of this process, before Spark starts), and the
speed-up over the baseline (``--baseline-repeat 0`` skips it). ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from brygga.cohort.bitmaps import count
from brygga.cohort.compile import compile_criteria
from brygga.cohort.criteria import Criteria, load_criteria
from brygga.cohort.engine import Engine
from brygga.cohort.engines import duckdb_engine, quiet_duckdb, spark_engine
from brygga.config import get_settings
from brygga.platform import Brygga
from brygga.records import optimize
from brygga.records.store import Region

HERE = Path(__file__).resolve().parent
INDEX_DATE = date(2026, 1, 1)


def timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def brygga_run(engine: Engine, criteria: Criteria) -> list[int]:
    return [n for _, n in engine.evaluate(criteria, INDEX_DATE).steps]


def baseline_run(region: Region, criteria: Criteria) -> list[int]:
    """Naive: a new connection, then one query per attrition step and per breakdown."""
    engine = duckdb_engine(region, optimized=False)
    compiled = compile_criteria(criteria, engine.tables, INDEX_DATE)
    flags = compiled.flags
    counts = []
    with quiet_duckdb():
        for condition in compiled.conditions:
            counts.append(int(flags.filter(condition).count().execute()))
        eligible = compiled.eligible
        for key in ("sex", "age_band", "municipality"):
            eligible.group_by(key).aggregate(n=eligible.count()).execute()
    return counts


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarize(times: dict[str, list[float]]) -> dict[str, Any]:
    every = [t for ts in times.values() for t in ts]
    return {
        "per_criteria": {
            k: {"p50_ms": round(statistics.median(v), 1), "p95_ms": round(percentile(v, 95), 1)}
            for k, v in times.items()
        },
        "overall": {
            "p50_ms": round(statistics.median(every), 1),
            "p95_ms": round(percentile(every, 95), 1),
        },
    }


def child_env(bytecode: Path | None) -> dict[str, str]:
    """The environment of a measured ``brygga`` process. With ``bytecode`` (a folder), its
    modules' compiled bytecode is kept there and reused by later processes, as an installed
    Brygga's is (pip compiles a package when it installs it); without, it inherits this
    shell's setting, and with ``PYTHONDONTWRITEBYTECODE=1`` every new process compiles
    Brygga's modules from source again: 0.1-0.2 s of its CPU (measured, issue 18)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env


def cold_ask(
    region: Path, path: Path, home: Path, bytecode: Path | None = None
) -> tuple[float, dict[str, Any]]:
    """One question in a new process (``brygga feasibility --json``): wall ms and its answer
    (with ``cpu_ms``: the process's user + system time, what its wall time approaches on an
    idle machine)."""
    env = child_env(bytecode) | {"BRYGGA_DATA_DIR": str(home)}
    command = [sys.executable, "-m", "brygga.cli", "feasibility", str(path), "--region"]
    command += [str(region), "--raw", "--json", "--index-date", INDEX_DATE.isoformat()]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{path.name}: brygga feasibility failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, json.loads(done.stdout) | {"cpu_ms": cpu}


def cold_main(args: argparse.Namespace, region: Region, load_start: float) -> int:
    """``--cold``: a new process per question, beside the plain-SQL baseline."""
    import shutil
    import tempfile

    paths = sorted(args.criteria.glob("*.yaml"))[: args.questions]
    database = optimize.find(region.path)
    if database is None:
        raise SystemExit("--cold needs the optimized database (brygga optimize)")
    bitmaps = optimize.arrays_path(database) / "bitmaps"

    def forget() -> None:
        """Drop what earlier processes kept: rule bitmaps and unknown-code answers."""
        shutil.rmtree(bitmaps, ignore_errors=True)
        for kept in optimize.arrays_path(database).glob("codes-*.json"):
            kept.unlink()

    if not args.keep_bitmaps:
        forget()
    people = region.row_counts.get("person", 0)
    print(f"region {region.name}: {people:,} people; {len(paths)} questions; index {INDEX_DATE}")
    home = Path(tempfile.mkdtemp(prefix="brygga-bench-"))
    bytecode = None if args.no_bytecode else home / "bytecode"
    print("bytecode: " + ("compiled by every process" if bytecode is None else f"kept in {home}"))
    startup: dict[str, list[float]] = {}
    startup_cpu: dict[str, list[float]] = {}
    for name, command in (
        ("--help", ["--help"]),
        ("feasibility --help", ["feasibility", "--help"]),
    ):
        startup[name], startup_cpu[name] = [], []
        env = child_env(bytecode)
        subprocess.run([sys.executable, "-m", "brygga.cli", *command], capture_output=True, env=env)
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "brygga.cli", *command], capture_output=True, env=env
            )
            startup[name].append((time.perf_counter() - start) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            startup_cpu[name].append(
                (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
            )
        print(
            f"brygga {name}: wall {' '.join(f'{t:.0f}' for t in startup[name])} ms, cpu "
            f"{' '.join(f'{t:.0f}' for t in startup_cpu[name])} ms"
        )
    # The operational database is created (migrated) once, before anything is measured.
    cold_ask(region.path, HERE / "criteria" / paths[0].name, home, bytecode)
    if not args.keep_bitmaps:
        forget()
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    engine_ms: dict[str, list[float]] = {}
    baseline: dict[str, list[float]] = {}
    for path in paths:
        criteria = load_criteria(path)
        walls[path.stem], engine_ms[path.stem], cpus[path.stem] = [], [], []
        counts = None
        for _ in range(args.cold_repeat):
            wall, answer = cold_ask(region.path, path, home, bytecode)
            walls[path.stem].append(wall)
            cpus[path.stem].append(answer["cpu_ms"])
            engine_ms[path.stem].append(float(answer["elapsed_ms"]))
            counts = [a["count"]["value"] for a in answer["attrition"]]
        baseline[path.stem], naive = timed(
            lambda c=criteria: baseline_run(region, c), args.baseline_repeat
        )
        if args.baseline_repeat and naive != counts:
            raise SystemExit(f"{path.stem}: baseline {naive} != brygga {counts}")
        shown = (
            f"  baseline p50 {statistics.median(baseline[path.stem]):7.1f} ms"
            if baseline[path.stem]
            else ""
        )
        print(
            f"  {path.stem:28} {counts[-1]:>9,} eligible  engine "
            f"{' '.join(f'{t:6.0f}' for t in engine_ms[path.stem])} ms  wall "
            f"{' '.join(f'{t:6.0f}' for t in walls[path.stem])} ms{shown}",
            flush=True,
        )
    first = {k: v[:1] for k, v in engine_ms.items()}
    later = {k: v[1:] for k, v in engine_ms.items() if len(v) > 1}
    report = {
        "region": region.name,
        "people": people,
        "index_date": INDEX_DATE.isoformat(),
        "questions": len(paths),
        "asks_per_question": args.cold_repeat,
        "brygga_help_ms": {k: [round(t) for t in v] for k, v in startup.items()},
        "brygga_help_cpu_ms": {k: [round(t) for t in v] for k, v in startup_cpu.items()},
        "cold_engine_all": summarize(engine_ms)["overall"],
        "cold_engine_first_ask": summarize(first)["overall"],
        "cold_engine_later_asks": summarize(later)["overall"] if later else None,
        "cold_wall_all": summarize(walls)["overall"],
        "cold_wall_first_ask": summarize({k: v[:1] for k, v in walls.items()})["overall"],
        "cold_wall_later_asks": summarize({k: v[1:] for k, v in walls.items() if len(v) > 1})[
            "overall"
        ]
        if later
        else None,
        "cold_cpu_all": summarize(cpus)["overall"],
        "cold_cpu_first_ask": summarize({k: v[:1] for k, v in cpus.items()})["overall"],
        "cold_cpu_later_asks": summarize({k: v[1:] for k, v in cpus.items() if len(v) > 1})[
            "overall"
        ]
        if later
        else None,
        # ``--baseline-repeat 0``: no baseline (at scale 1.0 it is most of the run's time).
        "baseline_duckdb_parquet": summarize(baseline)["overall"] if args.baseline_repeat else None,
        "bytecode": "compiled by every process" if bytecode is None else "kept",
        "machine": f"{os.cpu_count()} cores, load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end",
    }
    b = report["baseline_duckdb_parquet"]["p50_ms"] if args.baseline_repeat else None
    for key in ("cold_engine_all", "cold_engine_first_ask", "cold_engine_later_asks"):
        if report[key] and b is not None:
            report[key]["speedup_p50_over_baseline"] = round(b / max(report[key]["p50_ms"], 0.1), 1)
    for key, label in (
        ("cold_engine_all", "engine, every ask"),
        ("cold_engine_first_ask", "engine, first ask"),
        ("cold_engine_later_asks", "engine, later asks"),
        ("cold_wall_all", "wall, every ask"),
        ("cold_wall_first_ask", "wall, first ask"),
        ("cold_wall_later_asks", "wall, later asks"),
        ("cold_cpu_all", "process cpu, every ask"),
        ("cold_cpu_first_ask", "process cpu, first ask"),
        ("cold_cpu_later_asks", "process cpu, later asks"),
    ):
        if report[key]:
            r = report[key]
            ratio = (
                f"  ({r['speedup_p50_over_baseline']}x baseline)"
                if "speedup_p50_over_baseline" in r
                else ""
            )
            print(f"cold {label:22} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms{ratio}")
    if b is not None:
        print(
            f"baseline (plain DuckDB SQL on Parquet) p50 {b} ms  p95 "
            f"{report['baseline_duckdb_parquet']['p95_ms']} ms"
        )
    print(report["machine"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=Path, required=True)
    parser.add_argument("--generate", action="store_true", help="generate the region if missing")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB limit for the build")
    parser.add_argument(
        "--layout",
        choices=["optimized", "parquet"],
        default="optimized",
        help="brygga on the optimized database (built if missing) or on the Parquet files",
    )
    parser.add_argument("--criteria", type=Path, default=HERE / "criteria")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--spark", action="store_true", help="also run the suite on Spark")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--cold", action="store_true", help="a new process per question")
    parser.add_argument("--cold-repeat", type=int, default=3, help="asks per question (--cold)")
    parser.add_argument("--questions", type=int, default=7, help="questions (--cold)")
    parser.add_argument("--keep-bitmaps", action="store_true", help="keep bitmaps (--cold)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="--cold's processes inherit PYTHONDONTWRITEBYTECODE (compile Brygga every time)",
    )
    parser.add_argument(
        "--sql-rules",
        action="store_true",
        help="every rule through DuckDB's SQL, not the code arrays (BRYGGA_COHORT_CODE_ARRAYS)",
    )
    parser.add_argument(
        "--compare-sql",
        action="store_true",
        help="also time every criteria's first run with every rule through DuckDB's SQL",
    )
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    if args.sql_rules:  # read by the engines of this process and of --cold's processes
        os.environ["BRYGGA_COHORT_CODE_ARRAYS"] = "false"
        get_settings.cache_clear()

    if not (args.region / "manifest.json").is_file():
        if not args.generate:
            parser.error(f"{args.region} is not a region; pass --generate to create it")
        subprocess.run(
            [
                *(sys.executable, "-m", "brygga.cli", "synth", "--region", "stockholm"),
                *("--scale", str(args.scale), "--seed", "1", "--out", str(args.region), "--quiet"),
            ],
            check=True,
        )
    region = Brygga().region(args.region)  # the engine itself is built below: it is measured
    optimize_s = None
    if args.layout == "optimized" and optimize.find(region.path) is None:
        # A separate process, so that the build's memory does not count as the engine's.
        result = subprocess.run(
            [
                *(sys.executable, "-m", "brygga.cli", "optimize", str(region.path)),
                *("--memory-limit", args.memory_limit, "--json"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        optimize_s = json.loads(result.stdout)["seconds"]
    if args.cold:
        return cold_main(args, region, load_start)
    suite = {p.stem: load_criteria(p) for p in sorted(args.criteria.glob("*.yaml"))}
    people = region.row_counts.get("person", 0)
    print(f"region {region.name}: {people:,} people; {len(suite)} criteria; index {INDEX_DATE}")
    database = optimize.find(region.path) if args.layout == "optimized" else None
    if database is not None:
        size_gb = database.stat().st_size / 1e9
        how = f"built in {optimize_s:.0f} s" if optimize_s else "reused"
        print(f"optimized database {database.name}: {size_gb:.2f} GB, {how}")
    else:
        print("brygga runs on the Parquet files (no optimized database)")

    engine = duckdb_engine(region, optimized=database is not None)
    # First runs compute every rule: no bitmaps kept on disk by earlier processes are read
    # (the population still comes from the optimized database's arrays when present).
    engine.kept.stored = None
    population_ms = timed(lambda: engine.population(INDEX_DATE), 1)[0][0]
    print(
        f"population at {INDEX_DATE}: {count(engine.population(INDEX_DATE).alive):,} people, "
        f"indexed in {population_ms:.0f} ms (once per index date)"
    )
    brygga_times, baseline_times, spark_times = {}, {}, {}
    cold: dict[str, float] = {}
    cold_cpu: dict[str, float] = {}  # the process's CPU time (all threads): robust to load
    answers: dict[str, list[int]] = {}
    for key, criteria in suite.items():
        # First run: every rule's person set computed by DuckDB (nothing kept from before).
        engine.kept.drop_bitmaps()
        cpu = time.process_time()
        cold[key] = timed(lambda c=criteria: brygga_run(engine, c), 1)[0][0]
        cold_cpu[key] = (time.process_time() - cpu) * 1000
        brygga_times[key], answers[key] = timed(
            lambda c=criteria: brygga_run(engine, c), args.repeat
        )
        line = (
            f"  {key:28} {answers[key][-1]:>9,} eligible  first {cold[key]:7.1f} ms  p50 "
            f"{statistics.median(brygga_times[key]):7.1f} ms  p95 "
            f"{percentile(brygga_times[key], 95):7.1f} ms"
        )
        if args.baseline_repeat:
            baseline_times[key], naive = timed(
                lambda c=criteria: baseline_run(region, c), args.baseline_repeat
            )
            if naive != answers[key]:
                raise SystemExit(f"{key}: baseline {naive} != brygga {answers[key]}")
            line += f"  baseline p50 {statistics.median(baseline_times[key]):8.1f} ms"
        print(line, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    sql_first: dict[str, float] = {}
    sql_cpu: dict[str, float] = {}
    if args.compare_sql:  # the same first runs, every rule through DuckDB's SQL
        sql = duckdb_engine(region, optimized=database is not None, code_arrays=False)
        sql.kept.stored = None
        sql.population(INDEX_DATE)
        brygga_run(sql, next(iter(suite.values())))  # Ibis' first compile, not counted
        for key, criteria in suite.items():
            sql.kept.drop_bitmaps()
            cpu = time.process_time()
            sql_first[key], result = timed(lambda c=criteria: brygga_run(sql, c), 1)
            sql_cpu[key] = (time.process_time() - cpu) * 1000
            sql_first[key] = sql_first[key][0]
            if result != answers[key]:
                raise SystemExit(f"{key}: SQL rules {result} != code arrays {answers[key]}")
            print(f"  {key:28} first run, rules through SQL {sql_first[key]:7.1f} ms")

    if args.spark:
        spark = spark_engine(region)
        for key, criteria in suite.items():
            brygga_run(spark, criteria)
            spark_times[key], result = timed(lambda c=criteria: brygga_run(spark, c), 2)
            if result != answers[key]:
                raise SystemExit(f"{key}: spark {result} != duckdb {answers[key]}")
            print(f"  spark {key:26} p50 {statistics.median(spark_times[key]):8.1f} ms")

    report = {
        "region": region.name,
        "people": people,
        "index_date": INDEX_DATE.isoformat(),
        "criteria": len(suite),
        "brygga_duckdb": summarize(brygga_times),
        "brygga_duckdb_first_run": summarize({k: [v] for k, v in cold.items()})["overall"],
        "brygga_duckdb_all_runs": summarize({k: [cold[k], *brygga_times[k]] for k in brygga_times})[
            "overall"
        ],
        "population_ms": round(population_ms, 1),
        "baseline_duckdb": summarize(baseline_times) if baseline_times else None,
        "speedup_p50": round(
            statistics.median([t for v in baseline_times.values() for t in v])
            / statistics.median([t for v in brygga_times.values() for t in v]),
            1,
        )
        if baseline_times
        else None,
        "layout": args.layout,
        "machine": f"{os.cpu_count()} cores, load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end",
        "peak_rss_mb": round(peak_mb),
        "optimize_seconds": round(optimize_s, 1) if optimize_s else None,
        "optimized_bytes": database.stat().st_size if database else None,
        "spark_local": summarize(spark_times) if spark_times else None,
        "counts_agree": True,
        "code_arrays": engine.codes is not None,
        "first_run_cpu": summarize({k: [v] for k, v in cold_cpu.items()})["overall"],
        "first_run_sql_rules": summarize({k: [v] for k, v in sql_first.items()})["overall"]
        if sql_first
        else None,
        "first_run_sql_rules_cpu": summarize({k: [v] for k, v in sql_cpu.items()})["overall"]
        if sql_cpu
        else None,
    }
    o = report["brygga_duckdb"]["overall"]
    line = f"brygga warm p50 {o['p50_ms']} ms  p95 {o['p95_ms']} ms | peak RSS {peak_mb:.0f} MB"
    if baseline_times:
        b = report["baseline_duckdb"]["overall"]
        line += f" | baseline p50 {b['p50_ms']} ms p95 {b['p95_ms']} ms"
        line += f" | speed-up {report['speedup_p50']}x"
    print(line)
    f = report["brygga_duckdb_first_run"]
    print(f"brygga first run (cold: rule sets computed) p50 {f['p50_ms']} ms  p95 {f['p95_ms']} ms")
    if sql_first:
        q = report["first_run_sql_rules"]
        ratio = q["p50_ms"] / f["p50_ms"]
        print(
            f"first runs with every rule through SQL p50 {q['p50_ms']} ms  p95 {q['p95_ms']} ms "
            f"({ratio:.1f}x the code arrays' p50, same run)"
        )
        c, qc = report["first_run_cpu"], report["first_run_sql_rules_cpu"]
        print(
            f"first runs, process CPU: code arrays p50 {c['p50_ms']} ms  p95 {c['p95_ms']} ms; "
            f"rules through SQL p50 {qc['p50_ms']} ms  p95 {qc['p95_ms']} ms "
            f"({qc['p50_ms'] / c['p50_ms']:.1f}x)"
        )
    a = report["brygga_duckdb_all_runs"]
    print(f"brygga all runs (first + repeats) p50 {a['p50_ms']} ms  p95 {a['p95_ms']} ms")
    if baseline_times:
        cold_p50 = statistics.median(cold.values())
        ratio = report["baseline_duckdb"]["overall"]["p50_ms"] / cold_p50
        report["speedup_p50_first_run"] = round(ratio, 1)
        print(f"speed-up of first runs over the baseline (p50 / p50): {ratio:.1f}x")
    if spark_times:
        s = report["spark_local"]["overall"]
        print(f"spark local p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms (same counts)")
    print(report["machine"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
