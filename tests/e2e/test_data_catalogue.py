"""axe-core on the public data catalogue (/data) with a dataset listed, in headless Chromium.

The shared e2e site has no region (its /data says there are no datasets), so this module
serves its own app over a small hand-made region: the page with its tables and details."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import expect

from brygga.db import upgrade
from brygga.web.app import WebConfig, create_app
from tests.e2e.serving import serve_in_thread
from tests.e2e.test_browser import axe_violations
from tests.spec.conftest import build_region, period, person

pytestmark = pytest.mark.slow  # a real Chromium against a served app


@pytest.fixture(scope="module")
def data_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("data-e2e")
    persons = [person(i, date(1950 + i % 40, 1, 1)) for i in range(1, 31)]
    rows = [period(p["person_id"], date(2012, 5, 2), date(2023, 2, 9)) for p in persons]
    region = build_region(folder / "region", persons, rows, observe_all=False).path
    url = f"sqlite:///{folder / 'brygga.db'}"
    upgrade(url)
    app = create_app(WebConfig(database_url=url, region=region, demo=True))
    with serve_in_thread(app) as base:
        yield base


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_data_catalogue_page_has_no_serious_violations(browser, data_base, lang) -> None:
    context = browser.new_context(base_url=data_base, bypass_csp=True, locale="sv-SE")
    try:
        page = context.new_page()
        if lang == "en":
            page.goto("/lang/en")
        page.goto("/data")
        expect(page.locator("h1")).to_have_count(1)
        expect(page.locator("details")).not_to_have_count(0)
        page.locator("details summary").first.click()  # an open table of variables too
        assert axe_violations(page) == []
    finally:
        context.close()
