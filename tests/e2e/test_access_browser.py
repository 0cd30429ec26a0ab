"""Health-data access pages in headless Chromium: axe-core on every new page type (no serious
or critical WCAG 2.1 AA violations), and the application form's errors tied to their fields."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.serving import serve_in_thread
from tests.e2e.test_browser import PASSWORD, axe_violations

# slow: a real Chromium against a served app
pytestmark = pytest.mark.slow

TODAY = date.today()
CRITERIA = "name: Typ 2-diabetes\nindex_date: 2025-06-15\ninclude:\n  - condition: {codes: [E11], vocabulary: ICD10}\n"


def application(title: str) -> dict:
    return {
        "title": title,
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
        "people": ["researcher@example.com"],
        "output_format": "csv",
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, databases) -> Iterator[dict]:
    """A region, a researcher and two stewards; one application submitted, one granted with a
    released extract and one waiting for review; the app over real HTTP."""
    from argon2 import PasswordHasher

    from brygga.access.review import CHECKLIST, Decision
    from brygga.db import session as db_session
    from brygga.platform import Brygga
    from brygga.studies import staff
    from brygga.web.app import WebConfig, create_app
    from tests.spec.conftest import build_region, event, person

    folder = tmp_path_factory.mktemp("e2e-access")
    url = databases.sqlite(folder)
    saved = {k: os.environ.get(k) for k in ("BRYGGA_DATA_DIR", "BRYGGA_DATABASE_URL")}
    os.environ["BRYGGA_DATA_DIR"] = str(folder)
    os.environ["BRYGGA_DATABASE_URL"] = url
    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    persons = [person(pid, born=date(1950 + pid % 20, 1 + pid % 12, 1),
                      sex="female" if pid % 2 else "male") for pid in range(1, 41)]  # fmt: skip
    rows = [event("condition", pid, "E11.9", date(2020, 1, 1)) for pid in range(1, 31)]
    region = build_region(folder / "region", persons, rows)
    with db_session(url) as s:
        org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        for email, role in (("researcher@example.com", "researcher"),
                            ("steward@example.com", "data_steward"),
                            ("steward2@example.com", "data_steward")):  # fmt: skip
            staff.create_staff(s, {"email": email, "display_name": role, "role": role,
                                   "password": PASSWORD,
                                   "organization_id": org.id if role == "researcher" else None})  # fmt: skip
    core = Brygga()
    researcher = core.access_actor("researcher@example.com")
    steward = core.access_actor("steward@example.com")
    steward2 = core.access_actor("steward2@example.com")
    waiting = core.access_apply(researcher, application("Väntar på beslut"), region=region,
                                submit=True)  # fmt: skip
    granted = core.access_apply(researcher, application("Beviljat projekt"), region=region,
                                submit=True)  # fmt: skip
    approve = Decision(True, "Uppfyller kraven.", dict.fromkeys(CHECKLIST, True), "Inga.")
    permit = core.access_decide(steward, granted["id"], approve)["permit"]["id"]
    released = core.access_extract(steward, permit, region)
    core.access_release(steward2, released["id"])
    core.access_extract(steward, permit, region)  # waits for steward2's review
    app = create_app(WebConfig(database_url=url, region=region.path))
    try:
        with serve_in_thread(app) as base:
            yield {"base": base, "waiting": waiting["id"], "granted": granted["id"]}
    finally:
        staff.use_hasher(PasswordHasher())
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("section[aria-labelledby=staff-login] button").click()
    page.wait_for_load_state()


PAGES = {
    # page type: (e-mail or None for public, path)
    "register": (None, "/data/tillstand"),
    "list-researcher": ("researcher@example.com", "/access"),
    "form": ("researcher@example.com", "/access/new"),
    "request-form": ("researcher@example.com", "/access/request"),
    "application-researcher": ("researcher@example.com", "/access/applications/{granted}"),
    "list-steward": ("steward@example.com", "/access"),
    "decision-form": ("steward@example.com", "/access/applications/{waiting}"),
    "release-form": ("steward2@example.com", "/access/applications/{granted}"),
}


@pytest.mark.parametrize("kind", PAGES)
def test_no_serious_accessibility_violations(kind, open_page, site) -> None:
    email, path = PAGES[kind]
    page = open_page()
    if email:
        log_in(page, email)
    page.goto(path.format(**site))
    expect(page.locator("h1")).to_have_count(1)
    assert axe_violations(page) == []


def test_application_form_errors_and_count_are_accessible(open_page, site) -> None:
    page = open_page()
    log_in(page, "researcher@example.com")
    page.goto("/access/new")
    page.fill("#criteria_yaml", CRITERIA)
    page.get_by_role("button", name="Visa antal personer").click()
    expect(page.locator(".govuk-inset-text[role=status]")).to_contain_text("30 personer")
    page.fill("#ethics_number", "inte-ett-nummer")
    page.get_by_role("button", name="Spara utkast").click()
    field = page.locator("#ethics_number")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert "ethics_number-error" in field.get_attribute("aria-describedby").split()
    expect(page.locator(".govuk-error-summary a[href='#title']")).to_have_count(1)
    assert axe_violations(page) == []


def test_data_request_answer_is_accessible(open_page, site) -> None:
    page = open_page()
    log_in(page, "researcher@example.com")
    page.goto("/access/request")
    page.fill("#criteria_yaml", CRITERIA)
    page.get_by_label("Åldersgrupp × Kön").check()
    page.get_by_role("button", name="Beräkna").click()
    expect(page.locator("h2").first).to_contain_text("30 personer")
    expect(page.locator("table caption").first).to_be_visible()
    assert axe_violations(page) == []
