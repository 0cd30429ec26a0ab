"""The registration write path: cached settings, batched audit appends, group commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import wait
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

import brygga.db.group_commit as group_commit_module
from brygga import audit
from brygga.config import get_settings
from brygga.db import session
from brygga.db.group_commit import GroupCommit
from brygga.errors import NotFoundError
from brygga.registry import service
from brygga.registry.models import Profile, Resident


def test_settings_are_cached_until_a_brygga_variable_changes(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "a"))
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "b"))
    assert get_settings().data_dir == tmp_path / "b"
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    assert get_settings() is get_settings()
    get_settings.cache_clear()
    assert get_settings().data_dir == tmp_path / "b"


def test_appends_chain_onto_the_tail_even_after_a_long_record(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append("a", actor="system", details={}, path=log)
    audit.append("b", actor="system", details={"note": "x" * 3 * audit.TAIL_BLOCK}, path=log)
    last = audit.append("c", actor="system", details={}, path=log)
    assert last["seq"] == 2
    result = audit.verify(log)
    assert result.ok and result.records == 3 and result.head == last["hash"]


def test_a_damaged_last_line_stops_appends(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append("a", actor="system", details={}, path=log)
    with log.open("a", encoding="utf-8") as f:
        f.write('{"seq": 1, "tru')  # a write cut short
    with pytest.raises(audit.InputError, match="damaged"):
        audit.append("b", actor="system", details={}, path=log)


def test_a_batch_writes_its_records_at_once_and_drops_discarded_ones(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append("before", actor="system", details={}, path=log)
    with audit.batch(log) as pending:
        first = audit.append("one", actor="system", details={})
        mark = pending.mark()
        audit.append("rolled back", actor="system", details={})
        pending.discard_after(mark)
        audit.append("two", actor="system", details={})
        assert log.read_text().count("\n") == 1  # nothing written yet
    actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert actions == ["before", "one", "two"]
    assert first["seq"] == 1 and audit.verify(log).ok  # the returned record got its chain link


def test_a_batch_left_by_an_exception_writes_nothing(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    with pytest.raises(RuntimeError), audit.batch(log):
        audit.append("lost", actor="system", details={})
        raise RuntimeError
    assert not log.exists()


@pytest.fixture
def residents(fresh_db, tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))  # the audit log goes there
    with session(fresh_db) as s:
        s.add_all([Resident(person_id=i) for i in range(40)])
        s.flush()
        return list(s.scalars(select(Resident.ref).order_by(Resident.id)))


def registered(url: str) -> set[str]:
    with session(url) as s:
        return set(s.scalars(select(Resident.ref).where(Resident.registered_at.is_not(None))))


def test_register_refs_registers_once_and_names_unknown_refs(fresh_db, residents) -> None:
    with session(fresh_db) as s:
        outcomes = service.register_refs(s, [residents[0], "nosuchref", residents[0]])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], NotFoundError)
    with session(fresh_db) as s:
        assert service.register_refs(s, [residents[0]]) == [None]  # already registered
        assert s.scalar(select(func.count()).select_from(Profile)) == 1
    assert registered(fresh_db) == {residents[0]}


def test_group_commit_answers_each_job_after_its_batch_committed(
    fresh_db, residents, tmp_path
) -> None:
    committer = GroupCommit(fresh_db)
    futures = [committer.submit(service.register_refs, ref) for ref in residents[:30]]
    futures.append(committer.submit(service.register_refs, "nosuchref"))
    wait(futures, timeout=60)
    assert [f.result() for f in futures[:30]] == [None] * 30
    assert isinstance(futures[30].exception(), NotFoundError)
    assert registered(fresh_db) == set(residents[:30])
    assert 1 <= committer.batches < 31  # queued jobs shared batches
    log = audit.verify(tmp_path / "audit" / "audit.jsonl")
    assert log.ok and log.records == 30  # one per registration


def test_a_failing_job_rolls_back_alone_with_its_audit_record(
    fresh_db, residents, tmp_path
) -> None:
    committer = GroupCommit(fresh_db)

    def register_then_fail(s) -> None:
        service.register(s, service.by_ref(s, residents[1]))
        raise ValueError("after the write")

    def register(s) -> None:
        service.register(s, service.by_ref(s, residents[2]))

    async def both() -> list:
        jobs = (committer.run(register_then_fail), committer.run(register))
        return await asyncio.gather(*jobs, return_exceptions=True)

    failed, done = asyncio.run(both())
    assert isinstance(failed, ValueError) and done is None
    assert registered(fresh_db) == {residents[2]}
    log = tmp_path / "audit" / "audit.jsonl"
    actors = [json.loads(line)["actor"] for line in log.read_text().splitlines()]
    assert f"resident:{residents[1]}" not in actors and f"resident:{residents[2]}" in actors


def test_a_failed_commit_leaves_no_audit_record_of_its_registrations(
    fresh_db, residents, tmp_path, monkeypatch
) -> None:
    real = group_commit_module.write_session

    @contextmanager
    def commit_fails(url: str) -> Iterator:
        # The batch's statements run; then the commit does not happen (a crash, a full disk):
        # write_session rolls back, as the database does on recovery from a crash.
        with real(url) as s:
            yield s
            raise OSError("power lost before the commit")

    monkeypatch.setattr(group_commit_module, "write_session", commit_fails)
    committer = GroupCommit(fresh_db)
    futures = [committer.submit(service.register_refs, ref) for ref in residents[:5]]
    wait(futures, timeout=60)
    assert all(isinstance(f.exception(), OSError) for f in futures)
    assert registered(fresh_db) == set()
    log = tmp_path / "audit" / "audit.jsonl"
    claimed = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert [r for r in claimed if r["action"] == "resident.register"] == []

    monkeypatch.setattr(group_commit_module, "write_session", real)  # the disk is back
    retried = committer.submit(service.register_refs, residents[0])
    assert retried.result(timeout=60) is None
    actors = [json.loads(line)["actor"] for line in log.read_text().splitlines()]
    assert actors == [f"resident:{residents[0]}"] and registered(fresh_db) == {residents[0]}
