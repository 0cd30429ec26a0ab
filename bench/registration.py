"""Registration throughput: ``/portal/join`` under load on loopback, and nothing acknowledged lost.

    .venv/bin/python bench/registration.py                      # SQLite, 60 s, 64 connections
    .venv/bin/python bench/registration.py --seconds 10 --people 20000
    .venv/bin/python bench/registration.py --database-url postgresql+psycopg://... --workers 2

A fresh operational database (``--database-url``, default a SQLite file in a temporary folder)
with ``--people`` synthetic residents, none registered yet; ``brygga serve`` in a subprocess on
127.0.0.1; then ``--clients`` load-generator *processes* (so the load generator does not share
the server's interpreter) with ``--concurrency`` keep-alive connections in all, each POSTing
``/portal/join`` for distinct residents (signed session cookie and CSRF token, as a browser
sends them) for ``--seconds``. The client is a minimal asyncio HTTP/1.1 client on raw sockets,
so that the figures measure the server rather than the client library (httpx costs about as much
CPU per request as the server). Afterwards every acknowledged (303) registration is looked up
in the database (those of a 3 s warm-up before the timed part too), and the audit log's hash
chain is verified. With ``--rate`` (default 300/s) the load is an open loop: requests are due
at a fixed rate whether or not the server keeps up, and latency counts from when a request was
due; ``--rate 0`` is a closed loop (each connection sends again when answered).

Prints one JSON document: requests/s, p50/p99/max latency, errors, lost registrations, CPU
seconds of the server and of the clients, and the load average before and after.
Targets: >= 300 requests/s for 60 s, p99 < 100 ms, none lost.

``bench/matching.py`` calls ``load_test`` for its registration part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SECRET = "bench-registration-secret"
CSRF = "bench-registration-csrf"
TIMEOUT_S = 30
WARMUP_S = 3


# --- Set-up -------------------------------------------------------------------------------


def write_identities(path: Path, n: int) -> None:
    """``n`` synthetic adults with valid, distinct personnummer (Luhn check digit)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from brygga.records.schema import IDENTITY

    rows = []
    for i in range(n):
        year, day, serial = 1940 + i % 60, (i // 60) % 336, (i // 20160) % 1000
        birth = f"{year}{1 + day // 28:02d}{1 + day % 28:02d}"
        digits = [int(c) for c in birth[2:] + f"{serial:03d}"]
        total = sum(sum(divmod(d * w, 10)) for d, w in zip(digits, [2, 1] * 5, strict=False))
        rows.append({
            "person_id": 1_000_000 + i, "personnummer": f"{birth}-{serial:03d}{-total % 10}",
            "given_name": f"Bench{i}", "family_name": "Person", "street_address": f"Gatan {i}",
            "postal_code": "111 20", "post_town": "Stockholm", "municipality_code": "0180",
            "phone": None, "email": None,
        })  # fmt: skip
    schema = pa.schema([(c.name, c.type) for c in IDENTITY.columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def prepare(url: str, folder: Path, people: int) -> None:
    from brygga.db import engine, session, upgrade
    from brygga.registry import service

    upgrade(url)
    write_identities(folder / "ids.parquet", people)
    with session(url) as s:
        service.load_identities(s, folder / "ids.parquet")
    engine(url).dispose()


def unregistered(url: str) -> list[tuple[str, str]]:
    """(ref, session cookie) of every resident not registered yet: sessions are server-side
    records, made here beforehand, outside the timed part."""
    from sqlalchemy import select

    from brygga.db import engine, session
    from brygga.registry.models import Resident
    from brygga.web.security import Principal, session_tokens

    with session(url) as s:
        refs = list(s.scalars(select(Resident.ref).where(Resident.registered_at.is_(None))))
    tokens = session_tokens([Principal("resident", ref) for ref in refs], SECRET, url)
    engine(url).dispose()
    return list(zip(refs, tokens, strict=True))


# --- Server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, folder: Path, port: int, workers: int) -> subprocess.Popen:
    env = os.environ | {"BRYGGA_DATABASE_URL": url, "BRYGGA_DATA_DIR": str(folder),
                        "BRYGGA_SECRET_KEY": SECRET}  # fmt: skip
    argv = ["serve", "--port", str(port), "--workers", str(workers)]
    code = f"from brygga.cli import main; main({argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    time.sleep(0.5 * workers)  # let every worker finish starting
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- Load generator -------------------------------------------------------------------------


def request_bytes(token: str) -> bytes:
    return (
        "POST /portal/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        f"X-CSRF-Token: {CSRF}\r\nCookie: brygga_session={token}; brygga_csrf={CSRF}\r\n\r\n"
    ).encode()


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _client(
    port: int, refs: list[tuple[str, str]], seconds: float, connections: int, rate: float
) -> dict:
    """Closed loop (``rate`` 0: each connection sends its next request when answered) or open
    loop: request i is due at ``i / rate`` s, and its latency counts from then, so a server
    that falls behind is charged for the wait (no coordinated omission)."""
    queue = [(request_bytes(token), ref) for ref, token in reversed(refs)]  # signed beforehand
    latencies: list[float] = []
    acked: list[str] = []
    errors: dict[str, int] = {}
    start = time.perf_counter()
    stop = start + seconds
    sent = 0

    def due() -> float | None:
        """When the next request is due (None: stop)."""
        nonlocal sent
        if not queue or time.perf_counter() >= stop:
            return None
        sent += 1
        return start + (sent - 1) / rate if rate else time.perf_counter()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (t := due()) is not None:
                request, ref = queue.pop()
                if t > time.perf_counter():
                    await asyncio.sleep(t - time.perf_counter())
                try:
                    writer.write(request)
                    status = await asyncio.wait_for(_response(reader), TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    return
                latencies.append((t - start, time.perf_counter() - t))
                if status == 303:
                    acked.append(ref)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(connection() for _ in range(connections)))
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": time.perf_counter() - start, "latencies": latencies, "acked": acked,
            "errors": errors, "cpu_s": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime}  # fmt: skip


def _client_process(
    conn: Any, port: int, refs: list[tuple[str, str]], seconds: float, n: int, rate: float
) -> None:
    conn.send(asyncio.run(_client(port, refs, seconds, n, rate)))
    conn.close()


def drive(
    port: int,
    refs: list[tuple[str, str]],
    seconds: float,
    concurrency: int,
    clients: int,
    rate: float = 0,
) -> dict:
    """Run the load from ``clients`` processes (``rate``: requests/s in all, 0 for a closed
    loop); returns the merged figures and the acknowledged refs."""
    ctx = multiprocessing.get_context("spawn")
    procs, pipes = [], []
    for i in range(clients):
        mine, theirs = ctx.Pipe(duplex=False)
        share = refs[i::clients]
        n = concurrency // clients + (i < concurrency % clients)
        args = (theirs, port, share, seconds, n, rate / clients)
        p = ctx.Process(target=_client_process, args=args)
        p.start()
        procs.append(p)
        pipes.append(mine)
    parts = [pipe.recv() for pipe in pipes]
    for p in procs:
        p.join()
    pairs = np.asarray([x for part in parts for x in part["latencies"]]).reshape(-1, 2)
    ms = pairs[:, 1] * 1000
    seconds_in = pairs[:, 0].astype(int)
    wall = max(part["wall"] for part in parts)
    errors: dict[str, int] = {}
    for part in parts:
        for k, v in part["errors"].items():
            errors[k] = errors.get(k, 0) + v
    pct = (lambda q: round(float(np.percentile(ms, q)), 1)) if len(ms) else (lambda q: None)
    return {"seconds": round(wall, 1), "requests": len(ms),
            "acknowledged": sum(len(part["acked"]) for part in parts),
            "requests_per_s": round(len(ms) / wall, 1),
            "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100), "errors": errors,
            "p99_ms_by_second": [round(float(np.percentile(ms[seconds_in == i], 99)))
                                 for i in range(int(wall)) if (seconds_in == i).any()],
            "client_cpu_s": round(sum(part["cpu_s"] for part in parts), 1),
            "acked_refs": [ref for part in parts for ref in part["acked"]]}  # fmt: skip


# --- The whole run --------------------------------------------------------------------------


def count_registered(url: str, refs: list[str]) -> int:
    from sqlalchemy import func, select

    from brygga.db import engine, session
    from brygga.registry.models import Resident

    found = 0
    with session(url) as s:
        for start in range(0, len(refs), 5000):
            found += s.scalar(
                select(func.count()).where(
                    Resident.ref.in_(refs[start : start + 5000]),
                    Resident.registered_at.is_not(None),
                )
            )
    engine(url).dispose()
    return found


def load_test(
    url: str,
    folder: Path,
    *,
    seconds: float,
    concurrency: int,
    rate: float = 0,
    clients: int = 2,
    workers: int = 1,
) -> dict[str, Any]:
    """Serve ``url`` and register its unregistered residents under load; the figures."""
    from brygga import audit

    refs = unregistered(url)
    port = free_port()
    server = start_server(url, folder, port, workers)
    try:
        # Warm-up, not timed: every worker's first requests import and connect.
        warm = refs[: int(WARMUP_S * (rate or 100))]
        warmed = drive(port, warm, WARMUP_S, concurrency, clients, rate)["acked_refs"]
        before, cpu = load_average(), cpu_seconds(server.pid)
        result = drive(port, refs[len(warm) :], seconds, concurrency, clients, rate)
        result["server_cpu_s"] = round(cpu_seconds(server.pid) - cpu, 1)
        result["load_average_start_end"] = [before, load_average()]
    finally:
        server.terminate()
        server.wait(30)
    acked = result.pop("acked_refs") + warmed
    result["lost"] = len(acked) - count_registered(url, acked)  # the warm-up's included
    log = audit.verify(folder / "audit" / "audit.jsonl")
    result["audit_log"] = {"ok": log.ok, "records": log.records, "problem": log.problem}
    result["database"], result["workers"] = url.split(":", 1)[0], workers
    result["offered_rate"] = rate or "closed loop"
    result["connections"], result["client_processes"] = concurrency, clients
    if len(refs) <= result["requests"]:
        result["note"] = "ran out of unregistered residents; raise --people"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=60_000, help="unregistered residents")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--rate", type=float, default=300.0, help="requests/s offered; 0: closed loop"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="connections in all")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-registration-") as tmp:
        folder = Path(tmp)
        os.environ["BRYGGA_DATA_DIR"] = str(folder)  # the audit log of this run goes there
        url = args.database_url or f"sqlite:///{folder / 'brygga.db'}"
        start = time.perf_counter()
        prepare(url, folder, args.people)
        print(json.dumps({"setup_s": round(time.perf_counter() - start, 1)}), flush=True)
        figures = load_test(url, folder, seconds=args.seconds, concurrency=args.concurrency,
                            rate=args.rate, clients=args.clients, workers=args.workers)  # fmt: skip
    print(json.dumps(figures), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
