"""A long feasibility question does not hold the write lock (security properties 5 and 8).

A resident's pause must take effect at once, also while a researcher's feasibility question
runs for seconds. The app is served for real (uvicorn in a thread on a loopback port, its own
thread pool), the question is made slow (3 s, as a 10,000-rule question took 15-19 s), and the
pause, sent while the question runs, is timed. Before the fix the feasibility route ran inside
the request's write transaction and the pause waited for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import brygga.cohort.feasibility as cohort_feasibility
from brygga.db import session as db_session
from brygga.records import schema
from brygga.records.store import RegionWriter
from brygga.registry import service
from brygga.registry.models import Resident
from brygga.studies import funnel, registration, staff
from brygga.studies.models import Study
from brygga.web.app import WebConfig, create_app
from tests.e2e.serving import serve_in_thread

PASSWORD = "correct horse battery"
QUESTION_S = 3.0
PAUSE_LIMIT_S = 1.0
TODAY = date.today()


def seed(url: str) -> dict[str, Any]:
    """A researcher with a submitted and a draft study, and a registered resident."""
    with db_session(url) as s:
        org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        researcher = staff.create_staff(
            s,
            {"email": "researcher@example.com", "display_name": "Researcher",
             "role": "researcher", "organization_id": org.id, "password": PASSWORD},
        )  # fmt: skip
        form = {"title_sv": "Metformin och minne", "title_en": "Metformin and memory",
             "summary_sv": "Vi undersöker om metformin påverkar minnet.",
             "summary_en": "We study whether metformin affects memory.",
             "sponsor": "Lunds universitet", "phase": "2", "area": "diabetes",
             "ethics_number": "2024-01234-01", "target_enrolment": 100,
             "recruitment_start": TODAY - timedelta(days=10),
             "recruitment_end": TODAY + timedelta(days=300),
             "sites": [{"name": "SUS Lund", "municipality_code": "1281"}],
             "criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n"}  # fmt: skip
        study = registration.create_study(s, researcher, form)
        registration.submit(s, researcher, study)
        draft = registration.create_study(s, researcher, {**form, "title_en": "A draft"})
        resident = Resident(person_id=1)
        s.add(resident)
        s.flush()
        service.register(s, resident)
        return {"study": study.id, "draft": draft.id, "resident": resident.ref}


@pytest.fixture
def served(fresh_db, tmp_path, monkeypatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))  # the audit log goes there
    ids = seed(fresh_db)
    with RegionWriter(tmp_path / "region") as writer:  # an empty region: the 3 s are a sleep
        writer.ensure_tables(schema.CORE_TABLES)
        writer.commit({"region": "web", "source": "synthetic"})
    app = create_app(WebConfig(database_url=fresh_db, region=tmp_path / "region", demo=True))
    with serve_in_thread(app) as base:
        yield {"base": base, "url": fresh_db, **ids}


def logged_in(base: str, path: str, form: dict[str, str]) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    client.get("/healthz")
    r = client.post(path, data={"csrf_token": client.cookies["brygga_csrf"], **form})
    assert r.status_code == 303, r.text
    return client


def post(client: httpx.Client, path: str, form: dict[str, str]) -> httpx.Response:
    return client.post(path, data={"csrf_token": client.cookies["brygga_csrf"], **form})


@pytest.mark.parametrize(
    ("action", "study"), [("feasibility", "study"), ("submit", "draft")]
)  # on demand, and on submission
def test_a_pause_is_answered_at_once_while_a_long_feasibility_question_runs(
    served, monkeypatch, action, study
) -> None:
    asked = threading.Event()
    real = cohort_feasibility.feasibility

    def slow_question(*args: Any, **kwargs: Any) -> Any:
        asked.set()
        time.sleep(QUESTION_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(cohort_feasibility, "feasibility", slow_question)
    researcher = logged_in(
        served["base"], "/login/staff", {"email": "researcher@example.com", "password": PASSWORD}
    )
    resident = logged_in(served["base"], "/login/demo", {"ref": served["resident"]})
    answers: dict[str, Any] = {}

    def ask() -> None:
        answers["feasibility"] = post(researcher, f"/studies/{served[study]}/{action}", {})
        answers["answered_at"] = time.monotonic()

    question = threading.Thread(target=ask)
    question.start()
    try:
        assert asked.wait(20), "the feasibility question did not start"
        start = time.monotonic()
        paused = post(resident, "/portal/pause", {"paused": "yes"})
        took = time.monotonic() - start
        still_running = question.is_alive()
    finally:
        question.join(60)
        researcher.close()
        resident.close()
    assert paused.status_code == 303, paused.text
    assert took < PAUSE_LIMIT_S, f"the pause waited {took:.1f} s behind the question"
    assert still_running  # the pause was answered during the question, not after it
    assert answers["feasibility"].status_code == 303, answers["feasibility"].text
    assert answers["answered_at"] - start > 0.5  # (the question really was still running)
    with db_session(served["url"]) as s:
        resident_row = s.scalar(select(Resident).where(Resident.ref == served["resident"]))
        assert resident_row.paused_at is not None
        saved = s.get(Study, served[study]).feasibility
        assert saved is not None and "volunteers" in saved  # the result, in its short write


def test_a_result_for_criteria_changed_meanwhile_is_not_saved(served) -> None:
    with db_session(served["url"]) as s:
        study = s.get(Study, served["study"])
        criteria = study.criteria_yaml
        assert not funnel.save_feasibility(s, study.id, {"count": 1}, criteria + "# edited\n")
        assert study.feasibility is None
        assert funnel.save_feasibility(s, study.id, {"count": 1}, criteria)
        assert study.feasibility == {"count": 1}


def test_a_submission_that_would_be_refused_is_refused_before_the_question(
    served, monkeypatch
) -> None:
    asked = threading.Event()
    monkeypatch.setattr(cohort_feasibility, "feasibility", lambda *a, **k: asked.set())
    with db_session(served["url"]) as s:
        s.get(Study, served["draft"]).ethics_number = None
    researcher = logged_in(
        served["base"], "/login/staff", {"email": "researcher@example.com", "password": PASSWORD}
    )
    try:
        r = post(researcher, f"/studies/{served['draft']}/submit", {})
    finally:
        researcher.close()
    assert r.status_code == 422 and "ethics" in r.text
    assert not asked.is_set()
    with db_session(served["url"]) as s:
        draft = s.get(Study, served["draft"])
        assert (draft.status, draft.feasibility) == ("draft", None)
