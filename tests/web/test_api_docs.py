"""/api/docs renders under the app's own Content-Security-Policy: Swagger UI comes from the
package (no CDN) and starts from a static file (no inline script). Issue 21 item 7: the page
was blank, because Swagger UI was loaded from a CDN the CSP blocks."""

from __future__ import annotations

import re
from pathlib import Path

import brygga.web

STATIC = Path(brygga.web.__file__).parent / "static"


def test_api_docs_reference_only_the_package_s_static_files(site):
    c = site["client"]()
    page = c.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/static/") for u in urls), urls
    assert "cdn" not in html.lower() and "//" not in "".join(urls)
    # Every script has a src and no body: the CSP runs no inline script.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert 'data-openapi-url="/api/openapi.json"' in html
    for url in urls:
        served = c.get(url)
        assert served.status_code == 200, url
        assert served.content == (STATIC / url.removeprefix("/static/")).read_bytes()
    assert c.get("/api/openapi.json").json()["info"]["title"] == "Brygga"


def test_swagger_ui_is_vendored_with_its_licence():
    folder = STATIC / "swagger"
    assert "Apache License" in (folder / "LICENSE.txt").read_text()
    assert "SmartBear" in (folder / "NOTICE.txt").read_text()
    assert "sourceMappingURL" not in (folder / "swagger-ui.css").read_text()
    assert "SwaggerUIBundle(" in (folder / "init.js").read_text()
    # The CSP loads no data: image: the stylesheet's images are files beside it.
    css = (folder / "swagger-ui.css").read_text()
    images = re.findall(r'url\("?([^")]+)"?\)', css)
    assert images and not any(i.startswith("data:") for i in images)
    assert all((folder / i).is_file() for i in images)
