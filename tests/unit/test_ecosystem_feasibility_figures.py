"""The figures a site-feasibility inquiry carries leave as one table through the release gate:
no overlap with a recruiting study can be subtracted from the eligible count to recover a
small number of people (security properties 2 and 7)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from brygga.cohort.feasibility import eligible_persons
from brygga.db import session as db_session
from brygga.ecosystem.feasibility import disclose_figures
from brygga.platform import Brygga
from brygga.privacy.disclosure import RoundingPolicy
from brygga.privacy.people import PeopleCounter
from brygga.studies import matching, registration, staff
from brygga.studies.registration import criteria_from_yaml

# Exact above the threshold: the policy under which subtraction gives a count away at once.
EXACT = RoundingPolicy(threshold=8, rounding=1)
CRITERIA = "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n"


def test_an_overlap_that_leaves_out_few_people_is_not_shown():
    eligible = np.arange(100, 120, dtype=np.int64)  # 20 eligible
    close = eligible[3:]  # a study that takes 17 of them: 3 left out
    half = eligible[:10]  # one that takes 10: 10 left out
    elsewhere = np.arange(500, 520, dtype=np.int64)  # none of them
    shown, volunteers, overlaps = disclose_figures(
        PeopleCounter(EXACT), eligible, [(1, close), (2, half), (3, elsewhere)], 9
    )
    assert shown["value"] == 20 and volunteers["value"] == 9
    # 20 - 17 = 3: the overlap would give the 3 left out away; it is suppressed instead.
    assert overlaps[1]["value"] is None
    assert overlaps[2]["value"] == 10 and overlaps[3]["value"] == 0


def test_a_small_overlap_stays_suppressed_and_cannot_be_recovered():
    eligible = np.arange(20, dtype=np.int64)
    shown, _, overlaps = disclose_figures(PeopleCounter(EXACT), eligible, [(7, eligible[:2])], 0)
    assert overlaps[7] == {"value": None, "display": "<8"} and shown["value"] == 20


def _approved_study(s, criteria_yaml: str):
    org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
    researcher = staff.create_staff(
        s, {"email": "f@example.com", "display_name": "F", "role": "researcher",
            "organization_id": org.id, "password": "correct horse battery"},
    )  # fmt: skip
    office = staff.create_staff(
        s, {"email": "o@example.com", "display_name": "O", "role": "research_office",
            "password": "correct horse battery"},
    )  # fmt: skip
    today = date.today()
    study = registration.create_study(
        s, researcher,
        {"title_sv": "Metformin och minne", "title_en": "Metformin and memory",
         "summary_sv": "Vi undersöker om metformin påverkar minnet.",
         "summary_en": "We study whether metformin affects memory.", "sponsor": "Lunds universitet", "phase": "2",
         "area": "diabetes", "ethics_number": "2024-01234-01", "target_enrolment": 100,
         "recruitment_start": (today - timedelta(days=10)).isoformat(),
         "recruitment_end": (today + timedelta(days=300)).isoformat(),
         "sites": [{"name": "SUS Lund", "municipality_code": "1281"}],
         "criteria_yaml": criteria_yaml},
    )  # fmt: skip
    registration.submit(s, researcher, study)
    registration.review(s, office, study, approve=True)
    return study.id


@pytest.mark.slow  # generates the small synthetic region (session fixture)
def test_the_inquiry_s_figures_cannot_be_differenced(small_region, tmp_path, monkeypatch, fresh_db):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BRYGGA_DATABASE_URL", fresh_db)
    monkeypatch.setenv("BRYGGA_DISCLOSURE_ROUNDING", "1")
    core = Brygga()
    region = small_region.region
    eligible = np.asarray(eligible_persons(criteria_from_yaml(CRITERIA), region), np.int64)
    assert len(eligible) >= 20  # the constructed case needs a shown eligible count

    class AllButThree:  # the recruiting study's criteria leave out 3 of the eligible
        def __init__(self, *_args: object) -> None: ...

        def __call__(self, _study: object) -> np.ndarray:
            return eligible[3:]

    monkeypatch.setattr(matching, "RecordsEligibility", AllButThree)
    with db_session(fresh_db) as s:
        study = _approved_study(s, CRITERIA)
    data = core.feasibility_data(CRITERIA, "diabetes", region, user="staff:1")
    assert data["eligible"]["value"] == len(eligible)  # exact under this policy
    (overlap,) = data["overlapping_studies"]
    assert overlap["study"] == study
    # Shown, it would say that exactly 3 eligible people are left out by the study.
    assert overlap["overlap"]["value"] is None, overlap
