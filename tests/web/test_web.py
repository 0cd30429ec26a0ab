"""The web app in process: roles on every route, CSRF, errors, escaping, log-in, a full flow."""

from __future__ import annotations

import json
import re

from brygga.web.app import routers
from brygga.web.security import ROLES  # every role, also those added later
from tests.web.conftest import Client, study_form

SCRIPT = "<script>alert(1)</script>"


def declared_roles(route) -> frozenset[str]:
    found = [d.call.roles for d in route.dependant.dependencies if hasattr(d.call, "roles")]
    assert len(found) == 1, f"{route.path} must declare its roles exactly once"
    return found[0]


def concrete(path: str, site) -> str:
    values = {
        "study_id": site["ids"]["study"],
        "invitation_id": 999999,
        "flag_id": 999999,
        "kind": "contact",
        "code": "en",
        "staff_id": 999999,
        "application_id": 999999,
        "permit_id": 999999,
        "output_id": 999999,
        "document_id": 999999,
        "need_id": 999999,
        "recipient_id": 999999,
        "inquiry_id": 999999,
        "booking_id": 999999,
        "slot_id": 999999,
        "name": "approval",
        "slug": "no-such-program",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def test_every_route_declares_roles_and_enforces_them(site):
    routes = [r for router in routers() for r in router.routes]
    assert len(routes) >= 30
    clients = {role: site["client"](role) for role in ROLES}
    sessions = {role: c.http.cookies.get("brygga_session") for role, c in clients.items()}
    checked = 0
    for route in routes:
        roles = declared_roles(route)
        for method in route.methods - {"HEAD"}:
            for role, c in clients.items():
                url = concrete(route.path, site)
                headers = {"Accept": "application/json"}
                if method == "GET":
                    r = c.get(url, headers=headers)
                elif method == "POST" and route.path.startswith("/api/"):
                    r = c.post(url, json={}, headers=headers)
                else:
                    token = c.http.cookies["brygga_csrf"]
                    headers["X-CSRF-Token"] = token
                    r = c.request(method, url, headers=headers, data={"csrf_token": token})
                allowed = "public" in roles or role in roles
                if allowed:
                    assert r.status_code not in (401, 403), (method, route.path, role, r.text)
                    assert r.status_code < 500, (method, route.path, role, r.text)
                else:
                    expected = 401 if role == "public" else 403
                    assert r.status_code == expected, (method, route.path, role, r.status_code)
                    assert r.json()["error"]["status"] == expected
                if sessions[role]:  # log-out ends the session for good: log in again
                    c.http.cookies.set("brygga_session", sessions[role])
                    if route.path == "/logout":
                        sessions[role] = site["log_in"](c, role)
                checked += 1
    assert checked >= 30 * len(ROLES)


def test_sensitive_routes_have_the_expected_roles():
    by_path = {
        (r.path, m): declared_roles(r)
        for router in routers()
        for r in router.routes
        for m in r.methods
    }
    assert by_path[("/studies/{study_id}/contacts", "GET")] == {"researcher", "care_provider"}
    assert by_path[("/studies/{study_id}/review", "POST")] == {"research_office"}
    assert by_path[("/portal/export", "GET")] == {"resident"}
    assert by_path[("/admin/staff", "POST")] == {"admin"}
    members = {"researcher", "care_provider", "research_office"}
    assert by_path[("/ekosystem-inkorg/{recipient_id}", "POST")] == members
    assert by_path[("/ekosystem", "GET")] == {"public"}
    assert by_path[("/admin/staff/{staff_id}/deactivate", "POST")] == {"admin"}
    assert by_path[("/admin/staff/{staff_id}/password", "POST")] == {"admin"}


def test_csrf_is_required_on_posts(site):
    c = site["client"]("researcher")
    r = c.request(
        "POST", "/studies", data={"title_sv": "x"}, headers={"Accept": "application/json"}
    )
    assert r.status_code == 403
    assert "form has expired" in r.json()["error"]["message"]
    r = c.request("POST", "/api/studies", json={}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403


def test_one_json_error_shape(site):
    c = site["client"]("researcher")
    r = c.post("/api/studies", json={"title_sv": "x", "ethics_number": "12-34"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert set(error) == {"status", "code", "message", "fields"}
    assert error["code"] == "invalid_input"
    assert "ethics_number" in error["fields"] and "title_sv" in error["fields"]
    assert (
        site["client"]("researcher").get("/api/studies/424242").json()["error"]["code"]
        == "not_found"
    )
    assert site["client"]().get("/api/studies").json()["error"]["code"] == "not_logged_in"
    r = c.post("/api/studies", json=["not", "an", "object"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"


def test_login_is_rate_limited(site):
    c = site["client"]()
    codes = [
        c.post(
            "/login/staff", data={"email": "researcher@example.com", "password": "wrong"}
        ).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [403] * 5
    assert codes[5:] == [429, 429]


def test_staff_login_wrong_password_is_vague(site):
    r = site["client"]().post(
        "/login/staff",
        data={"email": "nobody@example.com", "password": "x"},
        headers={"Accept": "application/json"},
    )
    assert r.json()["error"]["message"] == "wrong e-mail address or password"


def test_field_errors_on_the_study_form(site):

    c = site["client"]("researcher")
    r = c.post(
        "/studies",
        data=study_form(
            ethics_number="2024-1-1", recruitment_end="2000-01-01", summary_sv="x" * 2001
        ),
    )
    assert r.status_code == 422
    assert 'id="ethics_number-error"' in r.text and "ÅÅÅÅ-NNNNN-NN" in r.text
    assert 'id="summary_sv-error"' in r.text
    assert 'aria-invalid="true"' in r.text
    bad = c.post(
        "/studies",
        data=study_form(criteria_yaml="include: [{condition: {codes: [E11], vocabulary: X}}]"),
    )
    assert bad.status_code == 422 and 'id="criteria-error"' in bad.text


def test_user_text_is_escaped_everywhere(site):

    c = site["client"]("researcher")
    fields = ("title_sv", "title_en", "summary_sv", "summary_en", "sponsor", "site_name")
    r = c.post("/studies", data=study_form(**{f: SCRIPT + " text" for f in fields}))
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # Rejected input echoed back on a form with errors is escaped too.
    again = c.post("/studies", data=study_form(title_sv=SCRIPT, ethics_number=SCRIPT))
    assert again.status_code == 422 and SCRIPT not in again.text
    admin = site["client"]("admin")
    assert (
        admin.post("/admin/organizations", data={"name": SCRIPT, "kind": "company"}).status_code
        == 303
    )
    assert SCRIPT not in admin.get("/admin").text
    api = c.post("/api/studies", json={"title_sv": SCRIPT})
    assert api.status_code == 422 and SCRIPT not in json.dumps(api.json()["error"]["fields"])


def test_swedish_first_english_available(site):
    c = site["client"]()
    assert 'lang="sv"' in c.get("/").text and "Logga in" in c.get("/").text
    c.get("/lang/en")
    page = c.get("/")
    assert 'lang="en"' in page.text and "Log in" in page.text


def test_demo_provider_is_labelled_and_only_in_demo(site):
    page = site["client"]().get("/login")
    assert "govuk-phase-banner" in page.text and "Förnamn0" in page.text
    from brygga.web.app import WebConfig, create_app

    plain = Client(create_app(WebConfig(database_url=site["url"], demo=False)))
    try:
        assert "govuk-phase-banner" not in plain.get("/login").text
        r = plain.post(
            "/login/demo",
            data={"ref": site["ids"]["resident_ref"]},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 404
    finally:
        plain.close()


def test_full_flow_resident_researcher_office(site):

    resident = site["client"]("resident")
    version = "2026-1"
    r = resident.post(
        "/portal/profile", data={"conditions": "t2d", "areas": "diabetes", "max_travel_km": "abc"}
    )
    assert r.status_code == 422 and 'id="max_travel_km-error"' in r.text
    r = resident.post("/portal/profile", data={"conditions": "t2d", "areas": "diabetes"})
    assert r.status_code == 303 and r.headers["location"] == "/portal?klart=saved"
    assert "Typ 2-diabetes" in resident.get("/portal").text  # the summary shows the answer
    assert (
        resident.post(
            "/portal/consent/match_records", data={"action": "grant", "text_version": version}
        ).status_code
        == 303
    )

    researcher = site["client"]("researcher")
    r = researcher.post("/studies", data=study_form(title_sv="Ny diabetesstudie"))
    study_url = r.headers["location"]
    assert researcher.post(study_url + "/submit").status_code == 303
    office = site["client"]("research_office")
    assert office.post(study_url + "/review", data={"decision": "reject"}).status_code == 422
    assert office.post(study_url + "/review", data={"decision": "approve"}).status_code == 303

    portal = resident.get("/portal").text
    assert "Ny diabetesstudie" in portal
    invitation = re.findall(r'action="/portal/invitations/(\d+)"', portal)
    assert invitation
    contacts_url = study_url + "/contacts"
    assert "Förnamn0" not in researcher.get(contacts_url).text  # not before "interested"
    outsider = site["client"]("outsider")
    assert outsider.get(study_url, headers={"Accept": "application/json"}).status_code == 404
    for inv in invitation:
        assert (
            resident.post(f"/portal/invitations/{inv}", data={"answer": "interested"}).status_code
            == 303
        )
    page = researcher.get(contacts_url)
    assert "Förnamn0 Efternamn0" in page.text and "person0@example.com" in page.text
    assert office.get(contacts_url, headers={"Accept": "application/json"}).status_code == 403
    funnel = researcher.get(f"/api{study_url}/funnel").json()
    assert funnel["stages"]["interested"]["value"] >= 1  # exact for the team
    assert office.get(f"/api{study_url}/funnel").json()["stages"]["interested"]["display"] == "<8"

    export = resident.get("/portal/export")
    assert export.json()["identity"]["given_name"] == "Förnamn0"
    assert resident.post("/portal/delete", data={"confirm": "yes"}).status_code == 303
    assert "Förnamn0" not in researcher.get(contacts_url).text  # deletion withdraws the contact
    audit_text = (site["dir"] / "audit" / "audit.jsonl").read_text()
    assert "Förnamn0" not in audit_text and site["people"][0]["personnummer"] not in audit_text


def test_pages_that_show_identity_leave_an_identity_read_record(site):
    """The portal page and the demo log-in list show names; the registry functions that return
    them write the read records (security property 4), the routes write none themselves."""
    path = site["dir"] / "audit" / "audit.jsonl"

    def reads() -> list[tuple[str, dict]]:
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        return [(x["actor"], x["details"]) for x in lines if x["action"] == "identity.read"]

    before = reads()
    assert "Förnamn" in site["client"]("public").get("/login").text
    resident = site["client"]("resident")
    assert "Förnamn0 Efternamn0" in resident.get("/portal").text
    new = reads()[len(before) :]
    assert new[0][0] == "demo-login" and new[0][1]["purpose"] == "demo log-in list"
    assert (f"resident:{site['ids']['resident_ref']}", {"purpose": "portal"}) in new
