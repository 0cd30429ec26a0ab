"""The ecosystem directory: import (validated, all or nothing), review, expiry and renewal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from brygga import clock
from brygga.cli import main
from brygga.ecosystem.service import Ecosystem
from brygga.errors import DocumentError, InputError, NotFoundError

ENTRY = """\
  - id: {id}
    type: infrastructure
    name: {{sv: "{name}", en: "{name}"}}
    description: {{sv: "Strukturbiologi med röntgen.", en: "Structural biology with X-rays."}}
    services: {{sv: [Kristallografi], en: [Crystallography]}}
    price_model: cost_based
    languages: [sv, en]
    trl: {{min: 1, max: 4}}
    technology_areas: [structural_biology]
    region: skane
    location: Lund
    contact_role: {{sv: Användarkontor, en: User office}}
    source: {{document: test, section: "1"}}
"""


def write(path, *entries):
    path.write_text("entries:\n" + "".join(ENTRY.format(id=i, name=n) for i, n in entries))
    return path


@pytest.fixture
def eco(tmp_path, monkeypatch, fresh_db):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    return Ecosystem(fresh_db, validity_days=30)


def test_import_makes_drafts_that_a_reviewer_publishes(eco, tmp_path):
    doc = eco.import_file(write(tmp_path / "d.yaml", ("max-iv", "MAX IV")), actor="t")
    assert doc == {"created": 1, "updated": 0, "unchanged": 0, "published": 0}
    assert eco.entries() == []  # a draft is not shown
    assert [e["status"] for e in eco.entries(include_hidden=True)] == ["draft"]
    with pytest.raises(NotFoundError):
        eco.entry("max-iv")
    eco.publish("max-iv", reviewer="granskare")
    (entry,) = eco.entries()
    assert (entry["id"], entry["name"], entry["type"]) == ("max-iv", "MAX IV", "infrastructure")
    assert entry["expires_at"] == (clock.today() + timedelta(days=30)).isoformat()
    with pytest.raises(InputError, match="already published"):
        eco.publish("max-iv", reviewer="granskare")
    actions = [
        json.loads(x)["action"]
        for x in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    assert actions == ["ecosystem.import", "ecosystem.publish"]


def test_entries_expire_unless_renewed(eco, tmp_path):
    eco.import_file(write(tmp_path / "d.yaml", ("ess", "ESS")), actor="t", reviewer="r")
    later = datetime.now(UTC) + timedelta(days=31)
    with clock.frozen(later):
        assert eco.entries() == []
        assert eco.entries(include_hidden=True)[0]["visible"] is False
        eco.renew("ess", reviewer="r")
        assert [e["id"] for e in eco.entries()] == ["ess"]


def test_a_changed_profile_is_reviewed_again(eco, tmp_path):
    eco.import_file(write(tmp_path / "d.yaml", ("ess", "ESS")), actor="t", reviewer="r")
    again = eco.import_file(write(tmp_path / "d.yaml", ("ess", "ESS")), actor="t")
    assert again["unchanged"] == 1 and eco.entries()[0]["status"] == "published"
    changed = eco.import_file(
        write(tmp_path / "d.yaml", ("ess", "European Spallation Source")), actor="t"
    )
    assert changed["updated"] == 1
    assert eco.entries() == []  # back to review


def test_errors_name_file_line_and_field_and_nothing_is_half_imported(eco, tmp_path):
    path = write(tmp_path / "d.yaml", ("ess", "ESS"), ("max-iv", "MAX IV"), ("ess", "Again"))
    text = path.read_text().replace("price_model: cost_based", "price_model: cheap", 1)
    path.write_text(
        text.replace("region: skane\n    location: Lund", "region: malmo\n    location: Lund", 2)
    )
    with pytest.raises(DocumentError) as info:
        eco.import_file(path, actor="t")
    message = str(info.value)
    assert str(path) in message
    assert "entries[0].price_model (line 7)" in message
    assert "entries[0].region (line 11)" in message
    assert eco.entries(include_hidden=True) == []
    # A repeated id is named with its line; still nothing is written.
    write(path, ("ess", "ESS"), ("max-iv", "MAX IV"), ("ess", "Again"))
    with pytest.raises(DocumentError, match=r"entries\[2\]\.id \(line 28\): repeats entries\[0\]"):
        eco.import_file(path, actor="t")
    assert eco.entries(include_hidden=True) == []


def test_a_personal_email_address_is_refused(eco, tmp_path):
    path = write(tmp_path / "d.yaml", ("ess", "ESS"))
    path.write_text(path.read_text() + "    contact_channel: anna.svensson@example.se\n")
    with pytest.raises(DocumentError, match=r"contact_channel .*not an e-mail address"):
        eco.import_file(path, actor="t")


def test_cli_import_and_list(tmp_path, monkeypatch, fresh_db, capsys):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BRYGGA_DATABASE_URL", fresh_db)
    path = write(tmp_path / "d.yaml", ("ess", "ESS"), ("max-iv", "MAX IV"))
    assert main(["ecosystem", "import", str(path), "--publish", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["published"] == 2
    assert (
        main(
            [
                "ecosystem",
                "list",
                "--type",
                "infrastructure",
                "--area",
                "structural_biology",
                "--json",
            ]
        )
        == 0
    )
    listed = json.loads(capsys.readouterr().out)
    assert [(e["id"], e["name"], e["type"]) for e in listed] == [
        ("ess", "ESS", "infrastructure"),
        ("max-iv", "MAX IV", "infrastructure"),
    ]
    assert main(["ecosystem", "list", "--type", "testbed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - id: x\n")
    assert main(["ecosystem", "import", str(bad)]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_the_packaged_seed_imports_published(eco):
    doc = eco.seed(actor="t")
    assert doc["created"] == doc["published"] >= 70
    assert {e["type"] for e in eco.entries()} == {
        "actor", "infrastructure", "testbed", "support", "programme"
    }  # fmt: skip
    assert eco.seed(actor="t")["unchanged"] == doc["created"]  # idempotent


def test_the_demo_seeds_the_directory_and_its_university_answers_for_its_own(eco, fresh_db):
    from sqlalchemy import select

    from brygga.db import session as db_session
    from brygga.demo import DEMO_PROVIDER_ENTRIES, seed_ecosystem
    from brygga.ecosystem.models import Entry
    from brygga.studies import staff

    with db_session(fresh_db) as s:
        org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        org_id = org.id
    seed_ecosystem(fresh_db)
    with db_session(fresh_db) as s:
        owned = set(s.scalars(select(Entry.slug).where(Entry.organization_id == org_id)))
    assert owned == set(DEMO_PROVIDER_ENTRIES)
    assert "brygga-syntetisk-region" in {e["id"] for e in eco.entries(type="testbed")}
