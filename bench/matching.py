"""Matching and registration benchmark on the operational database.

    .venv/bin/python bench/matching.py                          # bench/data/stockholm-1, SQLite
    .venv/bin/python bench/matching.py --region DIR --volunteers 200000 --studies 300 --seconds 60
    .venv/bin/python bench/matching.py --no-records             # self-reports only (no cohort queries)

1. **Set-up** (timed, not part of the targets): a fresh database (``--database-url``, default a
   SQLite file in a temporary folder); the identities of ``volunteers + extra`` adults sampled
   from the region's identities file (matching only ever reads registered volunteers, so the
   rest of the region's people would only slow the load); ``volunteers`` of them registered in
   bulk with profiles and consents (as ``brygga demo-seed`` does: 70 % also consent to matching
   on their records); ``studies`` approved, recruiting studies cycling through the 15 criteria of
   ``bench/criteria/``, the research areas and the region's hospitals.
2. **Matching**: one full scheduled run (``--run batched``, the default: ``matching.run``, what
   ``brygga match`` does: candidates read without a lock, invitations written in short
   transactions of about ``matching.BATCH_ROWS``; reported with the longest write transaction,
   the longest another writer can wait; ``--run single``: ``matching.match_all`` in one
   transaction after the expiry, as ``brygga match`` did before 2026-12-05) over every study and
   volunteer,
   records eligibility included (a cohort query per distinct criteria on the region, cached; the
   region's optimized database when ``brygga optimize`` built one), then invitations and one
   outbox message per invited resident (a digest) written. Target <= 30 s on 2 cores. Reported
   with its parts: reading the volunteers, records eligibility, candidates (and the rest),
   writing invitations, writing outbox messages, commit.
3. **Registration load**: ``bench/registration.py``'s load on this database: ``brygga serve
   --workers N`` in a subprocess on 127.0.0.1, load-generator processes POSTing ``/portal/join``
   for distinct, not yet registered residents at ``--rate`` requests/s (open loop; 0: closed
   loop on ``--concurrency`` connections) for ``--seconds``. Reports requests/s, p50/p99
   latency, errors, CPU, and counts the registered rows afterwards: every acknowledged (303)
   registration must be in the database. Targets >= 300 requests/s, p99 < 100 ms, none lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def sample_identities(region_path: Path, n: int, out: Path, seed: int) -> int:
    """Write ``n`` random adults (18-90 this year) of the region's identities to ``out``."""
    from brygga.records.store import Region
    from brygga.studies.seed import identities_path

    table = pq.read_table(identities_path(Region.open(region_path).path))
    year = pc.cast(pc.utf8_slice_codeunits(table["personnummer"], 0, 4), pa.int32())
    age = date.today().year - np.asarray(year)
    adults = np.flatnonzero((age >= 18) & (age <= 90))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(adults, size=min(n, len(adults)), replace=False))
    pq.write_table(table.take(pa.array(chosen)), out)
    return len(chosen)


def study_forms(n: int, region: Any) -> list[dict[str, Any]]:
    from brygga.registry.areas import AREAS
    from brygga.studies.seed import _hospital_sites

    criteria = sorted((HERE / "criteria").glob("*.yaml"))
    sites = _hospital_sites(region)
    areas = list(AREAS)
    today = date.today()
    forms = []
    for i in range(n):
        path = criteria[i % len(criteria)]
        forms.append({
            "title_sv": f"Studie {i}: {path.stem}", "title_en": f"Study {i}: {path.stem}",
            "summary_sv": "En benchmarkstudie.", "summary_en": "A benchmark study.",
            "sponsor": "Karolinska Institutet", "phase": "3", "area": areas[i % len(areas)],
            "ethics_number": f"2025-{10000 + i:05d}-01", "target_enrolment": 200,
            "healthy_volunteers": path.stem == "healthy_volunteers",
            "recruitment_start": today - timedelta(days=30),
            "recruitment_end": today + timedelta(days=365),
            "sites": [sites[i % len(sites)], sites[(i + 3) % len(sites)]],
            "criteria_yaml": path.read_text(encoding="utf-8"),
        })  # fmt: skip
    return forms


def set_up(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    from brygga.db import session, upgrade
    from brygga.records.store import Region
    from brygga.registry import service
    from brygga.studies import registration, staff
    from brygga.studies.seed import _volunteers

    region = Region.open(args.region)
    start = time.perf_counter()
    upgrade(url)
    people = sample_identities(region.path, args.volunteers + args.extra, folder / "ids.parquet", 1)
    with session(url) as s:
        service.load_identities(s, folder / "ids.parquet")
    loaded = time.perf_counter()
    with session(url) as s:
        joined = _volunteers(s, args.volunteers, 1)
    registered = time.perf_counter()
    with session(url) as s:
        org = staff.create_organization(s, {"name": "Karolinska Institutet", "kind": "university"})
        make = {"display_name": "Bench", "password": "bench-password-2026"}
        author = staff.create_staff(s, make | {"email": "r@bench.se", "role": "researcher",
                                               "organization_id": org.id})  # fmt: skip
        office = staff.create_staff(s, make | {"email": "o@bench.se", "role": "research_office"})
        for form in study_forms(args.studies, region):
            study = registration.create_study(s, author, form)
            registration.submit(s, author, study)
            registration.review(s, office, study, approve=True)
    done = time.perf_counter()
    return {"identities_loaded": people, "volunteers": joined, "studies": args.studies,
            "load_identities_s": round(loaded - start, 1),
            "register_volunteers_s": round(registered - loaded, 1),
            "create_studies_s": round(done - registered, 1)}  # fmt: skip


def bench_matching(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from brygga.db import session
    from brygga.studies import invitations, matching, outbox
    from brygga.studies.models import OutboxMessage

    inner = matching.RecordsEligibility(args.region) if args.records else None
    # Seconds spent in each part of the run: the functions are wrapped for this run only.
    parts = dict.fromkeys(("volunteers", "records_eligibility", "invitations", "outbox"), 0.0)

    def timed(part: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts[part] += time.perf_counter() - t

        return wrapper

    eligible = timed("records_eligibility", inner if inner else lambda _study: None)
    saved = (matching.volunteers, matching._insert_invitations, outbox.queue_digest,
             matching.write_session, matching._insert_batch)  # fmt: skip
    matching.volunteers = timed("volunteers", matching.volunteers)
    matching._insert_invitations = timed("invitations", matching._insert_invitations)
    matching._insert_batch = timed("invitations", matching._insert_batch)
    outbox.queue_digest = timed("outbox", outbox.queue_digest)
    held: list[float] = []  # each batch's write transaction, lock taken to commit (batched run)

    @contextmanager
    def timed_write(u: str) -> Any:
        t = time.perf_counter()
        with saved[3](u) as s:
            yield s
        held.append(time.perf_counter() - t)

    matching.write_session = timed_write
    try:
        start = time.perf_counter()
        if args.run == "batched":
            invited = matching.run(url, eligible)
            committing = time.perf_counter()  # each batch committed in its transaction
        else:
            with session(url) as s:  # as ``brygga match`` did: expiry first, then the run
                invitations.expire_due(s)  # SQLite: the write lock from here to the commit
                invited = matching.match_all(s, eligible)
                committing = time.perf_counter()
        done = time.perf_counter()
        if args.run == "single":
            held.append(done - start)
    finally:
        (matching.volunteers, matching._insert_invitations, outbox.queue_digest,
         matching.write_session, matching._insert_batch) = saved  # fmt: skip
    with session(url) as s:
        messages = s.scalar(select(func.count()).select_from(OutboxMessage))
    total = done - start
    candidates = total - sum(parts.values()) - (done - committing)
    return {"matching_s": round(total, 2), "records_eligibility_s": round(parts["records_eligibility"], 2),
            "read_volunteers_s": round(parts["volunteers"], 2),
            "candidates_and_rest_s": round(candidates, 2),
            "write_invitations_s": round(parts["invitations"], 2),
            "write_outbox_s": round(parts["outbox"], 2), "commit_s": round(done - committing, 2),
            "invitations": sum(invited.values()), "outbox_messages": messages,
            "studies_matched": len(invited), "run": args.run,
            # The longest any other writer (a resident's consent change) waits for this run:
            # one batch's transaction, or (single) from the first write to the commit.
            "write_batches": len(held),
            "longest_write_transaction_s": round(max(held), 3) if held else None,
            "distinct_criteria_queries": len(inner._cache) if inner else 0,
            "optimized_database": _optimized(args.region)}  # fmt: skip


def _optimized(region: Path) -> bool:
    """Whether the records queries could use the region's optimized DuckDB database."""
    return any(region.glob(".optimized-*.duckdb"))


def bench_registration(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    """The registration load of ``bench/registration.py`` on this database (after matching)."""
    sys.path.insert(0, str(HERE))
    from registration import load_test

    result = load_test(url, folder, seconds=args.seconds, concurrency=args.concurrency,
                       rate=args.rate, workers=args.workers)  # fmt: skip
    if result.get("note"):
        result["note"] = "ran out of unregistered residents; raise --extra"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--region", type=Path, default=HERE / "data" / "stockholm-1")
    parser.add_argument("--volunteers", type=int, default=200_000)
    parser.add_argument("--studies", type=int, default=300)
    parser.add_argument("--extra", type=int, default=40_000, help="unregistered, for the load")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    parser.add_argument("--records", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=64, help="load connections")
    parser.add_argument("--rate", type=float, default=300.0, help="load requests/s; 0: closed")
    parser.add_argument("--workers", type=int, default=2, help="server processes for the load")
    parser.add_argument("--skip-load", action="store_true", help="matching only")
    parser.add_argument("--run", choices=("batched", "single"), default="batched",
                        help="the scheduled run (batched) or one transaction (before)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not (args.region / "manifest.json").is_file():
        raise SystemExit(f"no region at {args.region}; pass --region DIR (see bench/README.md)")
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        folder = Path(tmp)
        os.environ["BRYGGA_DATA_DIR"] = str(folder)  # the audit log of this run goes there
        url = args.database_url or f"sqlite:///{folder / 'brygga.db'}"
        figures: dict[str, Any] = {"database": url.split(":", 1)[0], "region": str(args.region)}
        figures["setup"] = set_up(args, url, folder)
        print(json.dumps(figures["setup"]), flush=True)
        figures["matching"] = bench_matching(args, url)
        print(json.dumps(figures["matching"]), flush=True)
        if not args.skip_load:
            figures["registration"] = bench_registration(args, url, folder)
            print(json.dumps(figures["registration"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
