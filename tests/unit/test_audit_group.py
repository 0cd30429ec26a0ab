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
