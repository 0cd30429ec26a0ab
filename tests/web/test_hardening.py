"""Log-in guessing limits, revocable sessions, TLS headers and no-store, drafts hidden from the
research office, and the language switch's redirect (the "Hardening" issue, items 5, 6, 8, 9)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from brygga import logins
from brygga.db import session as db_session
from brygga.db.base import utcnow
from brygga.web.app import WebConfig, create_app
from tests.web.conftest import PASSWORD, Client, study_form

JSON = {"Accept": "application/json"}


def app_on(site, **kw):
    """Another app (another worker, another server) on the site's database."""
    kw.setdefault("secret_key", site["app"].state.config.secret_key)
    return create_app(WebConfig(database_url=site["url"], **kw))


def attempt(c: Client, email: str, password: str = "wrong", forwarded: str | None = None) -> int:
    headers = dict(JSON)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    r = c.post("/login/staff", data={"email": email, "password": password}, headers=headers)
    return r.status_code


def attempt_rows(site) -> list[logins.LoginAttempt]:
    with db_session(site["url"]) as s:
        return list(s.scalars(select(logins.LoginAttempt)))


# --- Log-in guessing -----------------------------------------------------------------------


def test_forged_forwarded_for_does_not_bypass_the_limit(site):
    c = site["client"]()
    codes = [attempt(c, "researcher@example.com", forwarded=f"203.0.113.{i}") for i in range(40)]
    assert codes[:5] == [403] * 5 and set(codes[5:]) == {429}
    # The right password is refused too while the account is locked.
    assert attempt(c, "researcher@example.com", PASSWORD, forwarded="198.51.100.1") == 429


def test_account_back_off_with_rotating_trusted_addresses(site):
    """Behind a trusted proxy every guess comes from a new client address: the account's own
    back-off still stops them, and grows exponentially."""
    c = Client(app_on(site, trusted_proxies=("127.0.0.1",)))
    try:
        codes = [attempt(c, "researcher@example.com", forwarded=f"203.0.113.{i}") for i in range(7)]
        assert codes == [403] * 5 + [429, 429]
        locks = []
        for i in range(3):  # wait out each lock (moved into the past), then fail once more
            with db_session(site["url"]) as s:
                s.execute(update(logins.LoginAttempt).values(locked_until=utcnow()))
            assert attempt(c, "researcher@example.com", forwarded=f"198.51.100.{i}") == 403
            [row] = [r for r in attempt_rows(site) if r.key.startswith("account:")]
            locks.append(round((row.locked_until - row.last_failure_at).total_seconds()))
            assert attempt(c, "researcher@example.com", PASSWORD, forwarded="192.0.2.9") == 429
        assert locks == [60, 120, 240]
        # Each failure came from another client address (refused attempts are not counted).
        addresses = [r for r in attempt_rows(site) if r.key.startswith("address:")]
        assert len(addresses) == 8 and all(r.failures == 1 for r in addresses)
    finally:
        c.close()


def test_a_proxy_without_forwarded_for_does_not_lock_everybody_out(site):
    """The proxy is trusted but sends no X-Forwarded-For: the client is unknown, so only the
    accounts guessed at are locked, not everyone behind the proxy."""
    c = Client(app_on(site, trusted_proxies=("127.0.0.0/8",)))
    try:
        codes = [attempt(c, f"nobody{i % 8}@example.com") for i in range(40)]
        assert codes.count(403) == 40  # 5 per account: none reached its back-off
        assert attempt(c, "nobody0@example.com") == 429
        assert attempt(c, "researcher@example.com", PASSWORD) == 303
    finally:
        c.close()


def test_a_known_client_address_is_limited_across_accounts(site):
    """Password spraying from one (untrusted, direct) address: 30 failures lock the address,
    whatever X-Forwarded-For it forges."""
    c = site["client"]()
    codes = [attempt(c, f"nobody{i}@example.com", forwarded=f"203.0.113.{i}") for i in range(31)]
    assert codes == [403] * 30 + [429]
    assert attempt(c, "researcher@example.com", PASSWORD) == 429
    # Another client address (through a trusted proxy) is not affected.
    other = Client(app_on(site, trusted_proxies=("127.0.0.1",)))
    try:
        assert attempt(other, "researcher@example.com", PASSWORD, forwarded="192.0.2.7") == 303
    finally:
        other.close()


def test_limits_are_shared_between_workers(site):
    """Two apps on one database (two `--workers` processes) see the same counts."""
    one, two = Client(app_on(site)), Client(app_on(site))
    try:
        codes = [attempt((one, two)[i % 2], "researcher@example.com") for i in range(6)]
        assert codes == [403] * 5 + [429]
        assert attempt(one, "researcher@example.com", PASSWORD) == 429
        assert attempt(two, "researcher@example.com", PASSWORD) == 429
    finally:
        one.close()
        two.close()


def test_a_success_resets_the_account_back_off(site):
    c = site["client"]()
    assert [attempt(c, "researcher@example.com") for _ in range(4)] == [403] * 4
    assert attempt(c, "researcher@example.com", PASSWORD) == 303
    assert [attempt(c, "researcher@example.com") for _ in range(5)] == [403] * 5


def test_limiter_rows_are_bounded(site, monkeypatch):
    monkeypatch.setattr(logins, "MAX_ROWS", 50)
    secret = "k"
    known = logins.account_key(secret, "researcher@example.com")
    with db_session(site["url"]) as s:
        logins.record_failure(s, known, None, known=True)
    for i in range(200):  # a flood of made-up e-mail addresses
        with db_session(site["url"]) as s:
            logins.record_failure(s, logins.account_key(secret, f"x{i}@e.se"), None, known=False)
    rows = attempt_rows(site)
    assert len(rows) <= 50
    assert known in {r.key for r in rows}  # the real account's count survived the flood
    # Rows quiet for longer than FORGET_SECONDS go at the next failure.
    with db_session(site["url"]) as s:
        old = utcnow() - timedelta(seconds=logins.FORGET_SECONDS + 60)
        s.execute(update(logins.LoginAttempt).values(last_failure_at=old, locked_until=None))
    with db_session(site["url"]) as s:
        logins.record_failure(s, logins.account_key(secret, "new@e.se"), None, known=False)
        assert s.scalar(select(func.count()).select_from(logins.LoginAttempt)) == 1


def test_failed_logins_are_audited_without_the_email_address(site):
    c = Client(app_on(site, trusted_proxies=("127.0.0.1",)))
    try:
        assert attempt(c, "Researcher@Example.com", forwarded="203.0.113.5") == 403
        assert attempt(c, "nobody@example.com", forwarded="203.0.113.5") == 403
    finally:
        c.close()
    text = (site["dir"] / "audit" / "audit.jsonl").read_text()
    failed = [r for r in map(json.loads, text.splitlines()) if r["action"] == "staff.login_failed"]
    assert len(failed) == 2
    secret = site["app"].state.config.secret_key
    assert failed[0]["details"]["account"] == logins.account_key(secret, "researcher@example.com")
    assert failed[0]["details"]["address"] == logins.address_key(secret, "203.0.113.5")
    assert failed[0]["details"]["failures"] == 1
    for clear in ("example.com", "researcher@", "nobody@", "203.0.113.5"):
        assert clear not in text.lower()


# --- Sessions ------------------------------------------------------------------------------


def test_logout_ends_the_session_for_the_old_cookie(site):
    resident = site["client"]("resident")
    cookie = resident.http.cookies["brygga_session"]
    assert resident.get("/api/me").status_code == 200
    assert resident.post("/logout").status_code == 303
    thief = Client(site["app"])
    try:
        thief.http.cookies.set("brygga_session", cookie)
        assert thief.get("/api/me").status_code == 401
    finally:
        thief.close()


def test_new_password_and_deactivation_end_sessions(site):
    researcher = site["client"]("researcher")
    provider = site["client"]("care_provider")
    admin = site["client"]("admin")
    assert researcher.get("/api/studies").status_code == 200
    assert provider.get("/api/studies").status_code == 200
    new = "another long password"
    r = admin.post(
        f"/admin/staff/{site['accounts']['researcher']}/password", data={"password": new}
    )
    assert r.status_code == 303
    assert researcher.get("/api/studies").status_code == 401
    assert attempt(site["client"](), "researcher@example.com", PASSWORD) == 403
    assert attempt(site["client"](), "researcher@example.com", new) == 303
    short = admin.post(f"/admin/staff/{site['accounts']['admin']}/password", data={"password": "x"})
    assert short.status_code == 422 and "minst 12 tecken" in short.text
    assert admin.get("/api/studies").status_code == 200  # a refused change ends nothing
    r = admin.post(f"/admin/staff/{site['accounts']['care_provider']}/deactivate")
    assert r.status_code == 303
    assert provider.get("/api/studies").status_code == 401
    assert attempt(site["client"](), "care_provider@example.com", PASSWORD) == 403


def test_an_administrator_cannot_deactivate_their_own_account(site):
    admin = site["client"]("admin")
    r = admin.post(f"/admin/staff/{site['accounts']['admin']}/deactivate")
    assert r.status_code == 400
    assert "Du kan inte inaktivera ditt eget konto" in r.text
    assert admin.get("/api/studies").status_code == 200  # still logged in, still active


def test_deleting_the_account_ends_its_other_sessions(site):
    phone, laptop = site["client"]("resident"), site["client"]("resident")
    assert laptop.get("/api/me").status_code == 200
    assert phone.post("/portal/delete", data={"confirm": "yes"}).status_code == 303
    assert laptop.get("/api/me").status_code == 401


def test_a_demo_session_is_refused_by_a_server_without_demo(site):
    resident = site["client"]("resident")  # the site's app runs with --demo
    plain = Client(app_on(site, demo=False))  # same key, same database
    try:
        plain.http.cookies.set("brygga_session", resident.http.cookies["brygga_session"])
        assert plain.get("/api/me").status_code == 401
        assert resident.get("/api/me").status_code == 200
    finally:
        plain.close()


def test_the_cookie_holds_no_identity(site):
    resident = site["client"]("resident")
    cookie = resident.http.cookies["brygga_session"]
    with db_session(site["url"]) as s:
        [row] = s.scalars(select(logins.WebSession).where(logins.WebSession.kind == "resident"))
        assert row.subject == site["ids"]["resident_ref"]
    body = cookie.rpartition(".")[0]
    assert site["ids"]["resident_ref"] not in body and "resident" not in body
    sid = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sid"]
    assert row.id_hash == hashlib.sha256(sid.encode()).hexdigest()  # only a hash is kept


# --- TLS, caching --------------------------------------------------------------------------


def test_behind_tls_turns_on_secure_cookies_and_hsts(site):
    plain = site["client"]()
    r = plain.get("/")
    assert "strict-transport-security" not in r.headers
    assert "secure" not in r.headers["set-cookie"].lower()
    login = plain.post(
        "/login/staff", data={"email": "researcher@example.com", "password": PASSWORD}
    )
    assert "secure" not in login.headers["set-cookie"].lower()

    tls = Client(app_on(site, behind_tls=True))
    tls.http.base_url = "https://testserver"  # Secure cookies travel over https only
    try:
        r = tls.get("/")
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert "; secure" in r.headers["set-cookie"].lower()
        login = tls.post("/login/staff", data={"email": "admin@example.com", "password": PASSWORD})
        assert login.status_code == 303
        assert "brygga_session=" in login.headers["set-cookie"]
        assert "; secure" in login.headers["set-cookie"].lower()
    finally:
        tls.close()


def test_settings_for_tls_and_trusted_proxies(monkeypatch):
    from brygga.config import get_settings
    from brygga.errors import InputError

    assert get_settings().web.behind_tls is False and get_settings().web.trusted_proxies == ()
    monkeypatch.setenv("BRYGGA_WEB_BEHIND_TLS", "true")
    monkeypatch.setenv("BRYGGA_WEB_TRUSTED_PROXIES", "10.0.0.1, 2001:db8::/64")
    web = get_settings().web
    assert web.behind_tls is True and web.trusted_proxies == ("10.0.0.1", "2001:db8::/64")
    monkeypatch.setenv("BRYGGA_WEB_TRUSTED_PROXIES", "10.0.0.1,proxy.local")
    with pytest.raises(
        InputError, match=r"BRYGGA_WEB_TRUSTED_PROXIES: .*'proxy\.local' is not an IP"
    ):
        get_settings()


def test_serve_takes_the_settings_and_uvicorn_trusts_no_proxy(site, monkeypatch):
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from brygga import cli
    from brygga.web import server

    seen = []
    monkeypatch.setattr(server, "run", lambda config, *a: seen.append(config))
    monkeypatch.setenv("BRYGGA_WEB_BEHIND_TLS", "1")
    monkeypatch.setenv("BRYGGA_WEB_TRUSTED_PROXIES", "10.1.2.3")
    assert cli.main(["serve"]) == 0
    assert seen[0].behind_tls and seen[0].secure_cookies
    assert seen[0].trusted_proxies == ("10.1.2.3",)
    config = uvicorn.Config(site["app"], **server.UVICORN)
    config.load()
    assert not isinstance(config.loaded_app, ProxyHeadersMiddleware)


def test_no_store_on_pages_with_personal_data(site):
    team = site["client"]("researcher")
    resident = site["client"]("resident")
    study = site["ids"]["study"]
    pages = [
        (team, f"/studies/{study}/contacts"),
        (team, "/studies"),
        (team, "/api/studies"),
        (resident, "/portal"),
        (resident, "/portal/export"),
        (resident, "/api/me"),
        (site["client"](), "/login"),
    ]
    for client, url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "no-store", url
    static = resident.get("/static/" + next(iter(_static_files())))
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def _static_files() -> list[str]:
    from brygga.web.app import HERE

    return sorted(p.name for p in (HERE / "static").iterdir() if p.is_file())


# --- Drafts, redirects ---------------------------------------------------------------------


def test_research_office_cannot_read_a_draft_by_id(site):

    researcher = site["client"]("researcher")
    r = researcher.post("/studies", data=study_form(title_sv="Utkast"))
    assert r.status_code == 303
    draft = int(r.headers["location"].rsplit("/", 1)[1])
    assert researcher.get(f"/api/studies/{draft}").json()["status"] == "draft"
    office = site["client"]("research_office")
    assert draft not in [s["id"] for s in office.get("/api/studies").json()["studies"]]
    assert office.get(f"/api/studies/{draft}").status_code == 404
    assert office.get(f"/studies/{draft}", headers=JSON).status_code == 404
    assert office.get(f"/api/studies/{site['ids']['study']}").status_code == 200  # approved
    assert site["client"]("admin").get(f"/api/studies/{draft}").status_code == 200


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Host": "evil.example", "Referer": "http://evil.example/studies"}, "", "/studies"),
        ({"Host": "evil.example", "Referer": "http://evil.example//x.example/"}, "", "/"),
        ({"Referer": "https://evil.example/phish?a=1"}, "", "/phish?a=1"),
        ({}, "?next=https://evil.example/", "/"),
        ({}, "?next=//evil.example/x", "/x"),
        ({}, "?next=/\\evil.example", "/"),
        ({}, "?next=/portal%3Fa%3D1", "/portal?a=1"),
        ({"Referer": "http://testserver/portal"}, "", "/portal"),
    ],
)
def test_language_switch_redirects_only_on_this_site(site, headers, query, expected):
    r = site["client"]().get(f"/lang/en{query}", headers=headers)
    assert r.status_code == 303
    assert r.headers["location"] == expected
