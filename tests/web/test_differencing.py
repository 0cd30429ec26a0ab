"""The differencing attack of the hardening issue, through the web API (security property 7).

A researcher wants the size of a small group T (two people with type 1 diabetes, shown as
``<8``). For x = 30 .. 99 they register two draft studies, "latest HbA1c >= x, excluding T"
and "any of (latest HbA1c >= x, T)", and ask feasibility on each: the second count minus the
first is |T| for every x, and rounding (or the cell key's perturbation) averages out over many
x. Without the question guard that recovers |T| (the control below); with it, the sweep is
refused after a handful of answers and reported to the research office.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from statistics import mean

import pytest
import yaml

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import feasibility
from brygga.config import QuestionSettings
from brygga.privacy.questions import QuestionGuard
from brygga.records.store import Region
from brygga.studies.matching import RecordsEligibility
from tests.spec.conftest import write_tables
from tests.web.conftest import study_form

T_SIZE = 2
PEOPLE = 600
INDEX = "2025-06-15"
XS = range(30, 100)


def write_region(out: Path, source: str) -> Region:
    """600 people observed 2000-2030, each with one HbA1c between 20 and 110 in 2025; persons
    5 and 11 (the group T) have type 1 diabetes (E10)."""
    rng_values = [20 + (i * 37) % 91 for i in range(PEOPLE)]
    tables: dict[str, list[dict]] = {
        "person": [
            {
                "person_id": i,
                "gender_concept_id": 8507 if i % 2 else 8532,
                "year_of_birth": 1940 + i % 50,
                "month_of_birth": 1 + i % 12,
                "day_of_birth": 1 + i % 28,
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "municipality_code": "1280" if i % 3 else "1281",
            }
            for i in range(PEOPLE)
        ],
        "observation_period": [
            {
                "person_id": i,
                "observation_period_start_date": date(2000, 1, 1),
                "observation_period_end_date": date(2030, 12, 31),
                "period_type_concept_id": 32817,
            }
            for i in range(PEOPLE)
        ],
        "measurement": [
            {
                "person_id": i,
                "measurement_concept_id": 0,
                "measurement_date": date(2025, 1, 10),
                "measurement_source_value": "NPU27300",
                "measurement_source_vocabulary": "NPU",
                "measurement_type_concept_id": 32817,
                "value_as_number": float(v),
            }
            for i, v in enumerate(rng_values)
        ],
        "condition_occurrence": [
            {
                "person_id": i,
                "condition_concept_id": 0,
                "condition_start_date": date(2024, 3, 1),
                "condition_source_value": "E10",
                "condition_source_vocabulary": "ICD10",
                "condition_type_concept_id": 32817,
            }
            for i in (5, 11)
        ],
        "person_key": [
            {"person_id": i, "record_key": (i * 0.6180339887) % 1} for i in range(PEOPLE)
        ],
    }
    return write_tables(out, tables, region="differencing", source=source)


HBA1C = "{{measurement: {{codes: [HbA1c], value: {{min: {x}}}, latest: true}}}}"
T_RULE = "{condition: {codes: [E10], vocabulary: ICD10}}"


def criteria_pair(x: int) -> tuple[str, str]:
    """(HbA1c >= x excluding T, HbA1c >= x or T): their counts differ by exactly |T|."""
    rule = HBA1C.format(x=x)
    return (
        f"index_date: {INDEX}\ninclude:\n  - {rule}\nexclude:\n  - {T_RULE}\n",
        f"index_date: {INDEX}\ninclude:\n  - any_of: [{rule}, {T_RULE}]\n",
    )


@pytest.fixture(params=["rounding", "cell-key"])
def method(request, monkeypatch) -> str:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", request.param)
    return request.param


def with_region(site, region: Region) -> None:
    app = site["app"]
    app.state.config.region = region.path
    app.state.eligibility = RecordsEligibility(region.path)


class Researcher:
    """The attacker: registers one draft study per question and asks its feasibility."""

    def __init__(self, client) -> None:
        self.c = client
        self.refusals: list[dict] = []

    def draft(self, criteria_yaml: str, n: int = 0) -> int:
        data = {k: v for k, v in study_form().items() if not k.startswith("site_")}
        data |= {
            "criteria_yaml": criteria_yaml,
            "title_en": f"Draft {n}",
            "title_sv": f"Utkast {n}",
        }
        data["sites"] = [{"name": "SUS Lund", "municipality_code": "1281"}]
        r = self.c.post("/api/studies", json=data)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def ask(self, criteria_yaml: str, n: int) -> int | None:
        r = self.c.post(f"/api/studies/{self.draft(criteria_yaml, n)}/feasibility", json={})
        if r.status_code == 429:
            self.refusals.append(r.json()["error"])
            return None
        assert r.status_code == 200, r.text
        return r.json()["feasibility"]["count"]["value"]

    def sweep(self) -> list[tuple[int, int]]:
        """The answered (A, B) pairs of the whole sweep x = 30 .. 99."""
        pairs = []
        for x in XS:
            a_yaml, b_yaml = criteria_pair(x)
            a, b = self.ask(a_yaml, 2 * x), self.ask(b_yaml, 2 * x + 1)
            if a is not None and b is not None:
                pairs.append((a, b))
        return pairs


def parse_criteria_yaml(text: str):
    return parse_criteria(yaml.safe_load(text))


def audit_records(site) -> list[dict]:
    path = Path(site["dir"]) / "audit" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_sweep_recovers_the_hidden_count_without_the_guard(tmp_path, method) -> None:
    """The control: every question answered, the mean difference is |T| (the attack is real)."""
    region = write_region(tmp_path / "region", "synthetic")
    diffs = []
    for x in XS:
        a_yaml, b_yaml = criteria_pair(x)
        a, b = (
            feasibility(parse_criteria_yaml(y), region).count["value"] for y in (a_yaml, b_yaml)
        )
        diffs.append(b - a)
    assert abs(mean(diffs) - T_SIZE) < 0.75, mean(diffs)
    t_alone = feasibility(
        parse_criteria_yaml(f"index_date: {INDEX}\ninclude:\n  - {T_RULE}\n"), region
    )
    assert t_alone.count == {"value": None, "display": "<8"}  # the count the policy hides


def test_the_sweep_through_the_web_api_is_refused_and_reported(site, tmp_path, method) -> None:
    region = write_region(tmp_path / "region", "synthetic")
    with_region(site, region)
    settings = QuestionSettings()  # the defaults a deployment gets
    attacker = Researcher(site["client"]("researcher"))
    pairs = attacker.sweep()

    # At most sweep_limit near-identical questions are answered: 3 pairs of the 70 asked.
    assert len(pairs) == settings.sweep_limit // 2 == 3
    assert len(attacker.refusals) == 2 * len(XS) - settings.sweep_limit == 134
    first = attacker.refusals[0]
    assert (
        first["code"] == "too_many_requests"
        and "reported to the research office" in first["message"]
    )
    # Three differences cannot pin |T| down: rounding to 5 makes each one 0 or 5 whether |T|
    # is 1, 2, 3 or 4 (the control needed 70 of them).
    assert all(b - a in (-5, 0, 5) for a, b in pairs) or method == "cell-key"

    # Reported: the research office lists the flag; a researcher may not.
    office = site["client"]("research_office")
    listed = office.get("/api/feasibility/flags").json()["flags"]
    assert [f["asker"] for f in listed] == [f"staff:{site['accounts']['researcher']}"]
    assert listed[0]["reason"] == "sweep" and listed[0]["refusals"] >= 1
    assert attacker.c.get("/api/feasibility/flags").status_code == 403
    flag = listed[0]["id"]
    assert attacker.c.post(f"/api/feasibility/flags/{flag}/reviewed", json={}).status_code == 403
    r = office.post(f"/api/feasibility/flags/{flag}/reviewed", json={})
    assert r.json()["reviewed_by"] == f"staff:{site['accounts']['research_office']}"
    assert office.get("/api/feasibility/flags").json()["flags"] == []
    assert len(office.get("/api/feasibility/flags?reviewed=true").json()["flags"]) == 1

    # Audited: every question, with who asked, the criteria fingerprint and the result class.
    records = audit_records(site)
    asked = [r for r in records if r["action"] == "feasibility.question"]
    refused = [r for r in records if r["action"] == "feasibility.refused"]
    assert len(asked) == 2 * len(pairs) and len(refused) == len(attacker.refusals)
    assert {r["details"]["result"] for r in asked} == {"shown"}
    assert {r["details"]["reason"] for r in refused} >= {"sweep"}
    assert all(len(r["details"]["fingerprint"]) == 64 for r in asked + refused)
    assert not any("HbA1c" in json.dumps(r) or "E10" in json.dumps(r) for r in records)


def test_the_html_page_refuses_in_swedish(site, tmp_path) -> None:
    region = write_region(tmp_path / "region", "synthetic")
    with_region(site, region)
    site["app"].state.questions = QuestionGuard(QuestionSettings(sweep_limit=1))
    researcher = site["client"]("researcher")
    attacker = Researcher(researcher)
    assert attacker.ask(criteria_pair(40)[0], 1) is not None
    study = attacker.draft(criteria_pair(41)[0])
    page = researcher.post(f"/studies/{study}/feasibility")
    assert page.status_code == 429
    assert "forskningskontoret har fått en rapport" in page.text
    researcher.http.cookies.set("lang", "en")
    page = researcher.post(f"/studies/{study}/feasibility")
    assert page.status_code == 429 and "reported to the research office" in page.text


def test_on_a_region_that_is_not_synthetic_answers_are_noisy_cached_and_guarded(
    site, tmp_path
) -> None:
    region = write_region(tmp_path / "region", "omop-import")
    with_region(site, region)
    researcher = site["client"]("researcher")
    attacker = Researcher(researcher)
    study = attacker.draft(criteria_pair(50)[1])
    answers = [
        researcher.post(f"/api/studies/{study}/feasibility", json={}).json() for _ in range(3)
    ]
    first = answers[0]["feasibility"]
    assert first["noise"]["mechanism"] == "laplace" and first["count"]["error95"] > 5
    assert first["count"]["value"] % 10 == 0
    # The same question gets the same answer: asking again and averaging learns nothing.
    assert all(a["feasibility"]["count"] == first["count"] for a in answers)
    assert all(a["feasibility"]["attrition"] == first["attrition"] for a in answers)
    pairs = attacker.sweep()
    assert len(pairs) <= 3 and attacker.refusals
