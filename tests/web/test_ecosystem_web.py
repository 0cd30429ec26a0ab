"""The ecosystem front door on the web: the public directory and entry pages (no log-in),
needs -> offerings -> inquiries -> provider inbox -> Mina ärenden, and the JSON API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from brygga import clock
from brygga.db import session as db_session
from brygga.ecosystem.models import Entry
from brygga.ecosystem.service import Ecosystem


@pytest.fixture
def eco_site(site):
    Ecosystem(site["url"]).seed(actor="test")
    # Lunds universitet (the site's organization) answers for LU Innovation.
    with db_session(site["url"]) as s:
        org = s.execute(
            update(Entry).where(Entry.slug == "lu-innovation").values(organization_id=1)
        )
        assert org.rowcount == 1
    return site


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def test_the_directory_is_public_with_filters_and_a_page_per_entry(eco_site):
    c = eco_site["client"]()
    page = c.get("/ekosystem")
    assert page.status_code == 200
    assert title(page.text) == "Vägen in: aktörer, infrastrukturer och stöd – Brygga"
    assert "MAX IV" in page.text and "Karolinska Trial Alliance (KTA)" in page.text
    infra = c.get("/ekosystem", params={"typ": "infrastructure", "region": "skane"})
    assert "MAX IV" in infra.text and "Karolinska Trial Alliance" not in infra.text
    found = c.get("/ekosystem", params={"q": "neutronspridning"})
    links = re.findall(r'href="/ekosystem/([a-z0-9-]+)"', found.text)
    assert links[0] == "ess" and "max-iv" not in links
    entry = c.get("/ekosystem/max-iv")
    assert entry.status_code == 200 and title(entry.text) == "MAX IV – Brygga"
    assert "Självkostnadspris" in entry.text and "Användarkontor" in entry.text
    assert "rontgenteknik mgjliggor" in entry.text  # the cited passage, as printed
    assert "cost_based" not in entry.text  # enums through the catalogue
    c.http.cookies.set("lang", "en")
    english = c.get("/ekosystem/max-iv")
    assert "At cost" in english.text and "User office" in english.text
    assert c.get("/ekosystem/no-such-entry").status_code == 404


def test_need_to_inquiry_to_answer_to_my_cases(eco_site):
    requester = eco_site["client"]("outsider")  # a researcher at another organization
    empty = requester.post("/ekosystem-behov", data={"title": "", "description": ""})
    assert empty.status_code == 422 and "govuk-error-summary" in empty.text
    assert "måste fyllas i" in empty.text
    made = requester.post(
        "/ekosystem-behov",
        data={"title": "Patent och kommersialisering",
              "description": "Jag vill kommersialisera ett forskningsresultat och söka patent.",
              "region": "skane", "languages": "sv"},
    )  # fmt: skip
    assert made.status_code == 303
    need_url = made.headers["location"]
    page = requester.get(need_url)
    assert page.status_code == 200 and 'value="lu-innovation"' in page.text
    assert "Beskrivningen matchar" in page.text or "Namnet matchar" in page.text
    nothing = requester.post(f"{need_url}/forfragan", data={"message": "Hej"})
    assert nothing.status_code == 422 and "välj minst en aktör" in nothing.text
    sent = requester.post(
        f"{need_url}/forfragan",
        data={"entries": ["lu-innovation", "max-iv"], "message": "Kan ni hjälpa oss?"},
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/ekosystem-arenden"
    again = requester.get(need_url)
    assert re.search(r'value="lu-innovation" disabled', again.text)  # asked once per need
    assert (
        requester.post(
            f"{need_url}/forfragan", data={"entries": ["max-iv"], "message": "x"}
        ).status_code
        == 400
    )

    provider = eco_site["client"]("researcher")  # Lunds universitet
    inbox = provider.get("/ekosystem-inkorg")
    assert "Patent och kommersialisering" in inbox.text and "Kan ni hjälpa oss?" in inbox.text
    recipient = re.search(r'action="/ekosystem-inkorg/(\d+)"', inbox.text).group(1)
    missing = provider.post(f"/ekosystem-inkorg/{recipient}", data={"decision": "declined"})
    assert missing.status_code == 422 and "skriv varför ni avböjer" in missing.text
    assert (
        requester.post(
            f"/ekosystem-inkorg/{recipient}", data={"decision": "interested"}
        ).status_code
        == 403
    )
    done = provider.post(
        f"/ekosystem-inkorg/{recipient}",
        data={"decision": "declined", "reason": "Inte vårt område"},
    )
    assert done.status_code == 303

    cases = requester.get("/ekosystem-arenden")
    assert title(cases.text) == "Mina ärenden – Brygga"
    assert "Avböjt" in cases.text and "Inte vårt område" in cases.text
    assert "Väntar på svar" in cases.text  # MAX IV: the office has not answered
    inquiry = re.search(r'action="/ekosystem-arenden/(\d+)/resultat"', cases.text).group(1)
    assert (
        requester.post(
            f"/ekosystem-arenden/{inquiry}/resultat", data={"outcome": "study_started"}
        ).status_code
        == 303
    )
    assert 'value="study_started" selected' in requester.get("/ekosystem-arenden").text
    api = requester.get("/api/ecosystem/cases").json()
    assert {r["entry"]: r["status"] for r in api[0]["recipients"]} == {
        "lu-innovation": "declined", "max-iv": "sent"
    }  # fmt: skip


def test_the_json_api(eco_site):
    c = eco_site["client"]()
    listed = c.get("/api/ecosystem", params={"type": "testbed"}).json()
    assert {"lu-pregmp", "medtechlabs"} <= {e["id"] for e in listed}
    assert all(e["type"] == "testbed" for e in listed)
    assert c.get("/api/ecosystem/entries/ess").json()["name"] == "European Spallation Source (ESS)"
    ranked = c.post(
        "/api/ecosystem/match",
        json={"title": "GMP", "description": "GMP-tillverkning av cellterapi"},
    ).json()
    assert ranked[0]["id"] in {"atmp-centrum-gmp", "karolinska-centrum-for-cellterapi"}
    assert set(ranked[0]) >= {"id", "name", "type", "score", "reasons"}
    bad = c.post("/api/ecosystem/match", json={"title": "x", "description": "y", "trl": 12})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert c.get("/api/ecosystem/cases").status_code == 401


def test_site_feasibility_through_the_api(eco_site):
    sponsor = eco_site["client"]("outsider")
    need = sponsor.post(
        "/api/ecosystem/needs",
        json={"title": "Fas 3 diabetes", "description": "Platser för en prövning."},
    )
    assert need.status_code == 201
    need_id = need.json()["id"]
    form = {
        "protocol_title": "Drug X in type 2 diabetes", "sponsor": "Annat AB", "phase": "3",
        "therapy_area": "diabetes", "indication": "Type 2 diabetes", "sites_wanted": 2,
        "participants_sweden": 30, "first_participant": "2027-01-15", "recruitment_months": 12,
        "key_inclusion": "Age 40-75",
    }  # fmt: skip
    bad = sponsor.post(f"/api/ecosystem/needs/{need_id}/inquiries",
                       json={"entries": ["lu-innovation"], "message": "Hej", "feasibility": form | {"phase": "9"}})  # fmt: skip
    assert bad.status_code == 422 and "feasibility.phase" in str(bad.json()["error"]["fields"])
    sent = sponsor.post(f"/api/ecosystem/needs/{need_id}/inquiries",
                        json={"entries": ["lu-innovation", "kss-syd"], "message": "Kan ni delta?", "feasibility": form})  # fmt: skip
    assert sent.status_code == 201, sent.text
    case = sent.json()
    assert case["kind"] == "site_feasibility" and case["data"] == {}  # no region configured

    site = eco_site["client"]("researcher")  # Lunds universitet answers for LU Innovation
    (row,) = [r for r in site.get("/api/ecosystem/inbox").json() if r["entry"] == "lu-innovation"]
    assert row["form"]["participants_sweden"] == 30
    no_estimate = site.post(
        f"/api/ecosystem/inbox/{row['recipient']}", json={"decision": "interested"}
    )
    assert no_estimate.status_code == 422
    ok = site.post(f"/api/ecosystem/inbox/{row['recipient']}",
                   json={"decision": "interested", "estimate": {"participants": 18, "competing_studies": 2}})  # fmt: skip
    assert ok.json() == {"recipient": row["recipient"], "status": "interested"}

    milestone = sponsor.request("PUT", f"/api/ecosystem/inquiries/{case['inquiry']}/milestones/approval",
                                json={"date": "2026-12-01"},
                                headers={"X-CSRF-Token": sponsor.http.cookies["brygga_csrf"]})  # fmt: skip
    assert milestone.json() == {"approval": "2026-12-01"}
    view = sponsor.get(f"/api/ecosystem/inquiries/{case['inquiry']}").json()
    assert view["collated"]["estimated_participants"] == 18
    assert view["collated"]["pending"][0]["site"].startswith("Kliniska Studier Sverige")
    assert site.get(f"/api/ecosystem/inquiries/{case['inquiry']}").status_code == 404
    sites = sponsor.get("/api/ecosystem/sites", params={"area": "diabetes"}).json()
    assert "kss-syd" in {s["id"] for s in sites}
    page = sponsor.get("/ekosystem-arenden")
    assert "Förfrågan om genomförbarhet" in page.text
    assert "Samlat svar: 1 av 2 tillfrågade platser är intresserade" in page.text
    assert "Godkännande: 2026-12-01" in page.text
    office = eco_site["client"]("research_office")  # answers for the KSS node (no organization)
    inbox = office.get("/ekosystem-inkorg")
    assert (
        "Hur många deltagare kan ni rekrytera?" in inbox.text
        and "Drug X in type 2 diabetes" in inbox.text
    )
    kss = re.search(r'action="/ekosystem-inkorg/(\d+)"', inbox.text).group(1)
    missing = office.post(f"/ekosystem-inkorg/{kss}", data={"decision": "interested"})
    assert missing.status_code == 422 and "govuk-error-summary" in missing.text
    done = office.post(
        f"/ekosystem-inkorg/{kss}", data={"decision": "interested", "participants": "15"}
    )
    assert done.status_code == 303
    assert sponsor.get(f"/api/ecosystem/inquiries/{case['inquiry']}").json()["collated"]["enough"]


def test_a_testbed_slot_is_booked_and_confirmed_on_the_web(eco_site):
    provider = eco_site["client"]("researcher")  # Lunds universitet
    with db_session(eco_site["url"]) as s:
        s.execute(update(Entry).where(Entry.slug == "lu-pregmp").values(organization_id=1))
    start = clock.today() + timedelta(days=20)
    own = provider.get("/ekosystem/lu-pregmp")
    assert "Publicera en ledig tid" in own.text
    assert (
        "Publicera en ledig tid"
        not in eco_site["client"]("outsider").get("/ekosystem/lu-pregmp").text
    )
    wrong = provider.post(
        "/ekosystem/lu-pregmp/tider", data={"starts_on": start.isoformat(), "ends_on": "x"}
    )
    assert wrong.status_code == 422 and 'id="ends_on-error"' in wrong.text
    via_web = provider.post("/ekosystem/lu-pregmp/tider",
                            data={"starts_on": (start + timedelta(days=60)).isoformat(),
                                  "ends_on": (start + timedelta(days=61)).isoformat()})  # fmt: skip
    assert via_web.status_code == 303
    added = provider.post("/api/ecosystem/entries/lu-pregmp/slots",
                          json={"starts_on": start.isoformat(), "ends_on": (start + timedelta(days=10)).isoformat(), "note": "Renrum"})  # fmt: skip
    assert added.status_code == 201, added.text
    public = eco_site["client"]()
    page = public.get("/ekosystem/lu-pregmp")
    assert "Lediga tider" in page.text and "Renrum" in page.text and "disabled" in page.text
    requester = eco_site["client"]("outsider")
    empty = requester.post("/ekosystem/lu-pregmp/bokning", data={"message": "Test"})
    assert empty.status_code == 422 and "välj en tid" in empty.text
    slot = added.json()["slot"]
    booked = requester.post(
        "/ekosystem/lu-pregmp/bokning", data={"slot": str(slot), "message": "Processutveckling"}
    )
    assert booked.status_code == 303
    inbox = provider.get("/ekosystem-inkorg")
    booking = re.search(r'action="/ekosystem-bokningar/(\d+)"', inbox.text).group(1)
    no_reason = provider.post(f"/ekosystem-bokningar/{booking}", data={"decision": "declined"})
    assert no_reason.status_code == 422 and "skriv varför ni avböjer" in no_reason.text
    assert (
        provider.post(f"/ekosystem-bokningar/{booking}", data={"decision": "confirmed"}).status_code
        == 303
    )
    cases = requester.get("/ekosystem-arenden")
    assert "Bokningar" in cases.text and "Bekräftad" in cases.text
    slots = public.get("/api/ecosystem/entries/lu-pregmp/slots").json()
    assert [x["taken"] for x in slots] == [True, False]  # the web-published one is later


def test_a_site_feasibility_inquiry_from_the_need_page(eco_site):
    sponsor = eco_site["client"]("outsider")
    made = sponsor.post(
        "/ekosystem-behov",
        data={"title": "Kliniska prövningsplatser", "description": "Klinisk prövning i diabetes."},
    )
    need_url = made.headers["location"]
    assert "Det här är en förfrågan om genomförbarhet" in sponsor.get(need_url).text
    base = {"entries": ["kss-syd"], "message": "Kan ni delta?", "kind": "site_feasibility"}
    partial = sponsor.post(
        f"{need_url}/forfragan", data=base | {"protocol_title": "Drug X", "phase": "3"}
    )
    assert partial.status_code == 422
    assert 'id="sponsor-error"' in partial.text and 'value="Drug X"' in partial.text  # kept
    form = {"protocol_title": "Drug X", "sponsor": "Annat AB", "phase": "3", "therapy_area": "diabetes",
            "indication": "Typ 2-diabetes", "sites_wanted": "2", "participants_sweden": "30",
            "first_participant": "2027-01-15", "recruitment_months": "12", "key_inclusion": "40-75 år"}  # fmt: skip
    bad_date = sponsor.post(
        f"{need_url}/forfragan", data=base | form | {"first_participant": "15/1"}
    )
    assert bad_date.status_code == 422 and "ÅÅÅÅ-MM-DD" in bad_date.text
    sent = sponsor.post(f"{need_url}/forfragan", data=base | form)
    assert sent.status_code == 303
    cases = sponsor.get("/ekosystem-arenden").text
    assert "Förfrågan om genomförbarhet" in cases and "Samlat svar: 0 av 1" in cases


def test_a_protected_overlap_reads_in_the_page_language(eco_site, monkeypatch):
    """An overlap the release gate hides to protect a few people left out (``suppressed``)
    is shown in words of the page's language, not as the raw marker."""
    brygga = eco_site["app"].state.brygga
    data = {
        "region": "skane",
        "eligible": {"value": 20, "display": "20"},
        "volunteers": {"value": 10, "display": "10"},
        "overlapping_studies": [
            {
                "study": 1,
                "title_sv": "Studie A",
                "title_en": "Study A",
                "overlap": {"value": None, "display": "suppressed"},
            },
        ],
        "disclosure": "counts 1-7 suppressed, exact",
    }
    monkeypatch.setattr(type(brygga), "feasibility_data", lambda *_a, **_k: data)
    eco_site["app"].state.config.region = eco_site["dir"]  # any region: the figures are faked
    sponsor = eco_site["client"]("outsider")
    made = sponsor.post(
        "/ekosystem-behov",
        data={"title": "Kliniska prövningsplatser", "description": "Klinisk prövning i diabetes."},
    )
    form = {"entries": ["kss-syd"], "message": "Kan ni delta?", "kind": "site_feasibility",
            "protocol_title": "Drug X", "sponsor": "Annat AB", "phase": "3",
            "therapy_area": "diabetes", "indication": "Typ 2-diabetes", "sites_wanted": "2",
            "participants_sweden": "30", "first_participant": "2027-01-15",
            "recruitment_months": "12", "key_inclusion": "40-75 år",
            "criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n"}  # fmt: skip
    sent = sponsor.post(f"{made.headers['location']}/forfragan", data=form)
    assert sent.status_code == 303, sent.text
    cases = sponsor.get("/ekosystem-arenden").text
    assert "Studie A”: dold (skyddar ett litet antal)" in cases and "suppressed" not in cases
