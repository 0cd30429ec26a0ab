"""The operational database's migrations and per-project privacy budgets (OpenDP queries)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from brygga import cli
from brygga.db import upgrade
from brygga.db.models import Base
from brygga.db.session import database_url, engine
from brygga.errors import InputError, NotFoundError
from brygga.privacy.budget import (
    BudgetExceeded,
    ProjectQueries,
    budget_status,
    charge,
    create_budget,
)


@pytest.fixture
def db(fresh_db: str) -> str:
    """A migrated database: SQLite, and PostgreSQL when the run has one (tests/conftest.py)."""
    return fresh_db


def test_upgrade_is_idempotent(db: str) -> None:
    assert upgrade(db) == db  # already at head: nothing to do, nothing fails
    with engine(db).connect() as conn:
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    assert len(versions) == 1


def test_migrations_create_every_model_table(db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    tables = set(sa.inspect(engine(db)).get_table_names())
    known = set(Base.metadata.tables)
    assert {"privacy_budget", "privacy_spend", "noisy_answer", "feasibility_request"} <= tables
    assert set(Base.metadata.tables) <= tables
    with engine(db).connect() as conn:  # the migrations and the (registered) models agree
        context = MigrationContext.configure(
            conn,
            opts={"include_name": lambda name, kind, _: kind != "table" or name in known},
        )
        assert compare_metadata(context, Base.metadata) == []
    if db.startswith("sqlite"):
        with engine(db).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_default_database_is_a_sqlite_file_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BRYGGA_DATABASE_URL", raising=False)
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))
    assert database_url() == f"sqlite:///{(tmp_path / 'data' / 'brygga.db').resolve()}"


def test_a_query_beyond_the_budget_is_refused_saying_what_is_left(db: str) -> None:
    create_budget("proj-1", 1.0, url=db)
    charge("proj-1", 0.4, query="count", url=db)
    with pytest.raises(BudgetExceeded, match=r"needs epsilon 0\.7.*only epsilon 0\.6 .* left"):
        charge("proj-1", 0.7, query="count", url=db)
    status = budget_status("proj-1", url=db)
    assert (status.epsilon_spent, status.epsilon_left, status.queries) == (0.4, 0.6, 1)
    charge("proj-1", 0.6, query="count", url=db)  # an exact fit is allowed
    assert budget_status("proj-1", url=db).epsilon_left == pytest.approx(0.0)
    with pytest.raises(InputError, match="already has"):
        create_budget("proj-1", 5.0, url=db)
    with pytest.raises(NotFoundError):
        charge("nobody", 0.1, query="count", url=db)


def _spend(url: str) -> bool:
    try:
        charge("race", 0.3, query="count", url=url)
        return True
    except BudgetExceeded:
        return False


def test_concurrent_threads_cannot_overspend(db: str) -> None:
    create_budget("race", 1.0, url=db)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(_spend, [db] * 8))
    assert sum(results) == 3
    assert budget_status("race", url=db).epsilon_spent == pytest.approx(0.9)


def test_concurrent_processes_cannot_overspend(db: str) -> None:
    create_budget("race", 1.0, url=db)
    # forkserver: workers forked from a fresh process, not from this one, whose threads (web
    # tests, DuckDB) may hold locks at fork time; a forked worker could then hang the pool.
    with multiprocessing.get_context("forkserver").Pool(8) as pool:
        results = pool.map(_spend, [db] * 8)
    assert sum(results) == 3
    status = budget_status("race", url=db)
    assert status.queries == 3 and status.epsilon_spent == pytest.approx(0.9)


def test_dp_queries_charge_what_opendp_says(db: str) -> None:
    create_budget("q", 3.0, 1e-5, url=db)
    q = ProjectQueries("q", url=db)
    rows = list(range(2000))
    count = q.count(rows, 0.5)
    assert count.epsilon == pytest.approx(0.5, rel=1e-6) and count.delta == 0
    assert abs(count.value - 2000) < 60  # Laplace scale 2: 60 is > 20 scales
    gauss = q.count(rows, 0.5, mechanism="gaussian", delta=1e-6)
    assert gauss.delta == pytest.approx(1e-6) and gauss.epsilon <= 0.5 + 1e-9
    groups = q.grouped_count(["a"] * 500 + ["b"] * 300 + ["z"] * 3, ["a", "b"], 0.5)
    assert set(groups.value) == {"a", "b", "(other)"}
    assert abs(groups.value["a"] - 500) < 60
    hist = q.histogram(np.r_[np.full(400, 1.0), np.full(200, 7.0)], [0, 5, 10], 0.5)
    assert abs(hist.value["[0, 5)"] - 400) < 60 and abs(hist.value["[5, 10)"] - 200) < 60
    mean = q.mean(np.full(5000, 4.0), (0.0, 10.0), 0.5)
    assert 0 <= mean.value <= 10 and abs(mean.value - 4.0) < 0.5
    status = budget_status("q", url=db)
    assert status.queries == 5 and status.epsilon_spent == pytest.approx(2.5, rel=1e-6)
    with pytest.raises(BudgetExceeded, match="was not run"):
        q.count(rows, 0.6)


def test_small_noisy_counts_are_withheld(db: str) -> None:
    create_budget("small", 50.0, url=db)
    q = ProjectQueries("small", url=db)
    values = [q.count([1, 2, 3], 5.0).value for _ in range(5)]  # little noise: stays near 3
    assert values == [None] * 5


def test_budget_cli(db: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("BRYGGA_DATABASE_URL", db)
    assert cli.main(["budget", "create", "cli-proj", "--epsilon", "2", "--json"]) == 0
    assert '"left": 2.0' in capsys.readouterr().out
    assert cli.main(["budget", "show", "nobody"]) == 2
    assert "no privacy budget" in capsys.readouterr().err
