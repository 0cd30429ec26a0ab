"""The data stewards' pages: the audit log (filter, chain check), privacy budgets, the rules."""

from __future__ import annotations

import json

from brygga import audit


def _log(site):
    return site["dir"] / "audit" / "audit.jsonl"


def test_only_stewards_and_admins_see_the_pages(site) -> None:
    for role, status in (("researcher", 403), ("research_office", 403), ("resident", 403),
                         ("data_steward", 200), ("admin", 200)):  # fmt: skip
        page = site["client"](role).get("/forvaltning/logg")
        assert page.status_code == status, role


def test_the_log_lists_newest_first_and_filters(site) -> None:
    for i in range(5):
        audit.append("test.event", actor=f"staff:{i}", details={"i": i}, path=_log(site))
    audit.append("other.event", actor="staff:9", details={}, path=_log(site))
    steward = site["client"]("data_steward")
    page = steward.get("/forvaltning/logg", params={"action": "test.event"}).text
    assert page.count("<code>test.event</code>") == 5 and "other.event" not in page
    assert page.index('{"i": 4}') < page.index('{"i": 0}')  # newest first
    one = steward.get("/forvaltning/logg", params={"actor": "staff:3"}).text
    assert one.count("<code>test.event</code>") == 1
    bad = steward.get("/forvaltning/logg", params={"since": "igår"})
    assert bad.status_code == 422 and "ÅÅÅÅ-MM-DD" in bad.text


def test_checking_the_chain_finds_an_edited_record(site) -> None:
    for i in range(3):
        audit.append("test.event", actor="staff:1", details={"i": i}, path=_log(site))
    steward = site["client"]("data_steward")
    ok = steward.post("/forvaltning/logg/verifiera").text
    assert "Kedjan är hel" in ok
    lines = _log(site).read_text().splitlines()
    record = json.loads(lines[1])
    record["details"] = {"i": 99}
    lines[1] = json.dumps(record, sort_keys=True)
    _log(site).write_text("\n".join(lines) + "\n")
    broken = steward.post("/forvaltning/logg/verifiera").text
    assert "Kedjan är bruten på rad 2" in broken


def test_a_steward_gives_a_budget_once_and_errors_reappear_in_the_form(site) -> None:
    steward = site["client"]("data_steward")
    bad = steward.post("/forvaltning/budgetar", data={"project": "", "epsilon": "mycket"})
    assert bad.status_code == 422
    assert "måste fyllas i" in bad.text and "måste vara ett tal" in bad.text
    assert 'value="mycket"' in bad.text  # what was typed comes back
    ok = steward.post("/forvaltning/budgetar", data={"project": "P-2026-7", "epsilon": "1,5"})
    assert ok.status_code == 303
    page = steward.get("/forvaltning/budgetar").text
    assert "P-2026-7" in page and "0 / 1,5" in page
    again = steward.post("/forvaltning/budgetar", data={"project": "P-2026-7", "epsilon": "2"})
    assert again.status_code == 422 and "P-2026-7" in again.text
    assert any(r["action"] == "budget.create" for r in audit.recent(_log(site)))
    # An administrator sees the budgets but gives none.
    admin = site["client"]("admin")
    assert "P-2026-7" in admin.get("/forvaltning/budgetar").text
    assert (
        admin.post("/forvaltning/budgetar", data={"project": "X", "epsilon": "1"}).status_code
        == 403
    )


def test_the_rules_page_shows_the_settings_in_force(site) -> None:
    page = site["client"]("data_steward").get("/forvaltning/rojandekontroll").text
    assert "Undertryckning och avrundning" in page
    assert "Högst 10 frågor per 10 minuter per användare" in page
    assert "Inga öppna rapporter." in page


def test_recent_reads_a_long_log_from_the_end(tmp_path) -> None:
    path = tmp_path / "audit.jsonl"
    with audit.batch(path) as b:
        for i in range(3000):
            b.add("bulk", "staff:1", {"i": i, "pad": "x" * 40})
    newest = audit.recent(path, limit=3)
    assert [r["details"]["i"] for r in newest] == [2999, 2998, 2997]
    assert len(audit.recent(path, limit=10_000, scan=500)) == 500
