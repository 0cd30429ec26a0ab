"""A resident's change that rematches them, and a study's approval, never work out a study's
people on the records while holding the write lock (security property 8): that read takes
seconds per new study on a large region, and every other writer (another resident's
withdrawal) would wait behind it. The route works it out first (``deps.eligibility_ready``),
and inside the lock the eligibility answers from what it kept."""

from __future__ import annotations

import importlib
import os

import numpy as np

from tests.web.conftest import study_form

sessions = importlib.import_module("brygga.db.direct")  # the writers' locks live there


class Recording:
    """Records' eligibility that keeps what it worked out, as ``RecordsEligibility`` does,
    and notes whether the write lock was held each time it had to work something out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kept: dict[int, np.ndarray] = {}
        self.under_lock: list[bool] = []

    def __call__(self, study) -> np.ndarray:
        if study.id not in self.kept:
            lock = sessions._writer_locks.get((os.getpid(), self.url))
            self.under_lock.append(bool(lock and lock[0].locked()))
            self.kept[study.id] = np.array([], dtype=np.int64)
        return self.kept[study.id]


def test_consent_and_approval_work_the_records_out_before_the_write_lock(site) -> None:
    eligibility = Recording(site["url"])
    site["app"].state.eligibility = eligibility
    c = site["client"]("resident")
    r = c.post("/portal/consent/match_records", data={"action": "grant", "text_version": "2026-1"})
    assert r.status_code == 303, r.text
    assert eligibility.under_lock == [False]  # the recruiting study, worked out before the lock
    # A study approved: its people worked out before the review's write transaction.
    researcher, office = site["client"]("researcher"), site["client"]("research_office")
    made = researcher.post("/studies", data=study_form(title_en="Another study"))
    assert made.status_code == 303, made.text
    study = int(made.headers["location"].rstrip("/").rsplit("/", 1)[-1])
    assert researcher.post(f"/studies/{study}/submit").status_code == 303
    approve = office.post(f"/studies/{study}/review", data={"decision": "approve"})
    assert approve.status_code == 303, approve.text
    assert study in eligibility.kept and eligibility.under_lock == [False, False]
