"""The question guard (privacy/questions.py): budgets, rate limit, sweeps, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from brygga.cohort.criteria import parse_criteria
from brygga.config import QuestionSettings
from brygga.db import direct
from brygga.db.session import session, write_session
from brygga.privacy.models import FeasibilityQuestion, QuestionFlag
from brygga.privacy.noise import NoisyPolicy
from brygga.privacy.questions import (
    Asker,
    QuestionGuard,
    QuestionRefused,
    atoms,
    classify,
    flags,
    review_flag,
    similarity,
)
from brygga.privacy.suppression import Line, protect
from tests.conftest import DATABASES, Databases

INDEX = "2025-06-15"
T_RULE = {"condition": {"codes": ["E10"], "vocabulary": "ICD10"}}


def hba1c(x: float) -> dict:
    return {"measurement": {"codes": ["HbA1c"], "value": {"min": x}, "latest": True}}


def excluding(x: float, index_date: str = INDEX):
    return parse_criteria({"index_date": index_date, "include": [hba1c(x)], "exclude": [T_RULE]})


def either(x: float):
    return parse_criteria({"index_date": INDEX, "include": [{"any_of": [hba1c(x), T_RULE]}]})


def condition(*codes: str):
    return parse_criteria({"index_date": INDEX, "include": [{"condition": {"codes": list(codes)}}]})


# Databases asked through the standard library's sqlite3 (``db.direct``: the command line's
# path, without SQLAlchemy) instead of an ORM session; the rows are read back through the ORM.
STDLIB: set[str] = set()


@pytest.fixture(params=[DATABASES[0], "sqlite-stdlib", *DATABASES[1:]])
def db(request: pytest.FixtureRequest, databases: Databases, tmp_path: Path) -> str:
    """A migrated database: SQLite through an ORM session or through sqlite3, and PostgreSQL
    when the run has one (tests/conftest.py)."""
    if request.param == "postgresql":
        return databases.postgresql()
    url = databases.sqlite(tmp_path)
    if request.param == "sqlite-stdlib":
        STDLIB.add(url)
    return url


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def guard(log: Path, **limits) -> QuestionGuard:
    return QuestionGuard(QuestionSettings(**limits), audit_path=log)


def ask(g: QuestionGuard, url: str, asker: Asker, criteria, value: int | None = 40) -> str:
    """One question through the guard as a caller does it: admit, answer, commit."""
    with direct.write_transaction(url) if url in STDLIB else write_session(url) as s:
        ticket = g.admit(s, asker, criteria)
        return g.answered(s, ticket, {"value": value, "display": str(value)})


def refusal(g: QuestionGuard, url: str, asker: Asker, criteria) -> QuestionRefused:
    with pytest.raises(QuestionRefused) as caught:
        ask(g, url, asker, criteria)
    return caught.value


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_atoms_ignore_thresholds_nesting_and_the_index_date() -> None:
    sweep = [excluding(30), excluding(99), either(50), excluding(30, "2025-01-01")]
    assert len({atoms(c) for c in sweep}) == 1  # the differencing pair is one question
    assert len({c.fingerprint() for c in sweep}) == 4  # ... though each is asked anew
    assert "measurement.value.min=#" in atoms(excluding(30))
    assert "condition.codes=E10" in atoms(excluding(30))
    # Other codes are another question; an extra code on a long list is nearly the same one.
    assert similarity(atoms(condition("E11")), atoms(condition("E10"))) < 0.75
    long = [f"E1{i}" for i in range(8)]
    assert similarity(atoms(condition(*long)), atoms(condition(*long, "E19"))) >= 0.75
    assert similarity(set(), set()) == 1.0


def test_result_classes() -> None:
    assert classify({"value": None, "display": "<8"}) == "suppressed"
    assert classify({"value": 0, "display": "0"}) == "zero"
    assert classify({"value": 35, "display": "35"}) == "shown"


def test_the_rate_limit_holds_across_guards_and_is_per_user(db: str, log: Path) -> None:
    ann, bob = Asker("staff:1"), Asker("staff:2")
    for code in ("E11", "I10", "J45"):
        ask(guard(log, rate_limit=3), db, ann, condition(code))
    # A new guard (another worker, another process) sees the same questions in the database.
    refused = refusal(guard(log, rate_limit=3), db, ann, condition("C50"))
    assert refused.reason == "rate" and refused.http_status == 429
    assert "at most 3 per 10 minutes" in refused.message
    assert ask(guard(log, rate_limit=3), db, bob, condition("C50")) == "shown"


def test_user_and_study_budgets(db: str, log: Path) -> None:
    g = guard(log, user_budget=2, study_budget=3)
    ann, bob = Asker("staff:1", study_id=7), Asker("staff:2", study_id=7)
    ask(g, db, ann, condition("E11"))
    ask(g, db, ann, condition("I10"))
    assert refusal(g, db, ann, condition("J45")).reason == "user_budget"
    ask(g, db, bob, condition("J45"))  # the study's third question
    assert refusal(g, db, bob, condition("C50")).reason == "study_budget"
    assert ask(g, db, Asker("staff:2", study_id=8), condition("C50")) == "shown"
    # Refused questions do not use up a budget: ann's refusal left bob one study question less
    # only through bob's own answer.
    with session(db) as s:
        results = s.execute(select(FeasibilityQuestion.result)).scalars().all()
    assert sorted(results) == sorted(
        ["shown"] * 4 + ["refused:user_budget", "refused:study_budget"]
    )


def test_a_sweep_is_refused_reported_and_audited(db: str, log: Path) -> None:
    g = guard(log, sweep_limit=3)
    ann = Asker("staff:1", study_id=4)
    for question in (excluding(30), either(30), excluding(31)):
        assert ask(g, db, ann, question) == "shown"
    refused = refusal(g, db, ann, either(31))
    assert refused.reason == "sweep" and refused.key == "question_refused_sweep"
    assert "reported to the research office" in refused.message
    assert refused.params == {"count": 3, "days": 30}
    # Asking an answered question again is no sweep (it gets the same answer) ...
    assert ask(g, db, ann, excluding(30)) == "shown"
    # ... nor is a different question; another draft study of the same sweep is.
    assert ask(g, db, ann, condition("I10")) == "shown"
    refusal(g, db, Asker("staff:1", study_id=5), excluding(32))
    # The refusals outlived the failed transactions: one open flag, two refusals.
    with session(db) as s:
        listed = flags(s)
        assert s.execute(select(QuestionFlag)).scalars().one().refusals == 2
    assert [(f["asker"], f["study"], f["refusals"]) for f in listed] == [("staff:1", 5, 2)]
    with write_session(db) as s:
        review_flag(s, listed[0]["id"], "staff:9")
    with session(db) as s:
        assert flags(s) == [] and flags(s, include_reviewed=True)[0]["reviewed_by"] == "staff:9"
    actions = [r["action"] for r in records(log)]
    assert actions.count("feasibility.question") == 5
    assert actions.count("feasibility.refused") == 2
    refused_record = next(r for r in records(log) if r["action"] == "feasibility.refused")
    assert refused_record["actor"] == "staff:1"
    assert refused_record["details"] == {
        "study": 4,
        "fingerprint": either(31).fingerprint(),
        "result": "refused",
        "reason": "sweep",
        "flag": listed[0]["id"],
    }
    assert "HbA1c" not in log.read_text() and "E10" not in log.read_text()


def test_other_users_on_the_same_study_continue_its_sweep(db: str, log: Path) -> None:
    g = guard(log, sweep_limit=2)
    ask(g, db, Asker("staff:1", study_id=4), excluding(30))
    ask(g, db, Asker("staff:2", study_id=4), excluding(31))
    assert refusal(g, db, Asker("staff:3", study_id=4), excluding(32)).reason == "sweep"
    assert ask(g, db, Asker("staff:3", study_id=5), excluding(32)) == "shown"


def test_not_enforced_the_guard_only_audits(db: str, log: Path) -> None:
    g = QuestionGuard(
        QuestionSettings(rate_limit=1, sweep_limit=1, user_budget=1), enforce=False, audit_path=log
    )
    cli = Asker("cli:dataowner")
    for x in (30, 31, 32):
        assert ask(g, db, cli, excluding(x), value=None) == "suppressed"
    assert [r["details"]["result"] for r in records(log)] == ["suppressed"] * 3


def test_noisy_answers_get_secondary_suppression() -> None:
    """A breakdown must not give a suppressed noisy cell away by subtraction (with no noise to
    hide behind, here: error95 0)."""
    counts = {"total": 50, "a": 3, "b": 47}
    line = [Line("total", ("a", "b"))]
    exact = protect(NoisyPolicy(8, 0.0, "test"), counts, line, counts, keep=["total"])
    assert exact["a"]["display"] == "<8" and exact["b"]["display"] == "suppressed"
    noisy = {"total": 50.0, "a": 0.0, "b": 50.0}  # a noisy 0 says nothing exact
    shown = protect(NoisyPolicy(8, 11.5, "test"), counts, line, noisy, keep=["total"])
    assert shown["b"] == {"value": 50, "display": "50", "error95": 11.5}
