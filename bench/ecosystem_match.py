"""Benchmark: needs -> offerings over a directory of 1,000 entries.

    .venv/bin/python bench/ecosystem_match.py [--entries 1000] [--repeat 30] [--seed 1]

Builds a directory of ``--entries`` published profiles in a fresh SQLite database: the
packaged seed (72 real entries) plus generated ones whose names, services and descriptions
are drawn, in Swedish and English, from the same vocabulary (the synonym list and the areas),
so they compete with the real entries for every need. Then ranks each need of the test set
(tests/data/ecosystem_needs.yaml) ``--repeat`` times through ``Ecosystem.match`` (what the CLI
and the web call: the directory-version check in the database, the ranking, the reasons) and
prints the latency percentiles (wall and the calling thread's CPU time), and the test set's top-3 hits, top-1 hits and mean reciprocal
rank on this larger directory. The first call (which builds the index) is timed apart.

Target (issue 15): p95 of match <= 50 ms over 1,000 entries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from brygga.db import upgrade  # noqa: E402
from brygga.documents import read_file  # noqa: E402
from brygga.ecosystem.directory import PACKAGED_SEED  # noqa: E402
from brygga.ecosystem.match import NeedDocument  # noqa: E402
from brygga.ecosystem.profiles import (  # noqa: E402
    REGIONS,
    SUPPORT_KINDS,
    TECHNOLOGY_AREAS,
    THERAPY_AREAS,
)
from brygga.ecosystem.service import Ecosystem  # noqa: E402

NEEDS = ROOT / "tests" / "data" / "ecosystem_needs.yaml"
SYNONYMS = ROOT / "src" / "brygga" / "ecosystem" / "synonyms.yaml"
TYPES = ("actor", "infrastructure", "testbed", "support", "programme")
FILLER_SV = [
    "stöd",
    "för",
    "företag",
    "och",
    "forskare",
    "inom",
    "life",
    "science",
    "i",
    "regionen",
    "med",
    "erfarenhet",
    "av",
    "samarbete",
]
FILLER_EN = ["support", "for", "companies", "and", "researchers", "in", "life", "science", "in", "the", "region", "with", "experience", "of", "collaboration"]  # fmt: skip


def generated(n: int, rng: random.Random) -> list[dict]:
    concepts = read_file(SYNONYMS, "synonyms").data["concepts"]
    phrases = [p for group in concepts.values() for p in group]
    out = []
    for i in range(n):
        words = rng.sample(phrases, 6)
        name = f"{words[0].capitalize()} {i}"
        sv = " ".join(rng.sample(FILLER_SV, 8) + words[1:4])
        en = " ".join(rng.sample(FILLER_EN, 8) + words[3:6])
        low = rng.randint(1, 8)
        out.append({
            "id": f"gen-{i}",
            "type": rng.choice(TYPES),
            "name": {"sv": name, "en": name},
            "description": {"sv": sv.capitalize() + ".", "en": en.capitalize() + "."},
            "services": {"sv": words[1:3], "en": words[4:6]},
            "support_kinds": rng.sample(SUPPORT_KINDS, 2),
            "languages": ["sv", "en"],
            "trl": {"min": low, "max": rng.randint(low, 9)},
            "therapy_areas": rng.sample(THERAPY_AREAS, 2),
            "technology_areas": rng.sample(TECHNOLOGY_AREAS, 2),
            "sme_eligible": rng.random() < 0.5,
            "region": rng.choice(REGIONS),
            "contact_role": {"sv": "Samordnare", "en": "Coordinator"},
            "source": {"document": "bench/ecosystem_match.py", "section": "generated"},
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seed = read_file(PACKAGED_SEED, "directory").data["entries"]
    entries = seed + generated(max(0, args.entries - len(seed)), rng)
    cases = [
        (NeedDocument.model_validate(c["need"]), c["top3"])
        for c in read_file(NEEDS, "needs").data["needs"]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRYGGA_DATA_DIR"] = tmp
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        path = Path(tmp) / "directory.yaml"
        path.write_text(yaml.safe_dump({"entries": entries}, allow_unicode=True))
        eco = Ecosystem(url)
        t0 = time.perf_counter()
        eco.import_file(path, actor="bench", reviewer="bench")
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        eco.match(cases[0][0])
        first_ms = (time.perf_counter() - t0) * 1000
        times, cpu, top3, top1, rr = [], [], 0, 0, []
        for need, expected in cases:
            ranked = [r["id"] for r in eco.match(need, limit=50)]
            top3 += set(expected) <= set(ranked[:3])
            top1 += ranked[:1] == expected[:1] or (ranked[:1] and ranked[0] in expected)
            rank = min((ranked.index(e) + 1 for e in expected if e in ranked), default=None)
            rr.append(1 / rank if rank else 0.0)
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.thread_time()
                eco.match(need, limit=10)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
    times.sort()
    cpu.sort()
    result = {
        "entries": len(entries),
        "needs": len(cases),
        "calls": len(times),
        "import_s": round(import_s, 2),
        "first_match_ms (builds the index)": round(first_ms, 1),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "max_ms": round(times[-1], 2),
        # CPU time of the calling thread: what a call costs when the machine is busy with
        # other work (wall time then includes waiting for a core).
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "cpu_p95_ms": round(cpu[int(0.95 * (len(cpu) - 1))], 2),
        "top3_hits": f"{top3}/{len(cases)}",
        "top1_hits": f"{top1}/{len(cases)}",
        "mrr": round(statistics.mean(rr), 3),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
