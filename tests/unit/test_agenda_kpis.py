"""The KPI registry and the live KPIs: series by year and quarter through the release gate,
imported series validated, and the CLI's kpi commands."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from brygga import clock
from brygga.agenda import catalogue, imported
from brygga.agenda.kpis import Context, Periods, flow_series
from brygga.agenda.models import SeriesValue
from brygga.cli import main
from brygga.db.session import session
from brygga.errors import DocumentError
from brygga.privacy.disclosure import RawPolicy, RoundingPolicy
from brygga.registry.models import ConsentEvent, Resident
from brygga.studies.models import Invitation, Organization, StaffAccount, Study

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, tzinfo=UTC)


def _study(s, org, staff, n: int, *, submitted, reviewed=None, status="submitted", **kw):
    study = Study(
        organization_id=org.id, created_by=staff.id, title_sv=f"S{n}", title_en=f"S{n}",
        summary_sv="-", summary_en="-", sponsor=org.name, phase=kw.get("phase", "2"),
        area=kw.get("area", "diabetes"), target_enrolment=kw.get("target", 10),
        recruitment_start=date(2025, 1, 1), recruitment_end=date(2027, 12, 31),
        criteria_yaml="name: x\n", status=status, created_at=submitted,
        submitted_at=submitted, reviewed_at=reviewed,
    )  # fmt: skip
    s.add(study)
    s.flush()
    return study


@pytest.fixture
def populated(fresh_db):
    """Studies, residents, consents and invitations over 2025-2026 (exact numbers known)."""
    with session(fresh_db) as s:
        company = Organization(name="Nordic Pharma AB", kind="company")
        uni = Organization(name="Lunds universitet", kind="university")
        s.add_all([company, uni])
        s.flush()
        staff = StaffAccount(email="a@x.se", display_name="A", role="researcher",
                             created_at=NOW)  # fmt: skip
        s.add(staff)
        s.flush()
        studies = []
        # 2026: 12 approved (9 company, Q1..Q3), 10 days to decision each; 2025: 3 approved.
        for i in range(12):
            sub = at(2026, 1 + (i % 9), 5)
            org = company if i < 9 else uni
            studies.append(_study(s, org, staff, i, submitted=sub, status="approved",
                                  reviewed=sub + timedelta(days=10)))  # fmt: skip
        for i in range(3):
            sub = at(2025, 3, 1)
            studies.append(_study(s, uni, staff, 100 + i, submitted=sub, status="approved",
                                  reviewed=sub + timedelta(days=40)))  # fmt: skip
        _study(s, uni, staff, 200, submitted=at(2026, 10, 1))  # submitted, not decided
        residents = []
        for i in range(40):
            r = Resident(person_id=1000 + i, registered_at=at(2025 if i < 10 else 2026, 2, 1))
            residents.append(r)
        residents[0].deleted_at = at(2026, 5, 1)
        s.add_all(residents)
        s.flush()
        for i, r in enumerate(residents[:30]):  # 30 donors granted 2026-03, 5 withdrew in 2026-06
            s.add(ConsentEvent(resident_id=r.id, kind="donate_data", action="grant",
                               text_version="1", at=at(2026, 3, 1)))  # fmt: skip
            if i < 5:
                s.add(ConsentEvent(resident_id=r.id, kind="donate_data", action="withdraw",
                                   text_version="1", at=at(2026, 6, 1)))  # fmt: skip
        # Study 0 (approved 2026-01-15): 30 invitations 2026-02-01, 12 enrolled 2026-04-14.
        for i, r in enumerate(residents[:30]):
            s.add(Invitation(study_id=studies[0].id, resident_id=r.id, basis="records",
                             status="interested" if i < 12 else "sent",
                             created_at=at(2026, 2, 1), expires_at=at(2026, 5, 1),
                             outcome="enrolled" if i < 12 else None,
                             outcome_at=at(2026, 4, 14) if i < 12 else None))  # fmt: skip
    return fresh_db


def _ctx(s, policy, year=2026):
    return Context(session=s, policy=policy, periods=Periods.ending(year, NOW.date()))


def _series(url, kpi_id, policy):
    with session(url) as s:
        return catalogue.compute(catalogue.registry().get(kpi_id), _ctx(s, policy), "skane")


def _years(series):
    return {p["period"]: p["value"] for p in series["years"]}


def test_periods_end_at_today():
    p = Periods.ending(2026, date(2026, 5, 2), back=1)
    assert p.all() == ["2025", "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026", "2026-Q1",
                       "2026-Q2"]  # fmt: skip
    assert Periods.bounds("2026-Q2") == (date(2026, 4, 1), date(2026, 6, 30))
    assert p.end("2026") == date(2026, 5, 2)


def test_registry_has_live_and_imported_kpis_defined_once():
    reg = catalogue.registry()
    kinds = {k.kind for k in reg}
    assert kinds == {"live", "imported"}
    for needed in ("residents_registered", "data_donors", "studies_registered", "studies_approved",
                   "studies_recruiting", "company_initiated_share", "participants_enrolled",
                   "enrolment_against_target", "days_submission_to_decision",
                   "days_approval_to_first_invitation", "days_approval_to_first_enrolment",
                   "funnel_conversion", "enrolled_diversity", "feasibility_questions_answered",
                   "prevention_reach", "prevention_equity_ratio", "ls_employees",
                   "clinical_trial_applications", "ls_patents"):  # fmt: skip
        assert needed in reg
    with pytest.raises(ValueError, match="defined twice"):
        reg.add(reg.get("ls_patents"))


def test_live_kpis_exact_on_a_synthetic_policy(populated):
    raw = RawPolicy()
    assert _years(_series(populated, "studies_approved", raw))["2026"] == 12
    assert _years(_series(populated, "studies_approved", raw))["2025"] == 3
    assert _years(_series(populated, "studies_registered", raw))["2026"] == 13
    assert _years(_series(populated, "company_initiated_share", raw))["2026"] == 75.0
    assert _years(_series(populated, "residents_registered", raw)) == {
        "2022": 0, "2023": 0, "2024": 0, "2025": 10, "2026": 39}  # fmt: skip
    donors = _series(populated, "data_donors", raw)
    quarters = {p["period"]: p["value"] for p in donors["quarters"]}
    assert quarters["2026-Q1"] == 30 and quarters["2026-Q2"] == 25
    assert _years(_series(populated, "participants_enrolled", raw))["2026"] == 12
    assert _years(_series(populated, "approved_studies_started", raw))["2026"] == round(100 / 12, 1)
    assert _years(_series(populated, "funnel_conversion", raw))["2026"] == 40.0
    assert _years(_series(populated, "days_submission_to_decision", raw))["2026"] == 10
    assert _years(_series(populated, "days_submission_to_decision", raw))["2025"] == 40
    first = _series(populated, "days_approval_to_first_enrolment", raw)
    assert _years(first)["2026"] == (date(2026, 4, 14) - date(2026, 1, 15)).days
    approved = _series(populated, "studies_approved", raw)
    by_kind = {d["id"]: {g["key"]: g["value"] for g in d["groups"]}
               for d in approved["breakdowns"]["dimensions"]}  # fmt: skip
    assert by_kind["sponsor_kind"]["company"] == 9 and by_kind["sponsor_kind"]["university"] == 3
    assert by_kind["phase"]["2"] == 12


def test_live_kpis_pass_the_release_gate(populated):
    policy = RoundingPolicy(threshold=8, rounding=5)
    approved = _series(populated, "studies_approved", policy)
    assert _years(approved)["2025"] is None  # 3 studies: suppressed
    assert _years(approved)["2026"] == 10  # 12 rounded to the nearest 5
    # No disclosed value in the whole output is a small count.
    for kpi in ("studies_approved", "data_donors", "participants_enrolled", "residents_registered"):
        s = _series(populated, kpi, policy)
        for p in s["years"] + s["quarters"]:
            assert p["value"] is None or p["value"] == 0 or p["value"] >= 8, (kpi, p)
        assert s["disclosure"] == policy.description
    # 40 days to decision in 2025 rests on 3 studies: not shown.
    assert _years(_series(populated, "days_submission_to_decision", policy))["2025"] is None


def test_a_suppressed_quarter_cannot_be_worked_out_from_its_year():
    policy = RoundingPolicy(threshold=8, rounding=1)  # exact above the threshold
    days = [date(2026, 2, 1)] * 3 + [date(2026, 5, 1)] * 20
    ctx = Context(session=None, policy=policy, periods=Periods.ending(2026, date(2026, 6, 30), 0))
    s = flow_series(ctx, days)
    year = s["years"][0]["value"]
    q = {p["period"]: p["value"] for p in s["quarters"]}
    assert q["2026-Q1"] is None
    assert year is None or q["2026-Q2"] is None  # else 23 - 20 = 3 would be known


def _csv(tmp_path, body: str, name="series.csv"):
    path = tmp_path / name
    path.write_text("kpi,area,period,value,source,source_date,licence\n" + body, encoding="utf-8")
    return path


def test_import_validates_and_replaces(fresh_db, tmp_path):
    good = _csv(tmp_path, "ls_employees,skane,2024,6900,SCB,2025-06-01,CC0\n"
                          "ls_employees,skane,2025,\"7 050,5\",SCB,2026-06-01,CC0\n")  # fmt: skip
    with session(fresh_db) as s:
        assert imported.import_csv(s, good).rows == 2
    again = _csv(tmp_path, "ls_employees,skane,2025,7100,SCB rev,2026-09-01,CC BY 4.0\n", "b.csv")
    with session(fresh_db) as s:
        imported.import_csv(s, again)
    with session(fresh_db) as s:
        rows = {r.period: r for r in s.scalars(select(SeriesValue))}
        assert rows["2025"].value == 7100 and rows["2025"].licence == "CC BY 4.0"
        assert rows["2024"].value == 6900 and rows["2024"].file == "series.csv"
        series = catalogue.compute(catalogue.registry().get("ls_employees"),
                                   _ctx(s, RawPolicy()), "skane")  # fmt: skip
    assert _years(series)["2025"] == 7100
    assert {"source": "SCB rev", "date": "2026-09-01", "licence": "CC BY 4.0"} in series["sources"]


def test_import_errors_name_file_line_and_field(fresh_db, tmp_path):
    bad = _csv(tmp_path, "ls_employees,skane,2025,7000,SCB,2026-06-01,CC0\n"
                         "ls_employees,skane,2025x,many,,yesterday,CC0\n"
                         "studies_approved,mars,2025,3,SCB,2026-06-01,CC0\n")  # fmt: skip
    with session(fresh_db) as s, pytest.raises(DocumentError) as exc:
        imported.import_csv(s, bad)
    text = str(exc.value)
    assert "series.csv" in text
    assert "line 3: period:" in text and "line 3: value: must be a number" in text
    assert "line 3: source: must not be empty" in text and "line 3: source_date:" in text
    assert "line 4: kpi: 'studies_approved' is computed by Brygga" in text
    assert "line 4: area:" in text
    with session(fresh_db) as s:  # nothing stored: the file is taken whole or not at all
        assert s.scalar(select(SeriesValue.id)) is None


@pytest.fixture
def cli_env(populated, tmp_path, monkeypatch):
    monkeypatch.setenv("BRYGGA_DATABASE_URL", populated)
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))
    return populated


def test_cli_kpi_list_json(cli_env, capsys):
    assert main(["kpi", "list", "--json"]) == 0
    kpis = json.loads(capsys.readouterr().out)
    by_id = {k["id"]: k for k in kpis}
    for k in kpis:
        assert {"id", "name", "kind", "definition", "source", "priorities"} <= set(k)
        assert k["kind"] in ("live", "imported")
    assert "skane-firs-2026:skane-p2" in by_id["studies_approved"]["priorities"]
    assert "stockholm-life-science:sthlm-4-1" in by_id["data_donors"]["priorities"]


def test_cli_kpi_show_explain_import(cli_env, capsys, tmp_path):
    with clock.frozen(NOW):
        assert main(["kpi", "show", "studies_approved", "--json", "--year", "2026"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert _years(doc["series"])["2026"] == 10  # the deployment's policy (not raw)
    assert main(["kpi", "explain", "funnel_conversion"]) == 0
    text = capsys.readouterr().out
    assert "SELECT invitation.created_at, invitation.outcome" in text and "inputs:" in text
    assert main(["kpi", "show", "no_such_kpi"]) == 2
    assert "no KPI 'no_such_kpi'" in capsys.readouterr().err
    bad = _csv(tmp_path, "ls_patents,skane,2025,many,PRV,2026-01-01,CC0\n")
    assert main(["kpi", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "series.csv" in err and "line 2: value: must be a number" in err
    good = _csv(tmp_path, "ls_patents,skane,2025,120,PRV,2026-01-01,CC0\n", "ok.csv")
    assert main(["kpi", "import", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
