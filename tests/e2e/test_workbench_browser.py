"""The workbench end to end in Chromium: a researcher builds criteria in the builder (code
search, a rule added by htmx) and asks feasibility, seeing the charts and their tables; the
research office returns a study with a comment, the researcher edits and resubmits it, the
office approves it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from brygga.db import session as db_session
from brygga.studies import registration, staff
from brygga.studies.matching import RecordsEligibility
from brygga.studies.models import StaffAccount
from tests.e2e.conftest import study_data
from tests.e2e.test_browser import axe_violations, staff_login
from tests.web.test_differencing import write_region

pytestmark = pytest.mark.slow  # a real Chromium against a served app


def researcher_study(site, title: str, *, submit: bool = False) -> int:
    with db_session(site["url"]) as s:
        me = s.query(StaffAccount).filter_by(email="researcher@example.com").one()
        study = registration.create_study(s, staff.get(s, me.id), study_data(title))
        if submit:
            registration.submit(s, me, study)
        return study.id


def test_researcher_builds_criteria_and_asks_feasibility(open_page, site, tmp_path) -> None:
    region = write_region(tmp_path / "region", "synthetic")
    app = site["app"]
    app.state.config.region = region.path
    app.state.eligibility = RecordsEligibility(region.path)
    study_id = researcher_study(site, "Byggd i byggaren")

    page = open_page()
    staff_login(page, "researcher")
    page.goto(f"/studies/{study_id}")
    page.get_by_role("link", name="Urvalskriterier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Urvalskriterier")
    page.fill("#name", "HbA1c minst 40, utan typ 1-diabetes")
    page.fill("#index_date", "2025-06-15")
    page.fill("#age_min", "40")
    # Rule 1: a measurement found by code search.
    page.select_option("#rules-0-kind", "measurement")
    page.fill("#rules-0-codes", "")
    page.fill("#rules-0-search", "hba1c")
    page.get_by_role("button", name="Lägg till HbA1c").click()
    expect(page.locator("#rules-0-codes")).to_have_value("HbA1c")
    expect(page.locator("#rules-0-vocabulary")).to_have_value("")
    page.fill("#rules-0-value_min", "40")
    # Rule 2, added by htmx: exclude type 1 diabetes.
    page.get_by_role("button", name="Lägg till en regel").click()
    expect(page.locator("#rules-1-codes")).to_have_count(1)
    page.select_option("#rules-1-side", "exclude")
    # Found by its Swedish name, shown in Swedish.
    page.fill("#rules-1-search", "typ 1-diab")
    hits = page.locator("#rules-1-hits")
    expect(hits).to_contain_text("Typ 1-diabetes")
    page.get_by_role("button", name="Lägg till E109").click()
    expect(page.locator("#rules-1-codes")).to_have_value("E109")
    page.fill("#rules-1-codes", "E10")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Spara kriterierna").click()
    expect(page.get_by_role("alert")).to_contain_text("Kriterierna är sparade")
    expect(page.locator("#rules-1-codes")).to_have_value("E10")  # read back from the YAML

    page.get_by_role("button", name="Räkna genomförbarhet").click()
    expect(page).to_have_url(re.compile(rf"/studies/{study_id}#feasibility$"))
    section = page.locator("#feasibility")
    expect(section.locator("svg[role=img]")).to_have_count(4)  # attrition, sex, age, place
    table = section.locator("table", has_text="Antal kvar efter varje steg")
    expect(table).to_contain_text("Demografi: ålder 40 år och äldre")
    expect(table).to_contain_text("Exkludera: diagnos ICD10 E10")
    expect(section.locator("figure", has_text="Efter kommun")).to_contain_text("Malmö")
    assert axe_violations(page) == []


def test_office_returns_researcher_resubmits_office_approves(open_page, site) -> None:
    study_id = researcher_study(site, "Tillbaka och fram", submit=True)

    office = open_page()
    staff_login(office, "research_office")
    office.get_by_role("link", name="Granskning").click()
    expect(office.get_by_role("heading", level=1)).to_have_text("Granskningskö")
    office.get_by_role("link", name="Tillbaka och fram").click()
    office.fill("#reason", "Ladda upp protokollet och ange försäkringen.")
    office.get_by_role("button", name="Skicka tillbaka för ändringar").click()
    expect(office.locator("main strong.govuk-tag").first).to_have_text("Återsänd för ändringar")

    researcher = open_page()
    staff_login(researcher, "researcher")
    researcher.goto(f"/studies/{study_id}")
    expect(researcher.get_by_role("region", name="Viktigt")).to_contain_text(
        "Ladda upp protokollet"
    )
    researcher.fill("#comment", "Protokollet är uppladdat.")
    researcher.get_by_role("button", name="Skicka kommentaren").click()
    expect(researcher.locator("#comments")).to_contain_text("Protokollet är uppladdat.")
    researcher.get_by_role("link", name="Ändra studien").click()
    researcher.fill("#title_sv", "Tillbaka och fram, version 2")
    researcher.get_by_role("button", name="Spara").click()
    expect(researcher.get_by_role("heading", level=1)).to_have_text("Tillbaka och fram, version 2")
    researcher.get_by_role("button", name="Skicka in igen").click()
    expect(researcher.locator("main strong.govuk-tag").first).to_have_text(
        "Inskickad för granskning"
    )

    office.goto("/reviews")
    office.get_by_role("link", name="Tillbaka och fram, version 2").click()
    expect(office.locator("#comments")).to_contain_text("Protokollet är uppladdat.")
    office.get_by_role("button", name="Godkänn").click()
    expect(office.locator("main strong.govuk-tag").first).to_have_text("Godkänd")
    history = office.locator("#history")
    for step in ("Inskickad för granskning", "Återsänd för ändringar", "Godkänd"):
        expect(history).to_contain_text(step)
    assert axe_violations(office) == []
