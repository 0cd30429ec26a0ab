"""/api/docs in real Chromium with the app's CSP enforced: Swagger UI renders the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def test_api_docs_render_under_the_csp(browser, site) -> None:
    # Not open_page: it bypasses the CSP (for axe); here the CSP is the point.
    context = browser.new_context(base_url=site["base"])
    try:
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console", lambda m: refused.append(m.text) if "Content Security" in m.text else None
        )
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site["base"]) else None)  # fmt: skip
        page.goto("/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Brygga", timeout=15_000)
        expect(page.locator(".opblock-tag-section").first).to_be_visible()
        assert not refused, refused
        assert not outside, outside
    finally:
        context.close()
