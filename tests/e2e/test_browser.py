"""End to end in headless Chromium: recruitment from log-in to contact, and axe-core on every
page type (no serious or critical WCAG 2.1 AA violations)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

# slow: a real Chromium against a served app
pytestmark = pytest.mark.slow

TITLE = "Blodtryck och sömn"
PASSWORD = "correct horse battery"  # the staff accounts of tests/e2e/conftest.py
AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, MPL-2.0


def staff_login(page, role: str) -> None:
    page.goto("/login")
    page.fill("#email", f"{role}@example.com")
    page.fill("#password", PASSWORD)
    page.locator("section[aria-labelledby=staff-login] button").click()
    page.wait_for_load_state()


SERIOUS = ("serious", "critical")


def axe_violations(page) -> list[str]:
    """Serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
             values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}))
             .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
        for v in result
        if v["impact"] in SERIOUS
    ]


def test_recruitment_from_log_in_to_contact(open_page, site) -> None:
    person = site["people"][0]
    name = f"{person['given_name']} {person['family_name']}"

    # A resident logs in through the demo provider, joins, fills the profile and consents.
    resident = open_page()
    resident.goto("/login")
    resident.get_by_role("button", name=re.compile(name)).click()
    expect(resident).to_have_url(re.compile(r"/portal$"))
    resident.get_by_role("button", name="Gå med").click()
    resident.get_by_role("link", name="Ändra din profil").click()
    expect(resident).to_have_title("Min profil – Brygga")
    resident.get_by_label("Högt blodtryck").check()
    resident.fill("#height_cm", "178")
    resident.fill("#weight_kg", "82")
    resident.select_option("#smoking", "never")
    resident.get_by_label("Hjärta och kärl").check()
    resident.fill("#max_travel_km", "50")
    resident.get_by_label("E-post").check()
    resident.locator("form[action='/portal/profile'] > button").click()
    expect(resident.get_by_role("alert")).to_contain_text("Sparat.")
    resident.locator("form[action='/portal/consent/contact'] button").click()
    expect(resident.locator("form[action='/portal/consent/contact'] button")).to_contain_text(
        "Återkalla"
    )
    expect(resident.get_by_text(TITLE)).to_have_count(0)  # no such study yet

    # A researcher registers the study and submits it.
    researcher = open_page()
    staff_login(researcher, "researcher")
    researcher.get_by_role("link", name="Registrera en studie").click()
    form = {"title_sv": TITLE, "title_en": "Blood pressure and sleep", "sponsor": "Lunds universitet",
            "ethics_number": "2025-04321-01", "target_enrolment": "40",
            "recruitment_start": "2020-01-01", "recruitment_end": "2099-12-31",
            "summary_sv": "Sover man sämre med högt blodtryck?",
            "summary_en": "Does high blood pressure disturb sleep?",
            "sites-0-name": "SUS Malmö", "sites-0-municipality_code": "1280",
            "criteria": "demographics:\n  age: {min: 18}\ninclude:\n"
                             "  - condition: {codes: [I10], vocabulary: ICD10}\n"}  # fmt: skip
    for field, value in form.items():
        researcher.fill(f"#{field}", value)
    researcher.select_option("#area", "cardiovascular")
    researcher.get_by_role("button", name="Spara").click()
    expect(researcher.get_by_role("heading", level=1)).to_have_text(TITLE)
    researcher.get_by_role("button", name="Skicka in för granskning").click()
    expect(researcher.locator("main strong").first).to_have_text("Inskickad för granskning")
    study_url = researcher.url

    # The research office approves it; matching invites the resident.
    office = open_page()
    staff_login(office, "research_office")
    office.get_by_role("link", name=TITLE).click()
    office.fill("#reason", "Etiskt godkänd, rimlig rekrytering.")
    office.get_by_role("button", name="Godkänn").click()
    expect(office.locator("main strong").first).to_have_text("Godkänd")

    # Before the resident answers, the team sees nobody.
    researcher.goto(study_url + "/contacts")
    expect(researcher.get_by_text(person["email"])).to_have_count(0)

    # The resident sees the invitation and answers "interested".
    resident.goto("/portal")
    invitation = resident.locator("article", has_text=TITLE)
    expect(invitation).to_contain_text("Sover man sämre")
    invitation.get_by_role("button", name="Jag är intresserad").click()
    expect(resident.get_by_role("heading", level=1)).to_have_text("Din intresseanmälan är skickad")
    resident.goto("/portal")
    expect(resident.locator("article", has_text=TITLE)).to_contain_text("Du är intresserad")

    # Now the researcher sees the resident's name and contact details.
    researcher.goto(study_url + "/contacts")
    row = researcher.locator("tr", has_text=name)
    expect(row).to_contain_text(person["email"])
    expect(row).to_contain_text(person["phone"])


def logged_in(open_page, sessions, site, role: str | None):
    """A page logged in as ``role`` (None: public), reusing the role's cookies."""
    if role is None:
        return open_page()
    if role not in sessions:
        page = open_page()
        if role == "resident":
            page.goto("/login")
            p = site["people"][1]  # registered, consents, interested in the seeded study
            name = f"{p['given_name']} {p['family_name']}"
            page.get_by_role("button", name=re.compile(name)).click()
            expect(page).to_have_url(re.compile(r"/portal$"))
        else:
            staff_login(page, role)
        sessions[role] = page.context.storage_state()
        return page
    return open_page(sessions[role])


PAGES = {
    # page type: (role, path); "{study}" is the seeded, approved study
    "home": (None, "/"),
    "login": (None, "/login"),
    "error": (None, "/no-such-page"),
    "home-english": (None, "/lang/en"),
    "resident-portal": ("resident", "/portal"),
    "resident-profile": ("resident", "/portal/profil"),
    "studies-list": ("researcher", "/studies"),
    "study-form": ("researcher", "/studies/new"),
    "study-page-researcher": ("researcher", "/studies/{study}"),
    "contacts": ("researcher", "/studies/{study}/contacts"),
    "study-page-research-office": ("research_office", "/studies/{study}"),
    "studies-care-provider": ("care_provider", "/studies"),
    "admin": ("admin", "/admin"),
    "study-edit": ("researcher", "/studies/{draft}/edit"),
    "criteria-builder": ("researcher", "/studies/{draft}/criteria"),
    "study-page-draft": ("researcher", "/studies/{draft}"),
    "review-queue": ("research_office", "/reviews?status="),
    "eco-directory": (None, "/ekosystem"),
    "eco-directory-search": (None, "/ekosystem?q=GMP+cellterapi&typ=infrastructure"),
    "eco-entry-testbed": (None, "/ekosystem/lu-pregmp"),
    "eco-need-form": ("researcher", "/ekosystem-behov/ny"),
    "eco-need-offerings": ("researcher", "/ekosystem-behov/1"),
    "eco-cases": ("researcher", "/ekosystem-arenden"),
    "eco-inbox": ("research_office", "/ekosystem-inkorg"),
    "steward-audit-log": ("data_steward", "/forvaltning/logg"),
    "steward-budgets": ("data_steward", "/forvaltning/budgetar"),
    "steward-rules": ("data_steward", "/forvaltning/rojandekontroll"),
    # the public e-service
    "catalogue": (None, "/studier"),
    "catalogue-errors": (None, "/studier?age=abc"),
    "study-public": (None, "/studier/{study}"),
    "study-resident": ("resident", "/studier/{study}"),
    "interest-confirmation": ("resident", "/studier/{study}/anmald"),
    "consent-receipt": ("resident", "/portal/samtycken"),
    "about": (None, "/om"),
    "contact": (None, "/kontakt"),
    "privacy": (None, "/om-personuppgifter"),
    "cookies": (None, "/cookies"),
    "accessibility": (None, "/tillganglighet"),
    "self-check": (None, "/egenkontroll"),
    "account-deleted": (None, "/konto-raderat"),
}


@pytest.mark.parametrize("kind", PAGES)
def test_no_serious_accessibility_violations(kind, open_page, sessions, site) -> None:
    role, path = PAGES[kind]
    page = logged_in(open_page, sessions, site, role)
    page.goto(path.format(study=site["study"], draft=site["draft"]))
    expect(page.locator("h1")).to_have_count(1)
    assert axe_violations(page) == []
    # WCAG 1.4.10 (reflow): at 320 CSS px nothing makes the page scroll sideways; a wide
    # table scrolls in its own box.
    page.set_viewport_size({"width": 320, "height": 800})
    problems = wider_than_the_screen(page)
    assert not problems, "\n".join(problems)
    if page.evaluate(SCROLLING_TABLES):  # now reachable by keyboard, named by their captions
        assert axe_violations(page) == []


SCROLLING_TABLES = """() => [...document.querySelectorAll('.brygga-table-wrap')]
    .some(w => w.scrollWidth > w.clientWidth)"""


def wider_than_the_screen(page) -> list[str]:
    """The page's width beyond the viewport, and the deepest elements sticking out."""
    return page.evaluate(
        """() => {
          const w = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= w) return [];
          const out = [...document.querySelectorAll('body *')].filter(e => {
            const r = e.getBoundingClientRect();
            return r.right > w + 1 && ![...e.children].some(c => c.getBoundingClientRect().right > w + 1);
          });
          return [`page ${document.documentElement.scrollWidth} px > ${w} px`].concat(
            out.slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
              + ': ' + (e.textContent || '').trim().slice(0, 40)));
        }"""
    )


def test_form_errors_are_accessible(open_page, sessions, site) -> None:
    """A form returned with field errors: the errors are tied to their fields."""
    page = logged_in(open_page, sessions, site, "researcher")
    page.goto("/studies/new")
    page.fill("#ethics_number", "not-a-number")
    page.get_by_role("button", name="Spara").click()
    field = page.locator("#ethics_number")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    assert "ethics_number-error" in described
    expect(page.locator("#ethics_number-error")).to_contain_text("ÅÅÅÅ-NNNNN-NN")
    expect(page.locator(".govuk-error-summary a[href='#ethics_number']")).to_have_count(1)
    assert axe_violations(page) == []


def test_axe_finds_violations(open_page, site) -> None:
    """The check itself works: a page with an unlabelled field and an image without text."""
    page = open_page()
    page.goto("/")
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<input id=x><img src=/static/none.png>')"
    )
    found = axe_violations(page)
    assert any(v.startswith("label ") for v in found)
    assert any(v.startswith("image-alt ") for v in found)


def test_self_check_result_is_accessible(open_page) -> None:
    page = open_page()
    page.goto("/egenkontroll")
    page.get_by_role("button", name="Visa mitt resultat").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    assert axe_violations(page) == []
    for field, value in {
        "age": "58",
        "height_cm": "165",
        "weight_kg": "80",
        "waist_cm": "92",
    }.items():
        page.fill(f"#{field}", value)
    for choice in ("#sex-1", "#active-2", "#vegetables-1", "#bp_medication-1", "#high_glucose-2",
                   "#family-2"):  # fmt: skip
        page.check(choice)
    page.get_by_role("button", name="Visa mitt resultat").click()
    expect(page.locator(".govuk-panel__title")).to_have_text("Hög risk")
    assert axe_violations(page) == []


def tab_to(page, name: str | re.Pattern, limit: int = 120) -> None:
    """Press Tab until the focused element's accessible text matches ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        text = page.evaluate(
            "() => { const e = document.activeElement;"
            " const l = e.id && document.querySelector(`label[for='${e.id}']`);"
            " return (e.innerText || e.value || '') + ' ' + (l ? l.innerText : ''); }"
        )
        if name.search(text) if isinstance(name, re.Pattern) else name in text:
            return
    raise AssertionError(f"no focusable element {name!r} within {limit} Tabs on {page.url}")


def test_keyboard_only_resident_journey(open_page, site) -> None:
    """From the catalogue to a sent registration of interest with Tab, Enter and Space only:
    a resident not yet in Brygga logs in, joins and consents on the way."""
    person = site["people"][2]
    name = f"{person['given_name']} {person['family_name']}"
    page = open_page()
    page.goto("/studier")
    tab_to(page, "Seeded study")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Seeded study")
    tab_to(page, "Anmäl intresse")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    tab_to(page, name)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/studier/\d+/intresse$"))
    assert axe_violations(page) == []
    tab_to(page, "Skicka intresseanmälan")
    page.keyboard.press("Enter")  # without the consent: the form says what is missing
    expect(page.locator(".govuk-error-summary")).to_contain_text("Kryssa i rutan")
    tab_to(page, "kontaktad om kliniska studier")
    page.keyboard.press("Space")
    expect(page.locator("#contact-1")).to_be_checked()
    tab_to(page, "Skicka intresseanmälan")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Din intresseanmälan är skickad")
    assert axe_violations(page) == []
