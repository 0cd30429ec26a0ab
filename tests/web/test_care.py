"""Prevention in the browser for care units: programs by care unit name (disclosed), the
identifiable worklist of the user's own unit only (legal basis, audited), its CSV export that
``evaluate`` reads as it is, and equity by deprivation quintile."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from brygga import audit
from brygga.db import session as db_session
from brygga.prevention.evaluation import read_invitations
from brygga.prevention.worklist import LEGAL_BASES
from brygga.studies.models import Organization, StaffAccount
from brygga.studies.seed import _care_unit

EXAMPLE = Path(__file__).parents[2] / "examples" / "programs" / "hjartkoll-50-69.yaml"
SLUG = "hjartkoll-50-69"

pytestmark = pytest.mark.slow  # plans a program on a generated region


@pytest.fixture
def care(site, small_region):
    """The site with a region, the example program, and the care provider's organization tied
    to the region's largest primary-care unit."""
    region = small_region.region
    site["app"].state.config.region = region.path
    programs = site["dir"] / "programs"
    programs.mkdir()
    shutil.copy(EXAMPLE, programs / EXAMPLE.name)
    name, unit = _care_unit(region)
    with db_session(site["url"]) as s:
        org = Organization(name=name, kind="care_unit", care_site_id=unit)
        s.add(org)
        s.flush()
        s.get(StaffAccount, site["accounts"]["care_provider"]).organization_id = org.id
    return {**site, "unit": unit, "unit_name": name}


def test_the_program_page_names_care_units_and_discloses(care) -> None:
    page = care["client"]("care_provider").get(f"/prevention/{SLUG}")
    assert page.status_code == 200
    assert "Hjärtkoll 50-69" in page.text and care["unit_name"] in page.text
    assert "Din enhet" in page.text
    assert "antal 1–7 visas inte" in page.text  # the disclosure note, in Swedish
    assert 'role="img"' in page.text  # the chart, with its table
    for small in range(1, 8):  # no count between 1 and 7 is shown in a count cell
        assert f'govuk-table__cell--numeric">{small}<' not in page.text


def test_the_worklist_is_the_own_units_only_with_reasons_and_audited(care) -> None:
    nurse = care["client"]("care_provider")
    form = nurse.get(f"/prevention/{SLUG}/lista")
    assert form.status_code == 200 and "Rättsligt stöd" in form.text
    missing = nurse.post(f"/prevention/{SLUG}/lista", data={"legal_basis": ""})
    assert missing.status_code == 422 and "måste fyllas i" in missing.text
    before = len(audit.recent(care["dir"] / "audit" / "audit.jsonl", limit=10_000))
    shown = nurse.post(f"/prevention/{SLUG}/lista", data={"legal_basis": LEGAL_BASES[0]})
    assert shown.status_code == 200
    assert "mmHg" in shown.text and "10-årsrisk" in shown.text
    records = audit.recent(care["dir"] / "audit" / "audit.jsonl", limit=10_000)
    assert len(records) == before + 1
    read = records[0]
    assert read["action"] == "prevention-worklist.identities-read"
    assert read["details"]["care_unit"] == care["unit"]
    assert read["details"]["legal_basis"] == LEGAL_BASES[0]
    # Other staff roles cannot read a list, and a care provider without a unit gets none.
    assert (
        care["client"]("researcher")
        .post(f"/prevention/{SLUG}/lista", data={"legal_basis": LEGAL_BASES[0]})
        .status_code
        == 403
    )
    with db_session(care["url"]) as s:
        s.get(StaffAccount, care["accounts"]["care_provider"]).organization_id = None
    none = nurse.post(f"/prevention/{SLUG}/lista", data={"legal_basis": LEGAL_BASES[0]})
    assert "inte knutet till en vårdenhet" in none.text and "mmHg" not in none.text
    reads = audit.recent(care["dir"] / "audit" / "audit.jsonl", action="prevention-worklist")
    assert len(reads) == 1  # no identities were read for the account without a unit


def test_the_export_is_read_by_evaluate_as_it_is(care, tmp_path) -> None:
    nurse = care["client"]("care_provider")
    r = nurse.post(f"/prevention/{SLUG}/lista.csv", data={"legal_basis": LEGAL_BASES[1]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {"personnummer", "invitation_date", "risk_percent"} <= set(rows[0])
    out = tmp_path / "list.csv"
    out.write_text(r.text, encoding="utf-8")
    invitations = read_invitations(out)
    assert len(invitations.person_id) == len(rows)
    assert sorted(invitations.person_id.tolist()) == sorted(int(r["person_id"]) for r in rows)


def test_equity_names_the_most_deprived_quintile_and_charts_need(care) -> None:
    page = care["client"]("care_provider").get(f"/prevention/{SLUG}/jamlikhet")
    assert page.status_code == 200
    assert "5 är mest socioekonomiskt utsatt" in page.text
    assert page.text.count('role="img"') == 2
    assert "Kvintil 5" in page.text and "Malmö" in page.text


def test_an_admin_sets_a_care_units_primary_care_unit(site) -> None:
    admin = site["client"]("admin")
    bad = admin.post(
        "/admin/organizations", data={"name": "Lunds Vårdcentral", "kind": "company",
                                      "care_site_id": "12"}
    )  # fmt: skip
    assert bad.status_code == 422 and "bara en vårdenhet" in bad.text
    ok = admin.post(
        "/admin/organizations", data={"name": "Lunds Vårdcentral", "kind": "care_unit",
                                      "care_site_id": "12"}
    )  # fmt: skip
    assert ok.status_code == 303
    with db_session(site["url"]) as s:
        org = s.scalar(select(Organization).where(Organization.name == "Lunds Vårdcentral"))
        assert org.care_site_id == 12


def test_residents_who_asked_to_be_invited_are_marked_first_or_alone(care) -> None:
    """The self-check's prevention_invite consent reaches the unit's worklist: marked, listed
    first or alone; a withdrawn consent unmarks at once."""
    from brygga import clock
    from brygga.registry import consent
    from brygga.registry.models import Resident

    plan = care["app"].state.brygga.program_plan(SLUG, care["app"].state.config.region)
    rows = plan.unit_rows(care["unit"])
    invited = plan.person_id[rows[plan.invited[rows]]]
    assert len(invited) >= 3
    askers = [int(invited[-1]), int(invited[-2])]  # the lowest ranked two: first means moved
    version = consent.TEXTS["prevention_invite"].version
    with db_session(care["url"]) as s:
        for pid in askers:
            resident = Resident(person_id=pid, registered_at=clock.now())
            s.add(resident)
            s.flush()
            consent.record_consent(s, resident, "prevention_invite", True, text_version=version)
    nurse = care["client"]("care_provider")

    def listed(asked: str) -> list[tuple[int, bool]]:
        page = nurse.post(
            f"/prevention/{SLUG}/lista", data={"legal_basis": LEGAL_BASES[0], "asked": asked}
        )
        assert page.status_code == 200
        items = care["app"].state.brygga.worklist(
            SLUG, care["app"].state.config.region, care_unit=care["unit"],
            legal_basis=LEGAL_BASES[0], actor="test", asked_first=asked == "first",
            only_asked=asked == "only",
        )  # fmt: skip
        assert page.text.count("Har bett om inbjudan</strong>") == sum(i.asked for i in items)
        return [(i.person_id, i.asked) for i in items]

    everyone = listed("all")
    assert [pid for pid, _ in everyone] == [int(p) for p in invited]  # rank order kept
    assert {pid for pid, asked in everyone if asked} == set(askers)
    first = listed("first")
    assert [pid for pid, _ in first[:2]] == sorted(askers, key=[int(p) for p in invited].index)
    assert sorted(pid for pid, _ in listed("only")) == sorted(askers)
    bad = nurse.post(
        f"/prevention/{SLUG}/lista", data={"legal_basis": LEGAL_BASES[0], "asked": "x"}
    )
    assert bad.status_code == 422
    with db_session(care["url"]) as s:  # one withdraws: no longer marked, nor listed alone
        resident = s.scalars(select(Resident).where(Resident.person_id == askers[0])).one()
        consent.record_consent(s, resident, "prevention_invite", False, text_version=version)
    assert [pid for pid, _ in listed("only")] == [askers[1]]
