"""The public e-service: the study catalogue, a study's page, "Anmäl intresse", the information
pages, the resident's confirmations and consent receipt, and the self-check."""

from __future__ import annotations

import re

from sqlalchemy import select

from brygga.db import session as db_session
from brygga.registry import service
from brygga.registry.models import Resident
from brygga.studies import registration, staff
from brygga.studies.models import Invitation, Study
from tests.web.conftest import study_form

CRITERIA = """
demographics: {age: {min: 40, max: 75}, sex: [female]}
include:
  - condition: {codes: [E11], vocabulary: ICD10, within: {days_before: 3650}}
  - measurement: {codes: [HbA1c], value: {min: 53}, latest: true}
exclude:
  - condition: {codes: [I21], vocabulary: ICD10}
  - visit: {types: [inpatient], within: {days_before: 30}}
"""


def approve(site, **kw) -> int:
    with db_session(site["url"]) as s:
        researcher = staff.get(s, site["accounts"]["researcher"])
        office = staff.get(s, site["accounts"]["research_office"])
        form = study_form(**kw)
        data = {k: v for k, v in form.items() if not k.startswith("site_")}
        data["sites"] = [{"name": "Vårdcentralen Hjärup", "municipality_code": "1231"}]
        study = registration.create_study(s, researcher, data)
        registration.submit(s, researcher, study)
        registration.review(s, office, study, approve=True)
        return study.id


def test_catalogue_lists_recruiting_studies_and_filters(site):
    other = approve(site, title_sv="Sömn och hjärta", title_en="Sleep and heart",
                    area="cardiovascular", criteria_yaml=CRITERIA, healthy_volunteers="true")  # fmt: skip
    c = site["client"]()
    page = c.get("/studier").text
    assert "Metformin och minne" in page and "Sömn och hjärta" in page
    assert "<title>Hitta studier – Brygga</title>" in page
    assert "Burlöv" in page  # municipality names, not codes
    assert "Metformin och minne" not in c.get("/studier?q=sömn").text
    assert "Sömn och hjärta" not in c.get("/studier?area=diabetes").text
    assert "Metformin och minne" not in c.get("/studier?healthy=yes").text
    assert "Sömn och hjärta" not in c.get("/studier?sex=male").text
    assert "Sömn och hjärta" not in c.get("/studier?age=30").text
    assert "Sömn och hjärta" in c.get("/studier?age=50&sex=female").text
    assert "Metformin och minne" in c.get("/studier?condition=t2d").text  # the criteria ask for E11
    assert "Metformin och minne" not in c.get("/studier?condition=asthma").text
    assert "Metformin och minne" not in c.get("/studier?municipality=1231").text
    bad = c.get("/studier?age=abc")
    assert bad.status_code == 422 and "måste vara ett heltal" in bad.text
    partial = c.get("/studier?q=sömn", headers={"HX-Request": "true"})
    assert (
        partial.status_code == 200
        and "<html" not in partial.text
        and "Sömn och hjärta" in partial.text
    )
    assert other


def test_study_page_says_who_can_take_part_in_plain_words(site):
    study_id = approve(
        site, criteria_yaml=CRITERIA, visits="4", duration_weeks="12",
        compensation_sv="500 kronor per besök", compensation_en="SEK 500 per visit",
        contact_role="Forskningssjuksköterska", contact_email="studie@sus.example",
        contact_phone="046-17 10 00",
    )  # fmt: skip
    c = site["client"]()
    page = c.get(f"/studier/{study_id}").text
    for text in ("du är mellan 40 och 75 år", "du är kvinna", "typ 2-diabetes",
                 "under de senaste 10 åren", "ditt senaste långtidssocker (HbA1c) är minst 53 mmol/mol",
                 "du har eller har haft hjärtinfarkt", "fler medicinska villkor",
                 "4 besök", "ungefär 3 månader", "500 kronor per besök", "Forskningssjuksköterska",
                 "mailto:studie@sus.example", "2024-01234-01", "Burlöv",
                 "/login?next=/studier/"):  # fmt: skip
        assert text in page, text
    assert "E11" not in page and "ICD10" not in page and "include:" not in page
    c.get("/lang/en")
    english = c.get(f"/studier/{study_id}").text
    assert "you are between 40 and 75 years old" in english and "about 3 months" in english


def test_drafts_are_not_public(site):
    with db_session(site["url"]) as s:
        researcher = staff.get(s, site["accounts"]["researcher"])
        data = {k: v for k, v in study_form().items() if not k.startswith("site_")}
        data["sites"] = [{"name": "SUS", "municipality_code": "1281"}]
        draft = registration.create_study(s, researcher, data).id
    c = site["client"]()
    assert c.get(f"/studier/{draft}").status_code == 404
    assert "Metformin och minne" in c.get("/studier").text  # the approved one only, once
    assert c.get("/studier").text.count("Metformin och minne") == 1


def test_interest_without_invitation_asks_for_contact_consent(site):
    study_id = approve(site, title_sv="Egen anmälan", title_en="Own registration")
    # A registered resident without the contact consent.
    person = site["people"][3]
    with db_session(site["url"]) as s:
        resident = service.register(s, service.by_personnummer(s, person["personnummer"]))
        ref = resident.ref
    c = site["client"]()
    page = c.get(f"/studier/{study_id}/intresse", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    c.post("/login/demo", data={"ref": ref, "next": f"/studier/{study_id}/intresse"})
    form = c.get(f"/studier/{study_id}/intresse")
    assert "Kontakt om studier" in form.text
    refused = c.post(f"/studier/{study_id}/intresse", data={"text_version": "2026-1"})
    assert refused.status_code == 422 and "Kryssa i rutan" in refused.text
    with db_session(site["url"]) as s:
        assert s.scalar(select(Invitation).where(Invitation.study_id == study_id)) is None
    done = c.post(f"/studier/{study_id}/intresse", data={"contact": "yes", "text_version": "2026-1"},
                  follow_redirects=False)  # fmt: skip
    assert done.headers["location"] == f"/studier/{study_id}/anmald"
    confirmation = c.get(done.headers["location"]).text
    assert "Din intresseanmälan är skickad" in confirmation and "Egen anmälan" in confirmation
    with db_session(site["url"]) as s:
        inv = s.scalar(select(Invitation).where(Invitation.study_id == study_id,
                                                Invitation.resident_id == resident.id))  # fmt: skip
        assert inv.status == "interested" and inv.basis == "own_initiative"
        assert s.get(Resident, resident.id).consent("contact") is not None
    # The team sees the volunteer now (and only the interested one).
    team = site["client"]("researcher").get(f"/studies/{study_id}/contacts").text
    assert person["family_name"] in team


def test_interest_logged_in_before_joining_joins(site):
    study_id = approve(site)
    person = site["people"][5]
    with db_session(site["url"]) as s:
        ref = service.by_personnummer(s, person["personnummer"]).ref
    c = site["client"]()
    c.post("/login/demo", data={"ref": ref})
    assert "går du också med i Brygga" in c.get(f"/studier/{study_id}/intresse").text
    r = c.post(f"/studier/{study_id}/intresse", data={"contact": "yes", "text_version": "2026-1"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text


def test_invitation_links_to_study_page_and_interest_confirms(site):
    c = site["client"]("resident")
    study_id = site["ids"]["study"]
    c.post(
        "/portal/profile", data={"conditions": "t2d", "contact_channel": "in_app", "language": "sv"}
    )
    portal = c.get("/portal").text
    assert f'href="/studier/{study_id}"' in portal
    page = c.get(f"/studier/{study_id}").text
    assert "Din inbjudan" in page
    invitation = int(re.search(r'action="/portal/invitations/(\d+)"', page).group(1))
    r = c.post(
        f"/portal/invitations/{invitation}", data={"answer": "interested"}, follow_redirects=False
    )
    assert r.headers["location"] == f"/studier/{study_id}/anmald"
    assert "Din intresseanmälan är skickad" in c.get(r.headers["location"]).text


def test_confirmations_after_pause_withdrawal_and_deletion(site):
    c = site["client"]("resident")
    r = c.post("/portal/pause", data={"paused": "yes"}, follow_redirects=True)
    assert "Ditt deltagande är pausat" in r.text
    r = c.post("/portal/pause", data={"paused": "no"}, follow_redirects=True)
    assert "återupptaget" in r.text
    r = c.post(
        "/portal/consent/contact",
        data={"action": "withdraw", "text_version": "2026-1"},
        follow_redirects=True,
    )
    assert "Du har återkallat samtycket: Kontakt om studier" in r.text
    r = c.post(
        "/portal/consent/contact",
        data={"action": "grant", "text_version": "2026-1"},
        follow_redirects=True,
    )
    assert "Du har gett samtycket: Kontakt om studier" in r.text
    receipt = c.get("/portal/samtycken").text
    assert "version 1 av texten från 2026" in receipt and "2026-1" not in receipt
    assert "Återkallade samtycket" in receipt
    r = c.post("/portal/delete", data={"confirm": "yes"}, follow_redirects=True)
    assert "Ditt konto är borttaget" in r.text


def test_information_pages(site):
    c = site["client"]()
    for path, words in (
        ("/", ("Vad är en klinisk studie?", "Så fungerar matchningen", "Vanliga frågor")),
        ("/om", ("Om Brygga",)),
        ("/kontakt", ("1177",)),
        ("/om-personuppgifter", ("Personuppgiftsansvarig", "dataskyddsombud", "Integritetsskyddsmyndigheten")),
        ("/cookies", ("brygga_session", "brygga_csrf", "lang")),
        ("/tillganglighet", ("Hur tillgänglig är webbplatsen?",
                             "Vad kan du göra om du inte kan använda delar av webbplatsen?",
                             "Rapportera brister i webbplatsens tillgänglighet", "Tillsyn",
                             "Teknisk information om webbplatsens tillgänglighet",
                             "Innehåll som inte är tillgängligt", "Hur vi testat webbplatsen",
                             "axe-core", "Chromium")),
    ):  # fmt: skip
        r = c.get(path)
        assert r.status_code == 200, path
        for w in words:
            assert w in r.text, (path, w)


def test_selfcheck_gives_a_plain_result_and_offers_the_prevention_consent(site):
    answers = {"age": "58", "sex": "female", "height_cm": "165", "weight_kg": "80",
               "waist_cm": "92", "active": "no", "vegetables": "yes", "bp_medication": "yes",
               "high_glucose": "no", "family": "second-degree"}  # fmt: skip
    c = site["client"]()
    missing = c.post("/egenkontroll", data={"age": "58"})
    assert missing.status_code == 422 and "måste fyllas i" in missing.text
    r = c.post("/egenkontroll", data=answers)
    # age 3, BMI 29.4 -> 1, waist > 88 -> 4, inactive 2, vegetables 0, bp 2, glucose 0, family 3
    assert "15 av 26 poäng" in r.text and "Hög risk" in r.text and "1 av 3" in r.text
    assert "/login?next=/egenkontroll" in r.text
    resident = site["client"]("resident")
    r = resident.post("/egenkontroll", data=answers)
    assert 'action="/portal/consent/prevention_invite"' in r.text
    r = resident.post(
        "/portal/consent/prevention_invite",
        data={"action": "grant", "text_version": "2026-1"},
        follow_redirects=True,
    )
    assert "Inbjudan till förebyggande program" in r.text
    assert "redan samtyckt" in resident.post("/egenkontroll", data=answers).text


def test_staff_form_takes_the_new_fields(site):
    c = site["client"]("researcher")
    form = study_form(visits="x", contact_email="nope")
    r = c.post("/studies", data=form)
    assert r.status_code == 422
    assert "måste vara ett heltal" in r.text and "skriv en e-postadress" in r.text
    r = c.post(
        "/studies", data=study_form(visits="3", contact_email="a@b.se"), follow_redirects=False
    )
    assert r.status_code == 303
    with db_session(site["url"]) as s:
        study = s.scalars(select(Study).order_by(Study.id.desc())).first()
        assert study.visits == 3 and study.contact_email == "a@b.se"


def test_the_catalogue_shows_a_study_as_soon_as_it_is_approved(site):
    c = site["client"]()
    assert "Nyss godkänd" not in c.get("/studier").text  # the listing is now cached
    approve(site, title_sv="Nyss godkänd", title_en="Just approved")
    assert "Nyss godkänd" in c.get("/studier").text


def test_contact_addresses_are_settings_and_the_demo_sets_its_examples(site, monkeypatch):
    """No made-up address on a deployment's pages: the region's addresses come from
    BRYGGA_CONTACT_*; a line whose address is not set is left out; the demo passes its
    example addresses (region.example)."""
    from brygga.config import ContactSettings
    from brygga.demo import DEMO_CONTACT, demo_contact

    c = site["client"]()
    unset = c.get("/kontakt").text + c.get("/tillganglighet").text
    assert "region.example" not in unset and "{email}" not in unset and "1177" in unset
    site["app"].state.config.contact = ContactSettings(
        email="brygga@region-x.se", phone="010-123 45 67", dpo_email="dso@region-x.se"
    )
    contact = c.get("/kontakt").text
    assert "brygga@region-x.se" in contact and "010-123 45 67" in contact
    assert "dso@region-x.se" in contact and "Skriftligen" not in contact  # no postal address
    a11y = c.get("/tillganglighet").text
    assert "e-post brygga@region-x.se eller telefon 010-123 45 67" in a11y
    # The demo: its examples, except where the settings give an address.
    monkeypatch.setenv("BRYGGA_CONTACT_DPO_EMAIL", "dso@region-x.se")
    from brygga.config import clear_settings_cache

    clear_settings_cache()
    try:
        demo = demo_contact()
    finally:
        monkeypatch.delenv("BRYGGA_CONTACT_DPO_EMAIL")
        clear_settings_cache()
    assert demo.dpo_email == "dso@region-x.se" and demo.email == DEMO_CONTACT.email
    site["app"].state.config.contact = demo
    privacy = c.get("/om-personuppgifter", headers={"Cookie": "lang=en"}).text
    assert "brygga@region.example" in privacy and "dso@region-x.se" in privacy


def test_kept_public_pages_carry_each_visitors_own_token_and_never_a_login(site):
    """The catalogue and study pages are kept for visitors not logged in (web/page_cache.py):
    each copy must carry that visitor's CSRF token, and a logged-in resident's page (which
    shows their invitation) must never be served from, or put into, the kept pages."""
    study = site["ids"]["study"]
    pages = site["app"].state.pages
    first, second = site["client"](), site["client"]()
    for path in ("/studier", f"/studier/{study}", "/studier?q=diabetes"):
        a, b = first.get(path), second.get(path)
        assert a.status_code == b.status_code == 200
        token_a, token_b = (c.http.cookies["brygga_csrf"] for c in (first, second))
        assert token_a != token_b
        assert token_a in a.text and token_b not in a.text
        assert token_b in b.text and token_a not in b.text
        assert pages.sentinel not in a.text + b.text
    kept = len(pages)
    assert kept == 3
    resident = site["client"]("resident")
    page = resident.get(f"/studier/{study}").text
    assert "Logga ut" in page and "Logga ut" not in first.get(f"/studier/{study}").text
    assert len(pages) == kept
    # A search with a field error is shown, not kept.
    assert first.get("/studier?age=abc").status_code == 422
    assert len(pages) == kept


def test_a_study_approved_by_another_process_shows_within_the_check_interval(site, monkeypatch):
    """The catalogue's version is read at most once per ``CHECK_SECONDS`` (not on every view);
    a status changed in this process is seen at once (the approve() above), one changed by
    another process (here: plain SQL, no ORM event) within the interval."""
    import sqlite3
    import time

    from brygga.studies import catalogue

    monkeypatch.setattr(catalogue, "CHECK_SECONDS", 1.0)
    c = site["client"]()
    study = approve(site, title_sv="Annan process", title_en="Another process")
    assert "Annan process" in c.get("/studier").text
    db = sqlite3.connect(site["url"].removeprefix("sqlite:///"))
    with db:
        db.execute("UPDATE study SET status = 'rejected' WHERE id = ?", (study,))
    db.close()
    assert "Annan process" in c.get("/studier").text  # read less than a second ago: kept
    time.sleep(1.1)
    assert "Annan process" not in c.get("/studier").text
