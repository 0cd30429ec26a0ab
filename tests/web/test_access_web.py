"""Health-data access on the web: the JSON API, the pages for applicants and stewards and the
public register, in process (``tests/web/conftest.py``'s client)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest

from brygga import clock
from brygga.access.review import CHECKLIST
from brygga.db import session as db_session
from brygga.registry import consent
from brygga.registry.models import Resident
from brygga.studies import staff
from brygga.web.app import WebConfig, create_app
from tests.spec.conftest import build_region, event, person
from tests.unit.test_privacy_outputs import small_counts
from tests.web.conftest import PASSWORD, Client

TODAY = clock.today()
CRITERIA = """\
name: Type 2 diabetes
index_date: 2025-06-15
include:
  - condition: {codes: ["E11"], vocabulary: ICD10}
"""
APPLICATION = {
    "title": "Diabetes och hjärta",
    "purpose": "Studera hjärt-kärlhändelser hos personer med typ 2-diabetes i regionen.",
    "purpose_category": "scientific_research",
    "legal_basis": "research_public_interest",
    "ethics_number": "2024-01234-01",
    "criteria_yaml": CRITERIA,
    "variables": ["sex", "conditions"],
    "data_form": "pseudonymised",
    "data_form_reason": "Vi behöver följa samma personer över flera tabeller.",
    "safeguards": "Säker bearbetningsmiljö, ingen samkörning, tystnadsplikt.",
    "period_start": (TODAY - timedelta(days=30)).isoformat(),
    "period_end": (TODAY + timedelta(days=365)).isoformat(),
    "people": ["r1@lu.se"],
    "output_format": "csv",
}


@pytest.fixture
def access_site(tmp_path, monkeypatch, migrated_db):
    """A region of 60 people (40 with type 2 diabetes, 30 donors), two researchers of two
    organizations and two data stewards; the app configured with the region."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    shutil.copy(migrated_db, tmp_path / "brygga.db")
    url = f"sqlite:///{tmp_path / 'brygga.db'}"
    monkeypatch.setenv("BRYGGA_DATABASE_URL", url)
    persons = [
        person(pid, born=date(1950 + pid % 20, 1 + pid % 12, 1),
               sex="female" if pid % 2 else "male", municipality="1280")
        for pid in range(1, 61)
    ]  # fmt: skip
    rows = [event("condition", pid, "E11.9", date(2020, 1, 1)) for pid in range(1, 41)]
    region = build_region(tmp_path / "region", persons, rows)
    with db_session(url) as s:
        uni = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        other = staff.create_organization(s, {"name": "Annan AB", "kind": "company"})
        for email, role, org in (
            ("r1@lu.se", "researcher", uni.id),
            ("r2@annan.se", "researcher", other.id),
            ("s1@region.se", "data_steward", None),
            ("s2@region.se", "data_steward", None),
        ):
            staff.create_staff(s, {"email": email, "display_name": email, "role": role,
                                   "organization_id": org, "password": PASSWORD})  # fmt: skip
        for pid in range(1, 61):
            resident = Resident(person_id=pid, registered_at=clock.now())
            s.add(resident)
            s.flush()
            if pid <= 30:
                version = consent.TEXTS["donate_data"].version
                consent.record_consent(s, resident, "donate_data", True, text_version=version)
    app = create_app(WebConfig(database_url=url, region=region.path))
    clients = []

    def client(email: str | None = None) -> Client:
        c = Client(app)
        clients.append(c)
        if email is not None:
            r = c.post("/login/staff", data={"email": email, "password": PASSWORD})
            assert r.status_code == 303, r.text
        return c

    yield {"client": client, "dir": tmp_path}
    for c in clients:
        c.close()


def approve(**changes):
    return {"decision": "approve", "reasons": "Uppfyller kraven.",
            "checklist": list(CHECKLIST)} | changes  # fmt: skip


def test_api_from_feasibility_to_download(access_site):
    r1 = access_site["client"]("r1@lu.se")
    s1 = access_site["client"]("s1@region.se")
    s2 = access_site["client"]("s2@region.se")
    r2 = access_site["client"]("r2@annan.se")
    seen = []
    answer = r1.post("/api/access/feasibility", json={"criteria_yaml": CRITERIA}).json()
    assert answer["count"] == {"value": 40, "display": "40"}
    donors = r1.post("/api/access/feasibility",
                     json={"criteria_yaml": CRITERIA, "legal_basis": "donation_consent"}).json()  # fmt: skip
    assert donors["count"]["value"] == 30 and donors["donors_only"]
    bad = r1.post("/api/access/feasibility", json={"criteria_yaml": "include: [{x: 1}]"})
    assert bad.status_code == 422 and "criteria_yaml" in bad.json()["error"]["fields"]
    created = r1.post("/api/access/applications", json=APPLICATION)
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    submitted = r1.post(f"/api/access/applications/{app_id}/submit", json={}).json()
    assert submitted["status"] == "submitted"
    assert r2.get(f"/api/access/applications/{app_id}").status_code == 404
    refused = s1.post(f"/api/access/applications/{app_id}/decision",
                      json=approve(reasons=""))  # fmt: skip
    assert refused.status_code == 422 and "reasons" in refused.json()["error"]["fields"]
    decided = s1.post(f"/api/access/applications/{app_id}/decision", json=approve()).json()
    permit = decided["permit"]["id"]
    extract = s1.post(f"/api/access/permits/{permit}/extract", json={})
    assert extract.status_code == 201, extract.text
    output = extract.json()["id"]
    release = f"/api/access/outputs/{output}/release"
    assert s1.post(release, json={"approve": True}).status_code == 403  # the second person
    assert r1.get(f"/api/access/outputs/{output}/files/person.csv").status_code == 403
    released = s2.post(release, json={"approve": True}).json()
    assert released["status"] == "released"
    got = r1.get(f"/api/access/outputs/{output}/files/person.csv")
    assert got.status_code == 200 and got.text.startswith("person_id,sex")
    assert got.headers["cache-control"] == "no-store"
    assert r2.get(f"/api/access/outputs/{output}/files/person.csv").status_code == 404
    stats = r2.post("/api/access/requests",
                    json={"criteria_yaml": CRITERIA, "tables": [["sex"], ["age_band"]]}).json()  # fmt: skip
    assert stats["total"]["display"] == "40"
    register = access_site["client"]().get("/api/access/register").json()
    assert register["permits"][0]["holder"] == "Lunds universitet"
    seen += [answer, donors, submitted, decided, extract.json(), released, stats, register]
    seen.append(r1.get(f"/api/access/permits/{permit}").json())
    seen.append(s1.get("/api/access/applications").json())
    for document in seen:
        assert small_counts(document) == []


# --- Pages --------------------------------------------------------------------------------


def form(**changes):
    data = dict(APPLICATION) | changes
    data["people"] = (
        "\n".join(data["people"]) if isinstance(data["people"], list) else data["people"]
    )
    return data


@pytest.mark.slow  # about 3 s: the whole flow through the pages
def test_pages_for_applicant_and_stewards(access_site):
    r1 = access_site["client"]("r1@lu.se")
    s1 = access_site["client"]("s1@region.se")
    s2 = access_site["client"]("s2@region.se")
    page = r1.get("/access/new")
    assert page.status_code == 200 and "<title>Ny ansökan om data – Brygga</title>" in page.text
    # The cohort's disclosed size before applying; the form keeps what was typed.
    shown = r1.post("/access/new", data=form(action="feasibility", title="Mitt projekt"))
    assert shown.status_code == 200
    assert "40 personer den 2025-06-15." in shown.text and 'value="Mitt projekt"' in shown.text
    # Errors re-render the form with each field's message, in Swedish.
    bad = r1.post("/access/new", data=form(action="save", ethics_number="2024-1", title=""))
    assert bad.status_code == 422
    assert 'href="#ethics_number"' in bad.text and 'href="#title"' in bad.text
    assert (
        "skriv etikgodkännandets" in bad.text.lower()
        or "ÅÅÅÅ" in bad.text
        or "2024-01234-01" in bad.text
    )
    assert "måste fyllas i" in bad.text
    done = r1.post("/access/new", data=form(action="submit"))
    assert done.status_code == 303, done.text
    url = done.headers["location"]
    app_page = r1.get(url)
    assert "Inskickad" in app_page.text and "40 personer" in app_page.text
    listing = s1.get("/access")
    assert listing.status_code == 200 and "Diabetes och hjärta" in listing.text
    # The steward's decision: an incomplete checklist comes back with its error.
    app_id = url.rsplit("/", 1)[1]
    partial = s1.post(f"/access/applications/{app_id}/decision",
                      data={"decision": "approve", "reasons": "Ok.", "checklist": ["purpose_permitted"]})  # fmt: skip
    assert partial.status_code == 422 and 'href="#checklist"' in partial.text
    assert "alla punkter i checklistan" in partial.text
    decided = s1.post(f"/access/applications/{app_id}/decision",
                      data={"decision": "approve", "reasons": "Uppfyller kraven.",
                            "checklist": list(CHECKLIST), "extracts": "true"})  # fmt: skip
    assert decided.status_code == 303
    assert "Beviljad" in s1.get(url).text
    permit = s1.get(url).text.split('action="/access/permits/')[1].split("/")[0]
    made = s1.post(f"/access/permits/{permit}/extract")
    assert made.status_code == 303
    page = s1.get(url).text
    assert "Kontrollerad, väntar på granskning" in page
    assert 'action="/access/outputs/' not in page  # the maker does not review their own
    page = s2.get(url).text
    assert 'action="/access/outputs/' in page
    output = page.split('action="/access/outputs/')[1].split("/")[0]
    refused = s2.post(f"/access/outputs/{output}/release", data={"decision": "refuse"})
    assert refused.status_code == 422 and f'href="#reason-{output}"' in refused.text
    released = s2.post(f"/access/outputs/{output}/release", data={"decision": "release"})
    assert released.status_code == 303
    page = r1.get(url).text
    assert "Utlämnad" in page and f"/access/outputs/{output}/files/person.csv" in page
    assert r1.get(f"/access/outputs/{output}/files/person.csv").status_code == 200
    # Revoking needs a reason (the form comes back with it), then nothing more downloads.
    missing = s1.post(f"/access/permits/{permit}/revoke", data={"revoke_reason": ""})
    assert missing.status_code == 422 and 'href="#revoke_reason"' in missing.text
    revoked = s1.post(f"/access/permits/{permit}/revoke", data={"revoke_reason": "Villkor."})
    assert revoked.status_code == 303 and "Återkallat" in s1.get(url).text
    assert r1.get(f"/access/outputs/{output}/files/person.csv").status_code == 403
    register = access_site["client"]().get("/data/tillstand")
    assert register.status_code == 200 and "Lunds universitet" in register.text
    assert "r1@lu.se" not in register.text
    english = access_site["client"]()
    english.get("/lang/en")
    assert "Granted health-data permits" in english.get("/data/tillstand").text


def test_data_request_page(access_site):
    r2 = access_site["client"]("r2@annan.se")
    page = r2.get("/access/request")
    assert page.status_code == 200 and "<title>Begär statistik – Brygga</title>" in page.text
    empty = r2.post("/access/request", data={"criteria_yaml": CRITERIA})
    assert empty.status_code == 422 and "välj minst en tabell" in empty.text
    answer = r2.post("/access/request", data={"criteria_yaml": CRITERIA,
                                              "tables": ["sex", "age_band,sex", "municipality"]})  # fmt: skip
    assert answer.status_code == 200
    assert "40 personer den 2025-06-15" in answer.text
    assert (
        "Efter åldersgrupp × kön" in answer.text.lower() or "Efter Åldersgrupp × Kön" in answer.text
    )
    assert "Kvinnor" in answer.text and "Malmö" in answer.text and "&lt;8" in answer.text
