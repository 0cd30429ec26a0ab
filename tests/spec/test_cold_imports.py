"""A new ``brygga feasibility`` process, whether or not earlier processes computed its rules, loads none of
SQLAlchemy, Alembic, Ibis, sqlglot, DuckDB or pandas (issue 18: a cold process answers in <= 1 s
at scale 1.0, and those imports were most of its time), and still records and audits the
question: the row in ``feasibility_question`` and the audit record, as the ORM path writes them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from brygga.records import optimize
from tests.spec.conftest import build_region, event, person

# What a cached question must not import (they cost ~0.8 s of CPU in a loaded new process).
FORBIDDEN = ("sqlalchemy", "alembic", "ibis", "sqlglot", "duckdb", "pandas", "pyarrow.parquet")
CRITERIA = {
    "name": "T2D with a raised HbA1c",
    "index_date": "2024-06-01",
    "demographics": {"age": {"min": 18}},
    "include": [
        {"condition": {"codes": ["E11"]}},
        {"measurement": {"codes": ["HbA1c"], "value": {"min": 53}, "latest": True}},
    ],
    "exclude": [{"condition": {"codes": ["X99"]}}],  # no such code: a warning, kept too
}
# Runs the command line in this process, then says which modules it loaded.
PROBE = """
import contextlib, io, json, sys
from brygga.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "answer": json.loads(out.getvalue()),
                  "modules": sorted(sys.modules)}))
"""


def ask(region: Path, criteria: Path, data_dir: Path) -> dict:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(data_dir), "BRYGGA_USER": "tester"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd() / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "feasibility", str(criteria), "--region", str(region),
         "--json", "--raw"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


def loaded(modules: list[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


@pytest.mark.slow
def test_a_cached_question_imports_no_database_or_compiler_library(tmp_path: Path) -> None:
    people = [person(p, born=date(1960, 1, 1)) for p in range(1, 21)]
    rows = [
        *(event("condition", p, "E119", date(2015, 1, 1)) for p in range(1, 21)),
        *(event("measurement", p, "NPU27300", date(2023, 1, 1), value=60.0) for p in range(1, 16)),
    ]
    region = build_region(tmp_path / "r", people, rows)
    optimize.build(region, threads=1)
    criteria = tmp_path / "t2d.yaml"
    criteria.write_text(yaml.safe_dump(CRITERIA), encoding="utf-8")
    data = tmp_path / "data"

    # The operational database is created (migrated: SQLAlchemy, Alembic) by a first process.
    whole = tmp_path / "whole.yaml"
    whole.write_text(yaml.safe_dump({"name": "All", "index_date": "2024-06-01"}), "utf-8")
    assert ask(region.path, whole, data)["code"] == 0
    # A question no process has asked: its rules and its codes' people from the code arrays,
    # kept for later processes; still no database or compiler library.
    first = ask(region.path, criteria, data)
    assert first["code"] == 0
    assert [m for m in FORBIDDEN if loaded(first["modules"], m)] == []
    again = ask(region.path, criteria, data)
    assert again["code"] == 0
    assert again["answer"]["count"] == first["answer"]["count"] == {"value": 15, "display": "15"}
    assert again["answer"]["warnings"] == first["answer"]["warnings"]
    assert any("X99" in w for w in again["answer"]["warnings"])
    assert [m for m in FORBIDDEN if loaded(again["modules"], m)] == []

    # Both questions recorded by the question guard, and audited.
    with sqlite3.connect(data / "brygga.db") as db:
        rows = db.execute("SELECT asker, result, fingerprint FROM feasibility_question").fetchall()
    assert [(a, r) for a, r, _ in rows][1:] == [("cli:tester", "shown")] * 2
    rows = rows[1:]
    log = [json.loads(line) for line in (data / "audit" / "audit.jsonl").read_text().splitlines()]
    log = log[1:]
    assert [(r["action"], r["details"]["result"]) for r in log] == [
        ("feasibility.question", "shown")
    ] * 2
    assert {r["details"]["fingerprint"] for r in log} == {rows[0][2]}

    # As a process of its own (``python -m brygga.cli``), which ends without the interpreter's
    # tear-down once the answer is out: the whole answer printed, the question recorded and
    # audited, exit code 0.
    env = {**os.environ, "BRYGGA_DATA_DIR": str(data), "BRYGGA_USER": "tester"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd() / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "brygga.cli", "feasibility", str(criteria), "--region",
         str(region.path), "--json", "--raw"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == again["answer"]["count"]
    with sqlite3.connect(data / "brygga.db") as db:
        assert db.execute("SELECT count(*) FROM feasibility_question").fetchone() == (4,)
    lines = (data / "audit" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["details"]["result"] == "shown"
