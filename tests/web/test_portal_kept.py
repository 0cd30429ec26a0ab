"""The resident's own pages are kept rendered per resident until their data changes
(``web.deps.render_own``, migration 0013's page version): what must hold for that to be safe."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from brygga import audit
from brygga.db import session as db_session
from brygga.registry import service
from brygga.web.routes import resident as routes


@pytest.fixture
def built(monkeypatch):
    """How many times each resident page was built (not served kept)."""
    counts = {"portal": 0, "profile": 0}
    portal, profile = routes.portal_context, routes.profile_context

    def count_portal(*a, **k):
        counts["portal"] += 1
        return portal(*a, **k)

    def count_profile(*a, **k):
        counts["profile"] += 1
        return profile(*a, **k)

    monkeypatch.setattr(routes, "portal_context", count_portal)
    monkeypatch.setattr(routes, "profile_context", count_profile)
    return counts


def identity_reads(site) -> int:
    records = audit.recent(site["dir"] / "audit" / "audit.jsonl", limit=100_000)
    return sum(r["action"] == "identity.read" for r in records)


def test_a_kept_portal_is_served_until_the_residents_data_changes(site, built):
    c = site["client"]("resident")
    name = site["people"][0]["given_name"]
    reads = identity_reads(site)
    first, second = c.get("/portal"), c.get("/portal")
    assert first.status_code == second.status_code == 200
    assert built["portal"] == 1 and name in second.text
    # A kept copy shows the identity like a built one: each view is an audited read.
    assert identity_reads(site) == reads + 2
    # Another banner, the other language: other pages.
    assert "klart" not in c.get("/portal?klart=saved").url.path
    c.http.cookies.set("lang", "en")
    assert '<html lang="en"' in c.get("/portal").text
    c.http.cookies.set("lang", "sv")
    assert built["portal"] == 3
    c.get("/portal?klart=saved")
    c.get("/portal?klart=no-such-banner")  # an unknown value is the page without a banner
    assert built["portal"] == 3
    # The resident changes their profile: the next view is built again and shows it.
    r = c.post("/portal/profile", data={"conditions": ["t2d"], "smoking": "current"})
    assert r.status_code == 303
    after = c.get("/portal")
    assert built["portal"] == 4 and after.status_code == 200
    assert c.get("/portal/profil").status_code == 200 and built["profile"] == 1
    assert (
        '<option value="current" selected>' in c.get("/portal/profil").text
        and built["profile"] == 1
    )


def test_an_invitation_written_by_another_process_shows_at_once(site, built):
    """The matching run (another process, Core inserts) invites the resident: the version
    read on each view sees it, with no interval."""
    c = site["client"]("resident")
    study = site["ids"]["study"]
    assert "Metformin och minne" not in c.get("/portal").text
    with db_session(site["url"]) as s:
        resident_id = service.by_ref(s, site["ids"]["resident_ref"]).id
    now = datetime.now(UTC)
    db = sqlite3.connect(site["url"].removeprefix("sqlite:///"))
    with db:
        db.execute(
            "INSERT INTO invitation (study_id, resident_id, basis, status, created_at, "
            "expires_at) VALUES (?, ?, 'records', 'sent', ?, ?)",
            (study, resident_id, now, now + timedelta(days=30)),
        )
    db.close()
    assert "Metformin och minne" in c.get("/portal").text
    assert built["portal"] == 2


def test_each_resident_and_each_log_in_gets_only_their_own_copy(site, built):
    with db_session(site["url"]) as s:
        other = service.register(s, service.by_personnummer(s, site["people"][1]["personnummer"]))
        other_ref = other.ref
    mine = site["client"]("resident")
    again = site["client"]("resident")  # the same resident, another browser
    theirs = site["client"]()
    assert theirs.post("/login/demo", data={"ref": other_ref}).status_code == 303
    me, other_name = site["people"][0]["given_name"], site["people"][1]["given_name"]
    pages = {c: c.get("/portal").text for c in (mine, again, theirs)}
    assert built["portal"] == 2  # one per resident
    assert me in pages[mine] and me in pages[again] and other_name not in pages[mine]
    assert other_name in pages[theirs] and me not in pages[theirs]
    kept = site["app"].state.own_pages
    for c, page in pages.items():  # each copy carries its own browser's token, never another's
        token = c.http.cookies["brygga_csrf"]
        assert token in page and kept.sentinel not in page
        assert all(c2.http.cookies["brygga_csrf"] not in page for c2 in pages if c2 is not c)
    # Logged out: no kept page is served, the log-in page is.
    mine.post("/logout")
    assert mine.get("/portal").status_code in (401, 303)
