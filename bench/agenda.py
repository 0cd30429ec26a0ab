"""Benchmark: the public /agenda page and the annual report on a region with demo data.

    .venv/bin/python bench/agenda.py                                  # Stockholm, scale 0.05
    .venv/bin/python bench/agenda.py --scale 1.0                      # the issue's target size
    .venv/bin/python bench/agenda.py --region DIR --volunteers 20000

1. The region: ``--region DIR``, or Stockholm at ``--scale`` generated once into
   ``bench/data/stockholm-<scale>`` (seed 1).
2. The operational database: a fresh SQLite file seeded with the demo data (organizations,
   staff, the demo studies, ``--volunteers`` registered residents, one matching run: the
   invitations), as ``make demo`` does.
3. Timed, in one process (wall seconds, and the load average before and after, because the
   machine is shared):
   * the annual report of ``stockholm-life-science`` (``Brygga.annual_report``: the snapshot
     with every KPI through the release gate, including the prevention figures that score the
     whole population for three years, the HTML with its charts, the PDF, snapshot.json), and
     each KPI's share of the snapshot;
   * ``GET /agenda`` in process (the app under httpx's ASGI transport): the first view
     (computes the figures and the charts) and the median and maximum of ``--views`` views
     after it (served from the platform's page cache, ``PAGE_CACHE_SECONDS``);
   * ``GET /halsolaget`` likewise;
   * the warm-up a starting server runs (``Brygga.warm_public_pages``: both strategies and
     Hälsoläget in both languages), then the first and later views of a warmed server.

Targets (issue 16): /agenda <= 0.5 s and the annual report <= 60 s on Stockholm at scale 1.0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.web.conftest's in-process client


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def region_dir(args: argparse.Namespace) -> Path:
    if args.region:
        return Path(args.region)
    from brygga.synth import generate

    out = REPO / "bench" / "data" / f"stockholm-{args.scale:g}"
    if not (out / "manifest.json").is_file():
        started = time.perf_counter()
        generate(region="stockholm", out=out, scale=args.scale, seed=1, workers=args.workers)
        print(f"generated {out} in {time.perf_counter() - started:.1f} s")
    return out


def timed(fn, *a, **kw):
    started = time.perf_counter()
    value = fn(*a, **kw)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", help="an existing region folder")
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--volunteers", type=int, default=3000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--year", type=int, default=0, help="report year (default: this year)")
    args = parser.parse_args()

    folder = region_dir(args)
    work = Path(tempfile.mkdtemp(prefix="bench-agenda-"))
    url = f"sqlite:///{work / 'brygga.db'}"
    os.environ["BRYGGA_DATABASE_URL"] = url
    os.environ["BRYGGA_DATA_DIR"] = str(work)

    from brygga import clock
    from brygga.agenda import catalogue
    from brygga.agenda.kpis import Context, Periods
    from brygga.db.session import session
    from brygga.platform import Brygga
    from brygga.studies.seed import seed_demo
    from brygga.web.app import WebConfig, create_app

    print(f"region {folder}; load average {load()}")
    seeded, seconds = timed(seed_demo, folder, url, volunteers=args.volunteers)
    summary = seeded.summary()
    print(f"seeded the demo database in {seconds:.1f} s: {summary['volunteers']} volunteers, "
          f"{summary['studies']} studies, {summary['invited']} invitations")  # fmt: skip

    core = Brygga()
    region = core.region(folder)
    print(f"region: {region.name}, {region.row_counts.get('person', '?'):,} people")
    year = args.year or clock.today().year

    # Each KPI of the strategy on its own (where the snapshot's time goes).
    strategy = core.strategy("stockholm-life-science")
    with session(core.database) as s:
        ctx = Context(session=s, policy=core.kpi_policy(region),
                      periods=Periods.ending(year, clock.today()), region=region, platform=core)  # fmt: skip
        for kpi_id in strategy.kpi_ids():
            kpi = catalogue.registry().get(kpi_id)
            _, seconds = timed(catalogue.compute, kpi, ctx, "stockholm")
            print(f"  {kpi_id:<36} {kpi.kind:<8} {seconds:7.3f} s")

    print(f"load average before the report {load()}")
    result, seconds = timed(core.annual_report, "stockholm-life-science", year,
                            work / "report", region=folder)  # fmt: skip
    print(f"annual report: {seconds:.1f} s wall ({result['figures']} figures): snapshot "
          f"{result['seconds_snapshot']} s, HTML with charts {result['seconds_html']} s, PDF "
          f"{result['seconds_pdf']} s -> {result['pdf']}")  # fmt: skip

    from tests.web.conftest import Client

    def config() -> WebConfig:
        return WebConfig(database_url=url, demo=True, region=folder,
                         outbox_path=work / "outbox.jsonl")  # fmt: skip

    # A server whose figures are computed by the first visitor (no warm-up) ...
    client = Client(create_app(config()))
    try:
        for path in ("/agenda", "/halsolaget"):
            response, first = timed(client.get, path)
            assert response.status_code == 200, response.text[:500]
            views = [timed(client.get, path)[1] for _ in range(args.views)]
            print(f"GET {path} (no warm-up): first view {first:.2f} s; then median "
                  f"{statistics.median(views) * 1000:.1f} ms, max {max(views) * 1000:.1f} ms "
                  f"over {args.views} views ({len(response.content):,} bytes)")  # fmt: skip
    finally:
        client.close()
    # ... and one that warms them as ``brygga serve`` does when it starts (the app's lifespan
    # runs ``_warm`` in a thread: templates compiled, then ``warm_public_pages``; here in the
    # foreground, to time it).
    from brygga.web.app import _warm

    app = create_app(config())
    _, seconds = timed(_warm, app.state.brygga, folder, app.state.templates)
    print(f"server start: the public pages' figures warmed in {seconds:.1f} s "
          f"(both strategies and Hälsoläget, Swedish and English)")  # fmt: skip
    client = Client(app)
    try:
        for path in ("/agenda", "/agenda?strategy=skane-firs-2026", "/halsolaget"):
            response, first = timed(client.get, path)
            assert response.status_code == 200, response.text[:500]
            views = [timed(client.get, path)[1] for _ in range(args.views)]
            print(f"GET {path} (warmed): first view {first * 1000:.1f} ms; then median "
                  f"{statistics.median(views) * 1000:.1f} ms, max {max(views) * 1000:.1f} ms")  # fmt: skip
    finally:
        client.close()
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
