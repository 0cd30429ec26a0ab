"""End to end in Chromium, a care unit's main task: open the prevention programme, read the
own unit's invitation list after stating the legal basis; axe-core on the care pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from brygga.db import session as db_session
from brygga.studies.models import Organization, StaffAccount
from brygga.studies.seed import _care_unit
from tests.e2e.test_browser import axe_violations, staff_login

EXAMPLE = Path(__file__).parents[2] / "examples" / "programs" / "hjartkoll-50-69.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def care_site(site, small_region):
    region = small_region.region
    site["app"].state.config.region = region.path
    (site["dir"] / "programs").mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, site["dir"] / "programs" / EXAMPLE.name)
    name, unit = _care_unit(region)
    with db_session(site["url"]) as s:
        org = Organization(name=name, kind="care_unit", care_site_id=unit)
        s.add(org)
        s.flush()
        s.get(StaffAccount, site["accounts"]["care_provider"]).organization_id = org.id
    return {**site, "unit_name": name}


def test_a_care_unit_reads_its_invitation_list(open_page, care_site) -> None:
    page = open_page()
    staff_login(page, "care_provider")
    page.get_by_role("link", name="Prevention").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Förebyggande program")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Hjärtkoll 50-69", exact=True).click()
    expect(page.locator("main")).to_contain_text(care_site["unit_name"])
    assert axe_violations(page) == []
    page.get_by_role("link", name="Se er inbjudningslista").click()
    page.get_by_role("button", name="Visa listan").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("måste fyllas i")
    page.get_by_label("HSL 2017:30 3 kap. 2 § (förebyggande arbete)").check()
    page.get_by_role("button", name="Visa listan").click()
    expect(page.locator("table.brygga-worklist tbody tr").first).to_contain_text("%")
    assert axe_violations(page) == []
    page.goto("/prevention/hjartkoll-50-69/jamlikhet")
    expect(page.locator("figure.brygga-chart")).to_have_count(2)
    assert axe_violations(page) == []
