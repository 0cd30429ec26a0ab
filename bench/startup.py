"""Start-up of a ``brygga`` process (issue 18): cached asks, ``--help``, one process each.

    python bench/startup.py --region bench/data/sthlm-01 [--criteria FILE] [--repeat 8]
        [--against /path/to/another/checkout/src] [--json FILE]

A *cached ask* is ``brygga feasibility --json --raw`` on a question whose rules an earlier
process computed (one warm-up ask per source tree keeps them on disk first): what a new process
pays is then mostly its own start-up. Per ask: wall time, the process's CPU (user + system:
what the wall time approaches on an idle machine) and the engine's ``elapsed_ms``; the same for
``brygga --help`` and ``brygga feasibility --help``. With ``--against`` the same runs are made
with another source tree (an older checkout's ``src``), **alternating** ask by ask, so both
see the same load; compare the two within one run. Prints p50s and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def run(src: Path, home: Path, args: list[str], bytecode: bool = True) -> tuple[float, float, str]:
    """One ``brygga`` process on the sources in ``src``: wall ms, CPU ms, stdout. With
    ``bytecode`` the modules' compiled bytecode is kept under ``home`` and reused, as an
    installed Brygga's is (``feasibility.child_env``)."""
    env = dict(os.environ, PYTHONPATH=str(src), BRYGGA_DATA_DIR=str(home))
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(home / "bytecode")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "brygga.cli", *args], env=env, capture_output=True, text=True
    )
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"brygga {' '.join(args)} failed ({src}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--region", type=Path, required=True, help="an optimized region")
    parser.add_argument("--criteria", type=Path, default=HERE / "criteria" / "ckd.yaml")
    parser.add_argument("--repeat", type=int, default=8, help="processes per measurement")
    parser.add_argument("--against", type=Path, help="another source tree, alternated")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile Brygga in every process (inherit)"
    )
    args = parser.parse_args(argv)
    bytecode = not args.no_bytecode
    trees = {"this": SRC} | ({"against": args.against.resolve()} if args.against else {})
    home = Path(tempfile.mkdtemp(prefix="brygga-startup-"))
    ask = ["feasibility", str(args.criteria), "--region", str(args.region), "--json", "--raw"]
    ask += ["--index-date", "2026-01-01"]
    commands = {"cached ask": ask, "--help": ["--help"], "feasibility --help": [
        "feasibility", "--help"]}  # fmt: skip
    for src in trees.values():
        run(src, home, ask, bytecode)  # computes and keeps the rules (and migrates the database)
        run(src, home, ["--help"], bytecode)  # and compiles what --help imports
    load_start = os.getloadavg()[0]
    figures: dict[str, dict[str, dict[str, list[float]]]] = {
        k: {c: {"wall": [], "cpu": [], "engine": []} for c in commands} for k in trees
    }
    for i in range(args.repeat):
        order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
        for command, command_args in commands.items():
            for name, src in order:
                wall, cpu, stdout = run(src, home, command_args, bytecode)
                f = figures[name][command]
                f["wall"].append(wall)
                f["cpu"].append(cpu)
                if command == "cached ask":
                    f["engine"].append(float(json.loads(stdout)["elapsed_ms"]))
    report: dict[str, object] = {
        "region": str(args.region),
        "criteria": args.criteria.name,
        "repeat": args.repeat,
        "trees": {k: str(v) for k, v in trees.items()},
        "load": f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
    }
    for name in trees:
        report[name] = {
            command: {k: round(statistics.median(v), 1) for k, v in f.items() if v}
            for command, f in figures[name].items()
        }
        for command, f in report[name].items():  # type: ignore[union-attr]
            engine = f" engine {f['engine']:.0f} ms" if "engine" in f else ""
            print(
                f"{name:8} {command:20} p50 wall {f['wall']:6.0f} ms  cpu {f['cpu']:6.0f} ms{engine}"
            )
    print(f"{os.cpu_count()} cores, load average {report['load']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
