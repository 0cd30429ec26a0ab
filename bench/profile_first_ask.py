"""Where a cold process's first ask of a question goes (issue 18): one new process per
question, every rule computed (kept bitmaps neither read nor written), timed per step.

    PYTHONPATH=src .venv/bin/python bench/profile_first_ask.py REGION [QUESTION.yaml ...]

Per question: the process's imports, the engine's opening, the population on the index date,
then each leaf rule (wall ms, CPU ms, minor and major page faults), and the whole ask."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
INDEX = "2026-01-01"


def _usage() -> tuple[float, float, int, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_minflt, r.ru_majflt


def _since(before: tuple[float, float, int, int]) -> dict[str, float]:
    now = _usage()
    return {
        "wall_ms": round((now[0] - before[0]) * 1000, 1),
        "cpu_ms": round((now[1] - before[1]) * 1000, 1),
        "minflt": now[2] - before[2],
        "majflt": now[3] - before[3],
    }


def child(region: str, question: str) -> None:
    start = _usage()
    from datetime import date

    from brygga.cohort import bitmaps
    from brygga.cohort.criteria import load_criteria
    from brygga.cohort.engines import engine_for
    from brygga.records.store import Region

    steps: list[tuple[str, dict[str, float]]] = [("imports", _since(start))]
    t = _usage()
    engine = engine_for("duckdb", Region.open(region))
    criteria = load_criteria(Path(question))
    steps.append(("engine", _since(t)))
    assert isinstance(engine, bitmaps.BitmapEngine)
    if engine.kept.stored is not None:  # every rule computed, nothing left for later
        engine.kept.stored.bitmap = lambda key, nbytes: None  # type: ignore[method-assign]
        engine.kept.stored.keep = lambda key, bits: None  # type: ignore[method-assign]
    population = engine.stored.population if engine.stored is not None else None
    if population is not None:

        def timed_population(day: date) -> dict:
            t = _usage()
            found = population(day)
            steps.append(("population arrays", _since(t)))
            return found

        engine.stored.population = timed_population  # type: ignore[method-assign]
    leaf = engine._leaf_bits

    def timed_leaf(spec, index_date, size):  # type: ignore[no-untyped-def]
        t = _usage()
        found = leaf(spec, index_date, size)
        name = spec.model_dump_json(exclude_defaults=True)[:90]
        steps.append((f"{type(spec).__name__} {name}", _since(t)))
        return found

    engine._leaf_bits = timed_leaf  # type: ignore[method-assign]
    t = _usage()
    evaluation = engine.evaluate(criteria, date.fromisoformat(INDEX))
    steps.append(("evaluate (all)", _since(t)))
    steps.append(("process so far", _since(start)))
    print(json.dumps({"steps": steps, "count": evaluation.steps[-1][1]}))


def main(argv: list[str]) -> int:
    region, questions = (
        argv[0],
        argv[1:] or sorted(str(p) for p in (HERE / "criteria").glob("*.yaml"))[:7],
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for q in questions:
        done = subprocess.run(
            [sys.executable, __file__, "--child", region, q],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(done.stderr)
            return 1
        found = json.loads(done.stdout.splitlines()[-1])
        print(f"== {Path(q).stem}: {found['count']:,} eligible")
        for name, s in found["steps"]:
            print(
                f"  {s['wall_ms']:8.1f} ms wall {s['cpu_ms']:8.1f} ms cpu "
                f"{s['minflt']:7d} minflt {s['majflt']:6d} majflt  {name}"
            )
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
