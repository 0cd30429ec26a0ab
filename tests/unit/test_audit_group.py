"""Concurrent audit appends share fsyncs (audit._group_write) and keep one valid chain."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from brygga import audit


def test_concurrent_appends_share_fsyncs_and_keep_one_chain(tmp_path, monkeypatch) -> None:
    log = tmp_path / "audit.jsonl"
    calls = []
    real_fsync = os.fsync
    gate = threading.Event()

    def slow_fsync(fd: int) -> None:  # a slow disk: others queue up meanwhile
        calls.append(fd)
        gate.wait(0.05)
        real_fsync(fd)

    monkeypatch.setattr(audit.os, "fsync", slow_fsync)
    with ThreadPoolExecutor(32) as pool:
        records = list(pool.map(
            lambda i: audit.append("identity.read", actor=f"resident:{i}", details={}, path=log),
            range(200),
        ))  # fmt: skip
    result = audit.verify(log)
    assert result.ok and result.records == 200
    assert sorted(r["seq"] for r in records) == list(range(200))  # each returned its own link
    assert len(calls) < 100  # grouped: far fewer fsyncs than records


def test_a_failed_group_write_fails_every_append_it_carried(tmp_path, monkeypatch) -> None:
    log = tmp_path / "audit.jsonl"

    def broken(path, records) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(audit, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        audit.append("a", actor="system", details={}, path=log)


def test_coroutines_appends_are_durable_when_they_return_and_share_writes(
    tmp_path, monkeypatch
) -> None:
    """``append_async`` (a resident's kept page, on the event loop): each coroutine returns
    only once its record is in the file, many records share a write, and threads appending
    at the same time join the same chain."""
    import asyncio

    log = tmp_path / "audit.jsonl"
    writes: list[int] = []
    real_write = audit._write

    def counted(path, records) -> None:
        writes.append(len(records))
        real_write(path, records)

    monkeypatch.setattr(audit, "_write", counted)

    async def view(i: int) -> None:
        record = await audit.append_async("identity.read", actor=f"resident:{i}", details={},
                                          path=log)  # fmt: skip
        assert record["hash"] in log.read_text()  # durable before the page goes out

    async def main() -> None:
        await asyncio.gather(*(view(i) for i in range(150)))

    with ThreadPoolExecutor(8) as pool:
        threads = [pool.submit(audit.append, "export", actor=f"t{i}", details={}, path=log)
                   for i in range(40)]  # fmt: skip
        asyncio.run(main())
        for t in threads:
            t.result()
    result = audit.verify(log)
    assert result.ok and result.records == 190
    assert sum(writes) == 190 and len(writes) < 150  # coroutines' records grouped
    assert not audit._group(log).writing and not audit._group(log).queue


def test_a_failed_write_fails_the_coroutines_it_carried(tmp_path, monkeypatch) -> None:
    import asyncio

    log = tmp_path / "audit.jsonl"

    def broken(path, records) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(audit, "_write", broken)

    async def main() -> list:
        return await asyncio.gather(
            *(audit.append_async("a", actor="x", details={}, path=log) for _ in range(5)),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert all(isinstance(r, OSError) for r in results)
    assert not audit._group(log).writing  # the next append may write again
    monkeypatch.undo()
    assert asyncio.run(audit.append_async("b", actor="x", details={}, path=log))["seq"] == 0
