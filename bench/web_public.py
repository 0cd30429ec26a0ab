"""The public e-service under load: p95 of the public pages and a resident's own page.

    .venv/bin/python bench/web_public.py                       # the demo (make demo), 10 s a page
    .venv/bin/python bench/web_public.py --seconds 20 --users 50 --database data/brygga.db

A copy of the demo's operational database (``--database``, default ``data/brygga.db``)
is served by ``brygga serve --demo --region data/demo/skane`` (one server process, a subprocess)
on 127.0.0.1. ``--users`` simulated people (httpx async clients, each with its own cookies and
keep-alive connection) then request one page at a time, each as soon as the previous answer
arrived (a closed loop), for ``--seconds`` per page: ``GET /``, ``GET /studier``,
``GET /studier/{id}`` (the first study the catalogue lists), then the resident's own pages
``GET /portal`` and ``GET /portal/profil`` logged in as demo residents (each user logs in
through the demo identity provider first). Every answer must be 200. ``--think S`` makes each
user wait a random time (exponential, mean S seconds) between requests, as people reading a
page do; the default 0 is the issue's closed loop (50 requests always in flight). Prints one JSON document per page: requests/s, p50/p95/p99/max latency in ms, and the
server's CPU time per request (from /proc: comparable across runs on a busy machine, where the
latencies measure the machine as much as the server).
Target (issue 21): p95 <= 100 ms at 50 concurrent users. Figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database: Path, region: Path, port: int) -> subprocess.Popen:
    env = os.environ | {
        "BRYGGA_DATABASE_URL": f"sqlite:///{database}",
        "BRYGGA_DATA_DIR": str(database.parent),
        # The steady state is measured: not the first minute, when a starting server computes
        # the agenda pages' figures in a background thread (bench/agenda.py times that).
        "BRYGGA_WEB_WARM_PUBLIC_PAGES": "false",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "brygga.cli", "serve", "--demo", "--region", str(region),
           "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:]}")


async def log_in(client: httpx.AsyncClient, i: int) -> None:
    page = await client.get("/login")
    refs = re.findall(r'name="ref" value="([0-9a-f]+)"', page.text)
    token = client.cookies["brygga_csrf"]
    r = await client.post("/login/demo", data={"ref": refs[i % len(refs)], "csrf_token": token})
    assert r.status_code == 303, r.status_code


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): what a request costs the server,
    whatever else the machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_page(
    clients: list[httpx.AsyncClient], path: str, seconds: float, server: int, think: float = 0.0
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def user(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                r = await c.get(path)
            except httpx.RemoteProtocolError:
                # A connection idle past uvicorn's keep-alive (5 s: between two pages' runs,
                # with --think) was closed by the server; a browser opens a new one.
                t0 = time.perf_counter()
                r = await c.get(path)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
            if think:  # a person reads the page before the next click
                await asyncio.sleep(random.expovariate(1 / think))

    t0, cpu0 = time.perf_counter(), cpu_seconds(server)
    await asyncio.gather(*(user(c) for c in clients))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server) - cpu0
    ms = np.array(latencies) * 1000
    return {
        "page": path,
        "users": len(clients),
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "think_s": think,
        "server_cpu_ms_per_request": round(cpu / len(latencies) * 1000, 2),
        "load_average": round(os.getloadavg()[0], 1),
    }


async def bench(
    base: str, users: int, seconds: float, server: int, think: float
) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=60) for _ in range(users)]
    try:
        listing = await clients[0].get("/studier")
        study = re.search(r'href="(/studier/\d+)"', listing.text)
        assert study, "the catalogue lists no study: run make demo first"
        results = []
        for path in ("/", "/studier", study.group(1)):
            await run_page(clients, path, 1.0, server)  # warm-up
            results.append(await run_page(clients, path, seconds, server, think))
        await asyncio.gather(*(log_in(c, i) for i, c in enumerate(clients)))
        for path in ("/portal", "/portal/profil"):  # the resident's own pages
            await run_page(clients, path, 1.0, server)
            mine = await run_page(clients, path, seconds, server, think)
            results.append(mine | {"logged_in": True})
        return results
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--database", type=Path, default=Path("data/brygga.db"))
    ap.add_argument("--region", type=Path, default=Path("data/demo/skane"))
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds each user waits between requests (exponential); 0: a closed loop",
    )
    args = ap.parse_args()
    if not args.database.exists():
        raise SystemExit(f"{args.database}: no demo database; run `make demo` first")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "brygga.db"
        shutil.copy(args.database, copy)  # the log-ins write sessions; the demo stays as it was
        port = free_port()
        server = start_server(copy, args.region.resolve(), port)
        try:
            results = asyncio.run(
                bench(f"http://127.0.0.1:{port}", args.users, args.seconds, server.pid, args.think)
            )
        finally:
            server.terminate()
            server.wait(10)
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
