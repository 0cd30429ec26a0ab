"""End to end in Chromium, the data steward's main task: check the audit log and give an
approved project its privacy budget (a mistake first, corrected from the error summary)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.test_browser import axe_violations, staff_login


def test_a_steward_checks_the_log_and_gives_a_budget(open_page, site) -> None:
    page = open_page()
    staff_login(page, "data_steward")
    page.get_by_role("link", name="Förvaltning").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Granskningslogg")
    page.fill("#action", "staff.login")
    page.get_by_role("button", name="Filtrera").click()
    expect(page.locator("tbody code").first).to_have_text("staff.login")
    page.get_by_role("button", name="Kontrollera hela kedjan").click()
    expect(page.get_by_role("alert")).to_contain_text("Kedjan är hel")

    page.get_by_role("link", name="Integritetsbudgetar").click()
    page.fill("#project", "P-2026-11")
    page.fill("#epsilon", "ett")
    page.get_by_role("button", name="Ge budget").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("måste vara ett tal")
    summary.get_by_role("link", name="måste vara ett tal").click()
    expect(page.locator("#epsilon")).to_be_focused()
    assert axe_violations(page) == []
    page.fill("#epsilon", "0,8")
    page.get_by_role("button", name="Ge budget").click()
    row = page.get_by_role("row", name="P-2026-11 0 / 0,8")
    expect(row).to_have_count(1)
    expect(page.locator("figure.brygga-chart svg[role=img]")).to_have_count(1)
