"""Health-data access: applications, review and permits, data requests, extracts, output
checking and the donation consent (access/, through the platform's methods)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import select

from brygga import cli, clock
from brygga.access.models import Permit
from brygga.access.review import CHECKLIST, Decision
from brygga.db import session as db_session
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError
from brygga.platform import Brygga
from brygga.privacy.budget import BudgetExceeded, budget_status
from brygga.privacy.pseudonym import permit_pseudonyms
from brygga.registry import consent
from brygga.registry.models import Resident
from brygga.studies import staff
from brygga.studies.models import StaffAccount
from tests.spec.conftest import build_region, event, person, visit
from tests.unit.test_privacy_outputs import small_counts

INDEX = date(2025, 6, 15)
TODAY = clock.today()
DIABETES = list(range(1, 41))  # people with E11: the cohort
DONORS = list(range(1, 31))
CRITERIA = """\
name: Type 2 diabetes
index_date: 2025-06-15
include:
  - condition: {codes: ["E11"], vocabulary: ICD10}
"""


@pytest.fixture(autouse=True, scope="module")
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_db: str):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BRYGGA_DATABASE_URL", fresh_db)
    persons = [
        person(pid, born=date(1950 + pid % 20, 1 + pid % 12, 1),
               sex="female" if pid % 2 else "male", municipality="1280")
        for pid in range(1, 61)
    ]  # fmt: skip
    rows = [event("condition", pid, "E11.9", date(2020, 1, 1)) for pid in DIABETES]
    rows += [visit(pid, date(2025, 3, 1)) for pid in range(1, 61)]
    # One heavy user of care: 300 visits in the year before the index date.
    rows += [visit(7, date(2024, 7, 1) + timedelta(days=d)) for d in range(300)]
    region = build_region(tmp_path / "region", persons, rows)
    core = Brygga()
    with db_session(core.database) as s:
        uni = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        other = staff.create_organization(s, {"name": "Annan AB", "kind": "company"})
        for email, role, org in (
            ("r1@lu.se", "researcher", uni.id),
            ("r2@annan.se", "researcher", other.id),
            ("s1@region.se", "data_steward", None),
            ("s2@region.se", "data_steward", None),
            ("office@region.se", "research_office", None),
        ):
            staff.create_staff(
                s, {"email": email, "display_name": email, "role": role, "organization_id": org}
            )
        for pid in range(1, 61):
            resident = Resident(person_id=pid, registered_at=clock.now())
            s.add(resident)
            s.flush()
            if pid in DONORS:
                version = consent.TEXTS["donate_data"].version
                consent.record_consent(s, resident, "donate_data", True, text_version=version)
    actors = {k: core.access_actor(f"{k}@{d}") for k, d in
              (("r1", "lu.se"), ("r2", "annan.se"), ("s1", "region.se"), ("s2", "region.se"),
               ("office", "region.se"))}  # fmt: skip
    return {"core": core, "region": region, "dir": tmp_path, **actors}


def application(**changes):
    data = {
        "title": "Diabetes och hjärta",
        "purpose": "Studera hjärt-kärlhändelser hos personer med typ 2-diabetes i regionen.",
        "purpose_category": "scientific_research",
        "legal_basis": "research_public_interest",
        "ethics_number": "2024-01234-01",
        "criteria_yaml": CRITERIA,
        "variables": ["sex", "conditions"],
        "data_form": "pseudonymised",
        "data_form_reason": "Vi behöver följa samma personer över flera tabeller.",
        "safeguards": "Säker bearbetningsmiljö, ingen samkörning, tystnadsplikt.",
        "period_start": (TODAY - timedelta(days=30)).isoformat(),
        "period_end": (TODAY + timedelta(days=365)).isoformat(),
        "people": ["r1@lu.se"],
        "output_format": "csv",
    }
    return data | changes


APPROVE = Decision(
    approve=True,
    reasons="Syftet är tillåtet och uppgifterna är begränsade till det som behövs.",
    checklist=dict.fromkeys(CHECKLIST, True),
    conditions="Resultat publiceras endast aggregerat.",
)


def granted(env, *, decision=APPROVE, **changes):
    core = env["core"]
    doc = core.access_apply(env["r1"], application(**changes), region=env["region"], submit=True)
    doc = core.access_decide(env["s1"], doc["id"], decision)
    return doc


def audit_actions(env) -> list[str]:
    path = env["dir"] / "audit" / "audit.jsonl"
    return [json.loads(line)["action"] for line in path.read_text().splitlines()]


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def file_of(env, output: dict, name: str) -> Path:
    return env["dir"] / "access" / "outputs" / str(output["id"]) / "files" / name


# --- State machine ------------------------------------------------------------------------


def test_draft_submitted_decided_extract_checked_released(env):
    core, r1, s1, s2 = env["core"], env["r1"], env["s1"], env["s2"]
    draft = core.access_apply(r1, application())
    assert draft["status"] == "draft" and draft["feasibility"] is None
    with pytest.raises(NotFoundError):  # a steward does not even see a draft
        core.access_decide(s1, draft["id"], APPROVE)
    submitted = core.access_submit(r1, draft["id"], env["region"])
    assert submitted["status"] == "submitted"
    # The applicant saw the cohort's size through the gate: 40 people, rounded to 5.
    assert submitted["feasibility"]["count"] == {"value": 40, "display": "40"}
    assert submitted["deadline"]["due"] is not None and not submitted["deadline"]["overdue"]
    with pytest.raises(InputError, match="submitted application cannot be submitted"):
        core.access_submit(r1, draft["id"], env["region"])
    decided = core.access_decide(s1, draft["id"], APPROVE)
    assert decided["status"] == "approved"
    permit = decided["permit"]
    assert permit["state"] == "active" and permit["extracts"] and permit["budget"] is None
    extract = core.access_extract(s1, permit["id"], env["region"])
    assert extract["status"] == "checked" and extract["checks"]["passed"]
    assert extract["checks"]["k"]["status"] == "pass"
    names = {f["name"] for f in extract["files"]}
    assert names == {"person.csv", "conditions.csv", "dictionary.json"}
    with pytest.raises(PermissionDenied, match="not released"):
        core.access_download(r1, extract["id"], "person.csv")
    released = core.access_release(s2, extract["id"])
    assert released["status"] == "released" and released["released_at"] is not None
    path = core.access_download(r1, extract["id"], "person.csv")
    rows = read_rows(path)
    assert len(rows) == 40 and set(rows[0]) == {"person_id", "sex"}
    dictionary = json.loads(file_of(env, extract, "dictionary.json").read_text())
    assert [f["file"] for f in dictionary["files"]] == ["person", "conditions"]
    with pytest.raises(InputError, match="released output cannot be reviewed"):
        core.access_release(s2, extract["id"])
    actions = audit_actions(env)
    for step in ("access.application.create", "access.application.submit",
                 "access.application.approve", "access.extract.create",
                 "access.output.release", "access.output.download"):  # fmt: skip
        assert step in actions, step
    # The delivery deadline is met by the released extract.
    assert core.access_show(r1, draft["id"])["permit"]["deadline"]["delivered"] is not None


def test_rejection_needs_reasons_and_approval_the_whole_checklist(env):
    core = env["core"]
    doc = core.access_apply(env["r1"], application(), region=env["region"], submit=True)
    partial = Decision(approve=True, reasons="ok", checklist={"purpose_permitted": True})
    with pytest.raises(FormError) as caught:
        core.access_decide(env["s1"], doc["id"], partial)
    assert "checklist" in caught.value.fields
    with pytest.raises(FormError) as caught:
        core.access_decide(env["s1"], doc["id"], Decision(approve=False, reasons=" "))
    assert "reasons" in caught.value.fields
    rejected = core.access_decide(
        env["s1"], doc["id"], Decision(approve=False, reasons="Etikgodkännandet täcker inte.")
    )
    assert rejected["status"] == "rejected" and rejected["permit"] is None
    # A rejected application can be corrected and submitted again.
    again = core.access_update(env["r1"], doc["id"], application(title="Diabetes, ny version"))
    assert again["status"] == "draft"


def test_form_errors_name_their_fields(env):
    core = env["core"]
    with pytest.raises(FormError) as caught:
        core.access_apply(env["r1"], application(ethics_number="2024-1234"))
    assert set(caught.value.fields) == {"ethics_number"}
    with pytest.raises(FormError) as caught:
        core.access_apply(env["r1"], application(variables=["sex", "conditions"],
                                                 data_form="anonymised"))  # fmt: skip
    assert "record-level" in caught.value.fields["variables"]
    with pytest.raises(FormError) as caught:
        core.access_apply(env["r1"], application(criteria_yaml="include: [{nothing: 1}]"))
    assert "criteria_yaml" in caught.value.fields
    draft = core.access_apply(env["r1"], application(ethics_number=""))
    with pytest.raises(FormError) as caught:  # research in the public interest needs one
        core.access_submit(env["r1"], draft["id"], env["region"])
    assert "ethics_number" in caught.value.fields


# --- Roles and the second person ----------------------------------------------------------


def test_roles(env):
    core, r1, r2, s1, office = env["core"], env["r1"], env["r2"], env["s1"], env["office"]
    with pytest.raises(PermissionDenied):
        core.access_apply(s1, application())
    with pytest.raises(PermissionDenied):
        core.access_apply(office, application())
    doc = core.access_apply(r1, application(), region=env["region"], submit=True)
    with pytest.raises(NotFoundError):  # another organization's researcher sees nothing
        core.access_show(r2, doc["id"])
    with pytest.raises(NotFoundError):  # the research office is not a data access body
        core.access_show(office, doc["id"])
    with pytest.raises(PermissionDenied, match="data steward"):
        core.access_decide(r1, doc["id"], APPROVE)
    permit = core.access_decide(s1, doc["id"], APPROVE)["permit"]
    with pytest.raises(PermissionDenied, match="data steward"):
        core.access_extract(r1, permit["id"], env["region"])
    extract = core.access_extract(s1, permit["id"], env["region"])
    with pytest.raises(PermissionDenied):
        core.access_release(r1, extract["id"])
    core.access_release(env["s2"], extract["id"])
    with pytest.raises(NotFoundError):  # not named on the permit
        core.access_download(r2, extract["id"], "person.csv")
    with pytest.raises(NotFoundError):
        core.access_permit(r2, permit["id"])
    assert core.access_list(r2) == {"applications": [], "permits": []}
    assert [a["id"] for a in core.access_list(s1)["applications"]] == [doc["id"]]


def test_second_person_reviews_the_release(env):
    core = env["core"]
    permit = granted(env)["permit"]
    extract = core.access_extract(env["s1"], permit["id"], env["region"])
    with pytest.raises(PermissionDenied, match="second person"):
        core.access_release(env["s1"], extract["id"])
    refused = core.access_release(env["s2"], extract["id"], approve=False, reason="Fel tabell.")
    assert refused["status"] == "rejected"
    assert "access.output.reject" in audit_actions(env)
    with pytest.raises(PermissionDenied, match="rejected"):
        core.access_download(env["r1"], extract["id"], "person.csv")


# --- Pseudonyms per permit, anonymised extracts -------------------------------------------


def test_one_person_gets_different_ids_under_different_permits(env):
    core = env["core"]
    ids = []
    keys = []
    for _ in range(2):
        permit = granted(env)["permit"]
        extract = core.access_extract(env["s1"], permit["id"], env["region"])
        core.access_release(env["s2"], extract["id"])
        rows = read_rows(core.access_download(env["r1"], extract["id"], "person.csv"))
        ids.append({int(r["person_id"]) for r in rows})
        with db_session(core.database) as s:
            keys.append(bytes.fromhex(s.get(Permit, permit["id"]).pseudonym_key))
    assert len(ids[0]) == len(ids[1]) == 40
    assert not ids[0] & ids[1]  # nothing links the two extracts
    # Person 1 under each permit: the permit's own pseudonym, and they differ.
    first = [int(permit_pseudonyms([1], key)[0]) for key in keys]
    assert first[0] in ids[0] and first[1] in ids[1] and first[0] != first[1]
    assert not {1, *DIABETES} & ids[0]  # no region id leaks


def test_anonymised_extract_is_k_anonymous_without_ids(env):
    core = env["core"]
    permit = granted(
        env, variables=["sex", "age_at_index", "municipality_code"], data_form="anonymised",
        data_form_reason="Aggregerade analyser räcker, inga personer behöver följas.",
        output_format="parquet",
    )["permit"]  # fmt: skip
    extract = core.access_extract(env["s1"], permit["id"], env["region"])
    assert extract["checks"]["passed"] and extract["checks"]["k"]["status"] == "pass"
    assert extract["summary"]["anonymiser"]["k"] == 5
    rows = read_rows(file_of(env, extract, "person.parquet"))
    assert rows and "person_id" not in rows[0]
    classes: dict = {}
    for r in rows:
        key = (r["sex"], r["age_at_index"], r["municipality_code"])
        classes[key] = classes.get(key, 0) + 1
    assert min(classes.values()) >= 5


def test_k_check_blocks_a_release(env):
    core = env["core"]
    permit = granted(env, variables=["sex", "year_of_birth", "conditions"])["permit"]
    extract = core.access_extract(env["s1"], permit["id"], env["region"])
    assert extract["checks"]["k"]["status"] == "fail" and not extract["checks"]["passed"]
    with pytest.raises(PermissionDenied, match="automatic checks failed"):
        core.access_release(env["s2"], extract["id"])


# --- The donation consent -----------------------------------------------------------------


def donation(env, **changes):
    return granted(env, legal_basis="donation_consent", ethics_number="", **changes)


def test_donation_permit_includes_only_donors_and_drops_a_withdrawn_one_at_once(env):
    core = env["core"]
    decided = donation(env)
    assert decided["donation_based"]
    assert decided["feasibility"]["donors_only"]
    assert decided["feasibility"]["count"]["value"] == 30  # donors among the 40, not 40
    permit = decided["permit"]
    with db_session(core.database) as s:
        key = bytes.fromhex(s.get(Permit, permit["id"]).pseudonym_key)

    def ids_of(pids):
        return {int(x) for x in permit_pseudonyms(pids, key)}

    first = core.access_extract(env["s1"], permit["id"], env["region"])
    shown = {int(r["person_id"]) for r in read_rows(file_of(env, first, "person.csv"))}
    assert shown == ids_of(DONORS)
    assert not ids_of([35]) & shown  # in the cohort, not a donor: absent
    conditions = read_rows(file_of(env, first, "conditions.csv"))
    assert {int(r["person_id"]) for r in conditions} == shown
    # Statistics under the permit count donors only.
    stats = core.access_request(
        env["r1"], criteria_file(env), {"tables": [["sex"]]}, env["region"],
        permit_id=permit["id"],
    )  # fmt: skip
    assert stats["summary"]["people"]["value"] == 30

    # Donor 5 withdraws: the extract made before is void at once and never leaves ...
    with db_session(core.database) as s:
        resident = s.scalar(select(Resident).where(Resident.person_id == 5))
        version = consent.TEXTS["donate_data"].version
        consent.record_consent(s, resident, "donate_data", False, text_version=version)
    with pytest.raises(PermissionDenied, match="withdrew"):
        core.access_release(env["s2"], first["id"])
    assert core.access_output(env["s1"], first["id"])["status"] == "void"
    assert not (env["dir"] / "access" / "outputs" / str(first["id"]) / "files").exists()
    assert "access.output.void" in audit_actions(env)
    # ... and the next one leaves them out.
    second = core.access_extract(env["s1"], permit["id"], env["region"])
    shown = {int(r["person_id"]) for r in read_rows(file_of(env, second, "person.csv"))}
    assert shown == ids_of([p for p in DONORS if p != 5])
    # Statistics made now count the donors without them (the people an output is about are
    # kept beside it, never in its files: rounded counts cannot show a difference of one).
    again = core.access_request(env["r1"], criteria_file(env), {"tables": [["sex"]]},
                                env["region"], permit_id=permit["id"])  # fmt: skip
    counted = set(np.load(env["dir"] / "access" / "outputs" / str(again["id"]) / "internal"
                          / "person_ids.npy").tolist())  # fmt: skip
    assert counted == {p for p in DONORS if p != 5}
    core.access_release(env["s2"], second["id"])
    core.access_download(env["r1"], second["id"], "person.csv")
    # A released output is void as soon as one of its donors withdraws.
    with db_session(core.database) as s:
        resident = s.scalar(select(Resident).where(Resident.person_id == 6))
        consent.record_consent(s, resident, "donate_data", False, text_version=version)
    with pytest.raises(PermissionDenied, match="withdrew"):
        core.access_download(env["r1"], second["id"], "person.csv")
    assert core.access_output(env["r1"], second["id"])["status"] == "void"


def criteria_file(env) -> Path:
    path = env["dir"] / "criteria.yaml"
    path.write_text(CRITERIA)
    return path


# --- Data requests: every number through the gate -----------------------------------------


def test_data_request_without_permit_is_disclosed(env):
    core = env["core"]
    answer = core.access_request(
        env["r2"], criteria_file(env), {"tables": [["sex"], ["age_band", "sex"]]}, env["region"]
    )
    assert answer["total"] == {"value": 40, "display": "40"}
    assert answer["disclosure"].startswith("counts 1-7 suppressed")
    cells = [row["people"] for table in answer["tables"] for row in table["rows"]]
    assert cells
    for cell in cells:  # rounding policy: 0, suppressed, or a multiple of 5 of at least 10
        assert (
            cell["value"] is None
            or cell["value"] == 0
            or (cell["value"] % 5 == 0 and cell["value"] >= 10)
        )
    assert any(c["value"] is None for c in cells)  # small age-by-sex cells are hidden
    assert "access.request.answer" in audit_actions(env)
    with pytest.raises(InputError, match="only given under a permit"):
        core.access_request(env["r2"], criteria_file(env), {"tables": [["sex"]],
                            "measure": "visits"}, env["region"])  # fmt: skip
    with pytest.raises(FormError):
        core.access_request(env["r2"], criteria_file(env), {"tables": [["eye_colour"]]},
                            env["region"])  # fmt: skip


def test_statistics_under_a_permit_with_a_budget_are_noisy_and_charged(env):
    core = env["core"]
    decision = Decision(
        approve=True, reasons="Statistik räcker.", checklist=dict.fromkeys(CHECKLIST, True),
        epsilon=1.0, extracts=False,
    )  # fmt: skip
    permit = granted(env, decision=decision)["permit"]
    assert permit["budget"] == {"project": f"permit-{permit['id']}", "epsilon": 1.0}
    with pytest.raises(PermissionDenied, match="statistics, not extracts"):
        core.access_extract(env["s1"], permit["id"], env["region"])
    output = core.access_request(
        env["r1"], criteria_file(env), {"tables": [["sex"]], "epsilon": 0.2}, env["region"],
        permit_id=permit["id"],
    )  # fmt: skip
    assert output["kind"] == "statistics" and output["status"] == "checked"
    status = budget_status(f"permit-{permit['id']}", url=core.database)
    assert status.epsilon_spent == pytest.approx(0.4)  # the total and one table
    doc = json.loads(file_of(env, output, "statistics.json").read_text())
    assert "laplace" in doc["disclosure"]
    for row in doc["tables"][0]["rows"]:
        value = row["people"]["value"]
        assert value is None or value == 0 or value >= 8  # noisy, small ones withheld
    assert output["checks"]["small_counts"]["status"] == "pass"
    with pytest.raises(BudgetExceeded, match="nothing was run"):  # 0.6 left, 0.8 needed
        core.access_request(
            env["r1"], criteria_file(env), {"tables": [["sex"]], "epsilon": 0.4},
            env["region"], permit_id=permit["id"],
        )  # fmt: skip
    assert budget_status(f"permit-{permit['id']}", url=core.database).epsilon_spent == (
        pytest.approx(0.4)
    )
    # Nothing is seen before a steward releases it; then the holder downloads it.
    core.access_release(env["s1"], output["id"])
    assert core.access_download(env["r1"], output["id"], "sex.csv").is_file()


def test_dominance_check_blocks_sums_dominated_by_one_person(env):
    core = env["core"]
    permit = granted(env)["permit"]
    output = core.access_request(
        env["r1"], criteria_file(env), {"tables": [["sex"]], "measure": "visits"},
        env["region"], permit_id=permit["id"],
    )  # fmt: skip
    checks = output["checks"]
    # Person 7 (female) made 301 of the female cell's 320 visits: over 85 % with the next.
    assert checks["dominance"]["status"] == "fail" and "female" in checks["dominance"]["detail"]
    with pytest.raises(PermissionDenied, match="automatic checks failed"):
        core.access_release(env["s1"], output["id"])


# --- Deadlines and the public register ----------------------------------------------------


def test_deadlines_are_flagged_when_overdue(env):
    core = env["core"]
    doc = core.access_apply(env["r1"], application(), region=env["region"], submit=True)
    later = datetime.now(UTC) + timedelta(days=91)
    with clock.frozen(later):
        shown = core.access_show(env["s1"], doc["id"])
        assert shown["deadline"]["overdue"]
    permit = core.access_decide(env["s1"], doc["id"], APPROVE)["permit"]
    assert not permit["deadline"]["overdue"]
    with clock.frozen(datetime.now(UTC) + timedelta(days=61)):
        assert core.access_permit(env["s1"], permit["id"])["deadline"]["overdue"]


def test_public_register_lists_granted_permits_only(env):
    core = env["core"]
    granted(env)
    core.access_apply(env["r1"], application(title="Inte beviljad"), region=env["region"],
                      submit=True)  # fmt: skip
    register = core.access_register()
    assert [p["title"] for p in register] == ["Diabetes och hjärta"]
    entry = register[0]
    assert entry["holder"] == "Lunds universitet"
    assert entry["data"]["variables"] == ["sex", "conditions"]
    assert entry["period"]["end"] == TODAY + timedelta(days=365)
    assert "r1@lu.se" not in json.dumps(entry, default=str)  # people are not published


def test_staff_account_ids_resolve(env):
    core = env["core"]
    with db_session(core.database) as s:
        sid = s.scalar(select(StaffAccount.id).where(StaffAccount.email == "s1@region.se"))
    assert core.access_actor(sid).role == "data_steward"
    with pytest.raises(NotFoundError):
        core.access_actor("nobody@region.se")


# --- The command line -----------------------------------------------------------------------


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]):
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, (argv, captured.err)
    return json.loads(captured.out)


@pytest.mark.slow  # about 3 s: every subcommand in turn
def test_cli_apply_list_show_decide_extract_release(env, capsys):
    region = str(env["region"].path)
    path = env["dir"] / "application.yaml"
    path.write_text(yaml.safe_dump(application(), allow_unicode=True))
    doc = run_json(["access", "apply", str(path), "--as", "r1@lu.se", "--region", region], capsys)
    assert doc["status"] == "submitted" and doc["feasibility"]["count"]["display"] == "40"
    listed = run_json(["access", "list", "--as", "s1@region.se"], capsys)
    assert [a["id"] for a in listed["applications"]] == [doc["id"]]
    decided = run_json(
        ["access", "decide", str(doc["id"]), "--as", "s1@region.se", "--approve",
         "--all-checks", "--reasons", "Uppfyller kraven."], capsys,
    )  # fmt: skip
    permit = decided["permit"]["id"]
    extract = run_json(
        ["access", "extract", str(permit), "--as", "s1@region.se", "--region", region], capsys
    )
    assert extract["status"] == "checked"
    assert cli.main(["access", "release", str(extract["id"]), "--as", "s1@region.se"]) == 2
    assert "second person" in capsys.readouterr().err
    released = run_json(["access", "release", str(extract["id"]), "--as", "s2@region.se"], capsys)
    assert released["status"] == "released"
    shown = run_json(["access", "show", str(doc["id"]), "--as", "r1@lu.se"], capsys)
    assert shown["outputs"][0]["status"] == "released"
    out = env["dir"] / "mine.csv"
    run_json(["access", "download", str(extract["id"]), "person.csv", "--as", "r1@lu.se",
              "--out", str(out)], capsys)  # fmt: skip
    assert len(read_rows(out)) == 40
    answer = run_json(
        ["access", "request", str(criteria_file(env)), "--as", "r2@annan.se", "--region",
         region, "--table", "sex", "--table", "age_band,sex"], capsys,
    )  # fmt: skip
    register = run_json(["access", "register"], capsys)
    assert register[0]["holder"] == "Lunds universitet"
    for document in (doc, decided, extract, answer, register):
        assert small_counts(document) == []
    # Errors name the file and field, exit 2, nothing on stdout.
    path.write_text(yaml.safe_dump(application(ethics_number="12"), allow_unicode=True))
    assert cli.main(["access", "apply", str(path), "--as", "r1@lu.se", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "application.yaml" in captured.err
    assert "ethics_number" in captured.err
    # Human-readable output of every command runs too.
    for argv in (["access", "list", "--as", "s1@region.se"],
                 ["access", "show", str(doc["id"]), "--as", "s1@region.se"],
                 ["access", "register"]):  # fmt: skip
        assert cli.main(argv) == 0, capsys.readouterr().err
    assert "OVERDUE" not in capsys.readouterr().out


def test_nothing_is_made_or_downloaded_outside_the_permit_period(env):
    core = env["core"]
    permit = granted(env)["permit"]
    extract = core.access_extract(env["s1"], permit["id"], env["region"])
    core.access_release(env["s2"], extract["id"])
    after = datetime.now(UTC) + timedelta(days=400)  # the period ends in 365 days
    with clock.frozen(after):
        assert core.access_permit(env["r1"], permit["id"])["state"] == "expired"
        with pytest.raises(PermissionDenied, match="expired"):
            core.access_extract(env["s1"], permit["id"], env["region"])
        with pytest.raises(PermissionDenied, match="expired"):
            core.access_download(env["r1"], extract["id"], "person.csv")
        assert core.access_register()[0]["state"] == "expired"


def test_cli_draft_then_submit(env, capsys):
    path = env["dir"] / "draft.json"
    path.write_text(json.dumps(application()))
    draft = run_json(["access", "apply", str(path), "--as", "r1@lu.se"], capsys)
    assert draft["status"] == "draft"
    done = run_json(["access", "submit", str(draft["id"]), "--as", "r1@lu.se", "--region",
                     str(env["region"].path)], capsys)  # fmt: skip
    assert done["status"] == "submitted" and done["feasibility"]["count"]["value"] == 40
    assert cli.main(["access", "list", "--as", "nobody@lu.se"]) == 2
    assert "no active staff account" in capsys.readouterr().err


def test_a_revoked_permit_stops_everything(env, capsys):
    core = env["core"]
    permit = granted(env)["permit"]
    extract = core.access_extract(env["s1"], permit["id"], env["region"])
    with pytest.raises(PermissionDenied):
        core.access_revoke(env["r1"], permit["id"], "Nej.")
    with pytest.raises(FormError) as caught:
        core.access_revoke(env["s1"], permit["id"], " ")
    assert "revoke_reason" in caught.value.fields
    doc = run_json(["access", "revoke", str(permit["id"]), "--as", "s2@region.se", "--reason",
                    "Villkoren bröts."], capsys)  # fmt: skip
    assert doc["state"] == "revoked" and doc["revoked"]["reason"] == "Villkoren bröts."
    with pytest.raises(PermissionDenied, match="revoked"):
        core.access_release(env["s2"], extract["id"])
    with pytest.raises(PermissionDenied, match="revoked"):
        core.access_extract(env["s1"], permit["id"], env["region"])
    with pytest.raises(InputError, match="already revoked"):
        core.access_revoke(env["s1"], permit["id"], "Igen.")
    assert core.access_register()[0]["state"] == "revoked"
    assert "access.permit.revoke" in audit_actions(env)
