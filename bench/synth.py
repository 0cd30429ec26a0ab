"""Benchmark: generate a whole synthetic region; report wall time, rows and peak memory.

    .venv/bin/python bench/synth.py                      # Stockholm at scale 1.0 (the target)
    .venv/bin/python bench/synth.py --scale 0.1 --region skane

Targets (issue 2): Stockholm at scale 1.0 (about 2.45 million people, 30 years) in at most
10 minutes on 2 cores, peak memory at most 6 GB. The region is written to bench/data/ (ignored
by git) and reused by the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brygga.synth import generate
from memory import PeakMemory

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--region", default="stockholm")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or HERE / "data" / f"{args.region}-{args.scale:g}"
    started = time.perf_counter()
    with PeakMemory() as mem:
        result = generate(
            region=args.region,
            out=out,
            scale=args.scale,
            seed=args.seed,
            workers=args.workers or None,
            force=True,
            progress=True,
        )
    elapsed = time.perf_counter() - started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_s = sum(u.ru_utime + u.ru_stime for u in usage)
    rows = result.region.row_counts
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    figures = {
        "region": args.region,
        "scale": args.scale,
        "people": rows["person"],
        "rows_total": sum(rows.values()),
        "rows": rows,
        "elapsed_s": round(elapsed, 1),
        "rows_per_s": round(sum(rows.values()) / elapsed),
        # CPU seconds of this process and its workers: independent of other jobs on the machine.
        "cpu_s": round(cpu_s, 1),
        "load_average_1min_at_end": os.getloadavg()[0],
        "peak_memory_gb": round(mem.peak_bytes / 1e9, 2),
        "parquet_gb": round(size / 1e9, 2),
        "calibration_within": f"{sum(r.ok for r in result.calibration)}/{len(result.calibration)}",
        "cores": os.cpu_count(),
        "machine": platform.platform(),
    }
    print(json.dumps(figures, indent=2))
    if args.region == "stockholm" and args.scale == 1.0:
        ok_time = elapsed <= 600
        ok_mem = mem.peak_bytes <= 6e9
        print(f"target time <= 600 s: {'met' if ok_time else 'NOT met'} ({elapsed:.0f} s)")
        print(
            f"target peak memory <= 6 GB: {'met' if ok_mem else 'NOT met'} ({mem.peak_bytes / 1e9:.2f} GB)"
        )


if __name__ == "__main__":
    main()
