"""The pages load nothing from elsewhere: the design system, scripts and styles come from the
package (no CDN), and every asset a page links to is served."""

from __future__ import annotations

import re
from pathlib import Path

import brygga.web

TEMPLATES = Path(brygga.web.__file__).parent / "templates"
STATIC = Path(brygga.web.__file__).parent / "static"
ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']([^"'{]+)["']""")


def test_templates_reference_only_local_assets() -> None:
    refs = {m for p in TEMPLATES.glob("*.html") for m in ASSET.findall(p.read_text())}
    assert "/static/govuk/brygga-govuk.min.css" in refs
    external = sorted(r for r in refs if not r.startswith("/"))
    assert external == []


def test_the_vendored_design_system_is_complete_and_licensed() -> None:
    css = (STATIC / "govuk" / "brygga-govuk.min.css").read_text()
    assert ".govuk-error-summary" in css and ".govuk-service-navigation" in css
    assert "GDS Transport" not in css  # the GOV.UK font is not licensed to us
    assert "MIT License" in (STATIC / "govuk" / "LICENSE.txt").read_text()
    js = (STATIC / "govuk" / "govuk-frontend.min.js").read_text()
    assert "initAll" in js


def test_every_asset_the_start_page_links_is_served(site) -> None:
    client = site["client"]()
    page = client.get("/")
    assert page.status_code == 200
    refs = ASSET.findall(page.text)
    assert len(refs) >= 4
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    module = client.get("/static/brygga.js").text
    for imported in re.findall(r'from "([^"]+)"', module):
        assert client.get(imported).status_code == 200, imported
