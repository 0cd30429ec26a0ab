"""Requests cannot exhaust the service (security property 8): a body limit answered 413 before
routing, log-in or parsing; YAML bombs and deep nesting refused with a 4xx naming the limit;
list lengths capped in the web's models."""

from __future__ import annotations

import asyncio

from brygga.forms import FormError, validate
from brygga.registry.areas import AREAS
from brygga.registry.service import ProfileInput
from tests.unit.test_documents import BOMB
from tests.web.conftest import study_form


def raw_request(app, method, path, headers, chunks):
    """One request straight through ASGI: (status, headers, body, chunks the app read)."""
    read = 0
    messages = []

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {
                "type": "http.request",
                "body": chunks[read - 1],
                "more_body": read < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], dict(start["headers"]), body, read


def api_study(**kw):
    data = {k: v for k, v in study_form(**kw).items() if not k.startswith("site_")}
    return data | {"sites": [{"name": "SUS Lund", "municipality_code": "1281"}]}


def test_a_declared_100_mb_body_is_refused_unread_before_log_in(site):
    import json

    headers = {"Content-Type": "application/json", "Content-Length": str(100_000_000)}
    status, response_headers, body, read = raw_request(
        site["app"], "POST", "/api/studies", headers, [b"{}"]
    )
    assert status == 413  # not 401: the log-in check never ran
    assert read == 0  # not a byte read
    error = json.loads(body)["error"]
    assert error["code"] == "too_large" and error["status"] == 413
    assert "1000000 bytes" in error["message"]
    assert response_headers[b"x-content-type-options"] == b"nosniff"


def test_a_streamed_body_is_counted_and_cut_at_the_limit(site):
    import json

    chunk = b"x" * 65_536
    chunks = [b'{"a": "'] + [chunk] * 100 + [b'"}']  # 6.5 MB, no Content-Length (chunked)
    status, _, body, read = raw_request(
        site["app"], "PUT", "/api/me/profile", {"Content-Type": "application/json"}, chunks
    )
    assert status == 413
    assert json.loads(body)["error"]["code"] == "too_large"
    assert read <= 1_000_000 // len(chunk) + 2  # stopped at the limit, not at the end


def test_browsers_get_the_error_page_and_uploads_a_larger_limit(site):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html",
               "Content-Length": "1000001", "Cookie": "lang=sv"}  # fmt: skip
    status, _, body, _ = raw_request(site["app"], "POST", "/portal/profile", headers, [b""])
    assert status == 413
    assert "för stort (högst 1000000 byte)" in body.decode()
    # The study form carries a criteria file of up to 2 MB: its limit is larger.
    headers["Content-Length"] = "2500000"
    assert raw_request(site["app"], "POST", "/studies", headers, [b""])[0] != 413
    headers["Content-Length"] = "3000001"
    assert raw_request(site["app"], "POST", "/studies", headers, [b""])[0] == 413


def test_the_limit_comes_from_the_settings(site, monkeypatch):
    from brygga.web.app import WebConfig, create_app

    monkeypatch.setenv("BRYGGA_MAX_BODY_BYTES", "100")
    app = create_app(WebConfig(database_url=site["url"]))
    headers = {"Content-Type": "application/json", "Content-Length": "101"}
    assert raw_request(app, "PUT", "/api/me/profile", headers, [b" " * 101])[0] == 413
    headers["Content-Length"] = "100"
    assert raw_request(app, "PUT", "/api/me/profile", headers, [b" " * 100])[0] in (401, 422)


def test_a_yaml_alias_bomb_is_refused_by_the_form_and_the_api(site):
    c = site["client"]("researcher")
    r = c.post("/studies", data=study_form(criteria_yaml=BOMB))
    assert r.status_code == 422
    assert "anchors and aliases" in r.text
    r = c.post("/api/studies", json=api_study(criteria_yaml=BOMB))
    assert r.status_code == 422
    assert "anchors and aliases" in r.json()["error"]["fields"]["criteria"]
    assert len(c.get("/api/studies").json()["studies"]) == 1  # nothing stored


def test_deep_nesting_is_a_4xx_not_a_500(site):
    c = site["client"]("researcher")
    for depth in (300, 3000):
        r = c.post("/api/studies", json=api_study(criteria_yaml="[" * depth + "]" * depth))
        assert r.status_code == 422
        assert "nested deeper than 50 levels (the limit)" in r.json()["error"]["fields"]["criteria"]
        deep = {"include": [{"any_of": []}]}
        node = deep["include"][0]["any_of"]
        for _ in range(depth // 10):
            node.append({"any_of": []})
            node = node[0]["any_of"]
        r = c.post("/api/studies", json=api_study(criteria_yaml=str(deep).replace("'", '"')))
        assert r.status_code == 422
        assert "(the limit)" in r.json()["error"]["fields"]["criteria"]
    body = '{"a": ' * 100_000 + "1" + "}" * 100_000
    r = c.request("POST", "/api/studies", content=body, headers={
        "Content-Type": "application/json", "X-CSRF-Token": c.http.cookies["brygga_csrf"]})  # fmt: skip
    assert 400 <= r.status_code < 500 and r.json()["error"]["status"] == r.status_code


def test_list_lengths_are_capped(site):
    c = site["client"]("resident")
    areas = [next(iter(AREAS))] * (len(AREAS) + 1)
    r = c.request("PUT", "/api/me/profile", json={"areas": areas},
                  headers={"X-CSRF-Token": c.http.cookies["brygga_csrf"]})  # fmt: skip
    assert r.status_code == 422
    assert f"more than {len(AREAS)} items" in r.json()["error"]["fields"]["areas"]
    try:
        validate(ProfileInput, {"areas": [next(iter(AREAS))] * 5_000_000})
    except FormError as exc:
        assert exc.http_status == 422
        assert exc.fields == {"areas": f"has more than {len(AREAS)} items (the limit)"}
    else:
        raise AssertionError("5 million areas were accepted")


def test_a_deeply_nested_import_file_is_a_form_error(site):
    c = site["client"]("researcher")
    deep = b"[" * 100_000 + b"]" * 100_000
    r = c.post("/studies/import", files={"file": ("deep.json", deep, "application/json")})
    assert r.status_code == 422
    assert "nested deeper than 50 levels (the limit)" in r.text
