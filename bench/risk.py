"""Benchmark: score a population of adults with SCORE2 / SCORE2-OP / SCORE2-Diabetes.

    .venv/bin/python bench/risk.py [--n 2000000] [--seed 1] [--risk-region moderate]
    .venv/bin/python bench/risk.py --region bench/data/stockholm-1 [--threads 2]
        [--layout auto|optimized|parquet] [--repeat 1] [--engine duckdb|spark]

Without --region the people are random but plausible arrays made here (fixed seed): this
measures the scoring itself. With --region it scores everyone alive and under observation at
the region's end date from their records (inputs.extract_inputs: latest values in the
look-back windows, then the applicable model), timing extraction and scoring apart, and prints
the C-statistic of SCORE2 for 10-year CVD events among 40-69-year-olds without prior CVD at an
index date 10 years before the region's end (target >= 0.70). Target (issue 5): all adults of
a Stockholm region at scale 1.0 (~1.9 million) in at most 10 s on 2 cores. Prints elapsed
seconds, throughput, peak memory (resource.getrusage) and the load average before and after.
--layout: the region's optimized DuckDB database (``brygga optimize``; "auto" uses it when it
exists, as every command does) or its Parquet files. --engine spark reads the Parquet files
through Spark (BRYGGA_SPARK_*) instead of DuckDB (--threads, --layout are DuckDB's).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np

from brygga.prevention.egfr import ckd_epi_2021
from brygga.prevention.scores import MODEL_KEYS, MODELS, score_population


def synthetic_adults(n: int, seed: int) -> dict[str, np.ndarray]:
    """Adults 18-100 with risk factors loosely shaped like a Swedish population."""
    rng = np.random.default_rng(seed)
    age = np.minimum(18 + rng.gamma(2.2, 14.0, n), 100).round()
    female = rng.random(n) < 0.5
    old = (age - 18) / 82
    diabetes = rng.random(n) < 0.02 + 0.15 * old
    cvd = rng.random(n) < 0.01 + 0.25 * old**2
    tc = rng.normal(5.3, 1.0, n).clip(2.5, 11)
    creatinine = rng.lognormal(np.log(np.where(female, 68, 85)), 0.18, n) * (1 + 0.4 * old)
    return {
        "age": age,
        "sex": np.where(female, "female", "male"),
        "smoker": rng.random(n) < 0.11,
        "sbp": rng.normal(118 + 0.5 * (age - 18), 16, n).clip(85, 230),
        "total_chol": tc,
        "hdl": np.minimum(rng.normal(np.where(female, 1.6, 1.3), 0.35, n).clip(0.5, 3.5), tc - 0.5),
        "diabetes": diabetes,
        "established_cvd": cvd,
        "age_at_diagnosis": np.floor(age - rng.uniform(0, 0.5, n) * (age - 25).clip(0)),
        "hba1c": np.where(diabetes, rng.normal(55, 12, n), rng.normal(36, 4, n)).clip(20, 150),
        "creatinine": creatinine.clip(30, 1500),
    }


def bench_region(
    path: str, threads: int, risk_region: str, layout: str, repeat: int, engine_name: str
) -> None:
    from brygga.cohort.engines import duckdb_engine, query_engine
    from brygga.platform import Brygga
    from brygga.prevention.inputs import extract_inputs
    from brygga.prevention.stratify import population_risk
    from brygga.prevention.validation import score2_c_statistic
    from brygga.records import optimize

    # The region comes from the platform like everywhere; the engine is built here, with the
    # benchmark's thread count and layout, because it is what is being measured.
    region = Brygga().region(path)
    database = optimize.find(region.path)
    if layout == "optimized" and database is None:
        raise SystemExit(f"no optimized database in {path}: run brygga optimize {path} first")
    t_open = time.perf_counter()
    if engine_name == "duckdb":
        engine = duckdb_engine(region, optimized=layout != "parquet", threads=threads)
    else:
        engine = query_engine(engine_name, region)
    opened = time.perf_counter() - t_open
    optimized = engine.table("population") is not None
    used = f"optimized database {database.name}" if optimized else "Parquet"
    print(f"engine: {engine_name}; layout: {used}; load average before: {_load()}")
    print(f"open the engine: {opened:.2f} s")
    runs = []
    for run in range(repeat):
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        cpu0 = _cpu()
        inputs = extract_inputs(region, engine=engine, timings=timings)
        t1 = time.perf_counter()
        cpu = _cpu() - cpu0
        pr = population_risk(inputs, risk_region=risk_region)
        t2 = time.perf_counter()
        runs.append(t2 - t0)
        label = "first run" if run == 0 else f"run {run + 1}"
        print(
            f"{label}: extract inputs ({engine_name}) {t1 - t0:.2f} s, "
            f"scoring {t2 - t1:.2f} s, total {t2 - t0:.2f} s"
        )
        print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        print(f"  extraction CPU time (user + system, all threads): {cpu:.2f} s")
    adults = int((inputs["age"] >= 18).sum())
    scored = int((pr.category >= 0).sum())
    print(f"region: {region.name} ({region.path}), index date {inputs.index_date}")
    print(f"people alive and observed: {len(inputs):,}; adults: {adults:,}")
    print(
        f"a model applies: {int((inputs.model >= 0).sum()):,}; scored (complete inputs): {scored:,}"
    )
    print(f"missing inputs: {inputs.missing_counts()}")
    first = opened + runs[0]
    verdict = "met" if first <= 10 else "NOT met"
    print(
        f"all adults, connection + extraction + scoring, first run: {first:.2f} s "
        f"(target <= 10 s: {verdict})"
    )
    if repeat > 1:
        print(f"later runs (warm connection), median: {statistics.median(runs[1:]):.2f} s")
    t3 = time.perf_counter()
    c = score2_c_statistic(region, engine=engine)
    t4 = time.perf_counter()
    print(
        f"SCORE2 C-statistic, 10-year CVD events, 40-69 without prior CVD, index "
        f"{c.index_date} to {c.follow_up_end}: {c.c:.3f} ({c.people:,} people with complete "
        f"inputs, {c.events:,} events, {c.excluded_missing:,} left out for missing inputs; "
        f"{t4 - t3:.1f} s) target >= 0.70: {'met' if c.c >= 0.70 else 'NOT met'}"
    )
    print(
        f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    print(f"load average after: {_load()}")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000_000, help="number of adults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--risk-region", default="moderate")
    parser.add_argument("--region", help="score a region folder from its records instead")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (--region)")
    parser.add_argument("--repeat", type=int, default=1, help="extraction runs (--region)")
    parser.add_argument(
        "--layout", choices=("auto", "optimized", "parquet"), default="auto", help="(--region)"
    )
    parser.add_argument(
        "--engine", choices=("duckdb", "spark"), default="duckdb", help="(--region)"
    )
    args = parser.parse_args()
    if args.region:
        bench_region(
            args.region, args.threads, args.risk_region, args.layout, args.repeat, args.engine
        )
        return

    t0 = time.perf_counter()
    people = synthetic_adults(args.n, args.seed)
    t1 = time.perf_counter()
    egfr = ckd_epi_2021(people.pop("creatinine"), people["age"], people["sex"], on_invalid="nan")
    scores = score_population(**people, egfr=egfr.egfr, risk_region=args.risk_region)
    t2 = time.perf_counter()

    elapsed = t2 - t1
    scored = int(np.isfinite(scores.risk).sum())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"adults: {args.n:,} (made in {t1 - t0:.2f} s, seed {args.seed})")
    print(f"risk region: {scores.risk_region}")
    for i, key in enumerate(MODEL_KEYS):
        rows = scores.model == i
        cats = scores.category[rows]
        shares = ", ".join(
            f"{label} {(cats == c).mean():.1%}" for c, label in enumerate(MODELS[key].categories)
        )
        print(f"  {MODELS[key].name}: {int(rows.sum()):,} people; {shares}")
    not_scored = int((scores.model < 0).sum())
    print(f"  not scored (under 40, 90+ or established CVD): {not_scored:,}")
    print(f"  invalid inputs among those a model applied to: {int((scores.invalid > 0).sum()):,}")
    print(f"eGFR + scoring: {elapsed:.2f} s for {args.n:,} adults ({scored:,} scored)")
    print(f"throughput: {args.n / elapsed:,.0f} adults/s; {scored / elapsed:,.0f} scores/s")
    print(f"peak memory (max RSS): {peak_mib:,.0f} MiB")
    estimate = elapsed * 1.9e6 / args.n
    verdict = "met" if estimate <= 10 else "NOT met"
    print(f"target, 1.9M adults in <= 10 s: {verdict} (about {estimate:.1f} s at this rate)")


if __name__ == "__main__":
    main()
