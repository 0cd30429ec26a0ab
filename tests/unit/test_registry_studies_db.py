"""Residents, consents, studies, matching, invitations and the outbox on the operational DB."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from brygga import audit, clock
from brygga.config import NotifySettings
from brygga.db import engine as db_engine
from brygga.db import session as db_session
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError
from brygga.privacy.disclosure import RoundingPolicy, TeamPolicy
from brygga.records.schema import IDENTITY
from brygga.registry import consent, service
from brygga.registry.models import ConsentEvent, Resident
from brygga.studies import (
    funnel,
    invitations,
    matching,
    outbox,
    participation,
    registration,
    review,
    staff,
)
from brygga.studies.models import Invitation, OutboxMessage
from brygga.studies.senders import FileSender

TODAY = date.today()
VERSION = consent.TEXTS["contact"].version


def valid_pnr(birth: str, serial: int) -> str:
    digits = [int(c) for c in birth[2:] + f"{serial:03d}"]
    total = sum(sum(divmod(d * w, 10)) for d, w in zip(digits, [2, 1] * 5, strict=False))
    return f"{birth}-{serial:03d}{(10 - total % 10) % 10}"


def write_identities(path, n=40):
    rows = []
    for i in range(n):
        pnr = valid_pnr(f"19{50 + i % 40:02d}0{1 + i % 9}1{i % 9}", 100 + i)
        rows.append(
            {
                "person_id": 1000 + i,
                "personnummer": pnr,
                "given_name": f"Förnamn{i}",
                "family_name": f"Efternamn{i}",
                "street_address": f"Gatan {i}",
                "postal_code": "211 20",
                "post_town": "Malmö",
                "municipality_code": "1280" if i % 2 == 0 else "1283",
                "phone": f"070-17406{i:02d}",
                "email": f"person{i}@example.com",
            }
        )
    schema = pa.schema([(c.name, c.type) for c in IDENTITY.columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


@pytest.fixture(autouse=True, scope="module")
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


@pytest.fixture
def env(tmp_path, monkeypatch, fresh_db):
    """A migrated database (SQLite, and PostgreSQL when the run has one) with identities."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    url = fresh_db
    people = write_identities(tmp_path / "ids.parquet")
    with db_session(url) as s:
        service.load_identities(s, tmp_path / "ids.parquet")
    return {"url": url, "people": people, "dir": tmp_path}


def audit_lines(env):
    path = env["dir"] / "audit" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def join(s, pnr, *, areas=(), travel=None, healthy=False, conditions=(), records=False):
    r = service.register(s, service.by_personnummer(s, pnr))
    service.update_profile(
        s,
        r,
        {
            "areas": list(areas),
            "max_travel_km": travel,
            "healthy_volunteer": healthy,
            "conditions": list(conditions),
        },
    )
    consent.record_consent(s, r, "contact", True, text_version=VERSION)
    if records:
        consent.record_consent(s, r, "match_records", True, text_version=VERSION)
    return r


def setup_org(s):
    org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
    researcher = staff.create_staff(
        s,
        {
            "email": "Forskare@Example.com",
            "display_name": "Forskare",
            "role": "researcher",
            "organization_id": org.id,
            "password": "correct horse battery",
        },
    )
    office = staff.create_staff(
        s,
        {
            "email": "fou@example.com",
            "display_name": "FoU",
            "role": "research_office",
            "password": "correct horse battery",
        },
    )
    return org, researcher, office


def study_data(**kw):
    data = {
        "title_sv": "Metformin och minne",
        "title_en": "Metformin and memory",
        "summary_sv": "Vi undersöker om metformin påverkar minnet.",
        "summary_en": "We study whether metformin affects memory.",
        "sponsor": "Lunds universitet",
        "phase": "2",
        "area": "diabetes",
        "ethics_number": "2024-01234-01",
        "target_enrolment": 100,
        "recruitment_start": (TODAY - timedelta(days=10)).isoformat(),
        "recruitment_end": (TODAY + timedelta(days=300)).isoformat(),
        "sites": [{"name": "SUS Lund", "municipality_code": "1281"}],
        "criteria_yaml": "demographics:\n  age: {min: 18}\ninclude:\n  - condition: {codes: [E11], vocabulary: ICD10}\n",
    }
    return data | kw


def approved_study(s, **kw):
    _, researcher, office = setup_org(s)
    study = registration.create_study(s, researcher, study_data(**kw))
    registration.submit(s, researcher, study)
    registration.review(s, office, study, approve=True)
    return study, researcher, office


def no_records(_study):
    return set()


# --- schema -----------------------------------------------------------------------------------


def test_migrations_match_the_models(env):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import brygga.db.models  # noqa: F401  (the other packages' models)
    from brygga.db import Base

    with db_engine(env["url"]).connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == []


# --- residents --------------------------------------------------------------------------------


def test_load_identities_is_idempotent_and_audited(env):
    with db_session(env["url"]) as s:
        assert service.load_identities(s, env["dir"] / "ids.parquet") == 0
        assert s.scalar(select(func.count()).select_from(Resident)) == 40
    loads = [r for r in audit_lines(env) if r["action"] == "identity.load"]
    assert [r["details"]["added"] for r in loads] == [40, 0]


def test_load_identities_refuses_other_files(env):
    pq.write_table(pa.table({"x": [1]}), env["dir"] / "other.parquet")
    with db_session(env["url"]) as s, pytest.raises(InputError, match="not an identities file"):
        service.load_identities(s, env["dir"] / "other.parquet")


def test_profile_field_errors(env):
    pnr = env["people"][0]["personnummer"]
    with db_session(env["url"]) as s:
        r = service.register(s, service.by_personnummer(s, pnr))
        with pytest.raises(FormError) as exc:
            service.update_profile(
                s, r, {"height_cm": 20, "areas": ["astrology"], "contact_channel": "pigeon"}
            )
        assert set(exc.value.fields) == {"height_cm", "areas", "contact_channel"}
        assert "at least 50" in exc.value.fields["height_cm"]
        profile = service.update_profile(s, r, {"conditions": ["t2d"], "height_cm": 180})
        assert profile.conditions == ["t2d"]


def test_consents_are_versioned_with_history_and_audit(env):
    pnr = env["people"][0]["personnummer"]
    with db_session(env["url"]) as s:
        r = service.register(s, service.by_personnummer(s, pnr))
        with pytest.raises(InputError, match="consent text has changed"):
            consent.record_consent(s, r, "contact", True, text_version="2020-1")
        assert consent.record_consent(s, r, "contact", True, text_version=VERSION)
        assert not consent.record_consent(s, r, "contact", True, text_version=VERSION)
        assert consent.record_consent(s, r, "contact", False, text_version=VERSION)
        assert consent.record_consent(s, r, "donate_data", True, text_version=VERSION)
        events = [(e.kind, e.action) for e in consent.history(s, r)]
        assert events == [("contact", "grant"), ("contact", "withdraw"), ("donate_data", "grant")]
        assert r.consent("contact") is None and r.consent("donate_data") is not None
        ref = r.ref
    changes = [x for x in audit_lines(env) if x["action"].startswith("consent.")]
    assert [x["action"] for x in changes] == ["consent.grant", "consent.withdraw", "consent.grant"]
    assert {x["actor"] for x in changes} == {f"resident:{ref}"}
    assert audit.verify(env["dir"] / "audit" / "audit.jsonl").ok


def test_delete_erases_identity_and_keeps_anonymous_audit(env):
    person = env["people"][3]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        r = join(s, person["personnummer"], conditions=["t2d"])
        assert matching.match_study(s, study, no_records) == 1
        participation.delete_account(s, r)
        rid = r.id
    with db_session(env["url"]) as s:
        gone = s.get(Resident, rid)
        assert gone.personnummer is None and gone.given_name is None and gone.email is None
        assert gone.profile is None and gone.consents == []
        assert s.scalar(select(func.count()).where(OutboxMessage.resident_id == rid)) == 0
        assert (
            s.scalar(select(Invitation.status).where(Invitation.resident_id == rid)) == "withdrawn"
        )
        with pytest.raises(NotFoundError):
            service.by_personnummer(s, person["personnummer"])
        # History rows remain but say nothing about who it was.
        assert s.scalar(select(func.count()).where(ConsentEvent.resident_id == rid)) == 1
    text = (env["dir"] / "audit" / "audit.jsonl").read_text()
    assert "resident.delete" in text
    for value in person.values():
        if isinstance(value, str):
            # Security property 1: no personal data in the audit log. As a whole token: a
            # 4-digit municipality code also turns up inside timestamps and hashes by chance.
            token = rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])"
            assert re.search(token, text) is None, value


def test_export_my_data(env):
    pnr = env["people"][1]["personnummer"]
    with db_session(env["url"]) as s:
        r = join(s, pnr, areas=["diabetes"])
        document = participation.export_data(s, r)
    text = json.dumps(document, default=str, ensure_ascii=False)
    assert document["identity"]["personnummer"] == pnr
    assert document["profile"]["areas"] == ["diabetes"]
    assert document["consents"]["contact"]["granted"] is True
    assert [e["action"] for e in document["consent_history"]] == ["grant"]
    assert document["invitations"] == []
    assert "Förnamn1" in text
    assert audit_lines(env)[-1]["action"] == "identity.read"


def test_identity_for_the_portal_and_the_demo_list_is_an_audited_read(env):
    """Security property 4 in the domain: the functions that return identity write the read
    record themselves, so no caller (web page, API, script) can show identity unaudited."""
    pnr = env["people"][0]["personnummer"]
    with db_session(env["url"]) as s:
        r = service.register(s, service.by_personnummer(s, pnr))
        shown = service.portal_identity(r)
        assert shown["personnummer"] == pnr and "person_id" not in shown
        last = audit_lines(env)[-1]
        assert (last["action"], last["actor"]) == ("identity.read", f"resident:{r.ref}")
        assert last["details"] == {"purpose": "portal"}
        people = service.demo_login_people(s, 2)
        assert len(people) == 2 and people[0].id == r.id  # the registered resident first
        last = audit_lines(env)[-1]
        assert (last["action"], last["actor"]) == ("identity.read", "demo-login")
        assert last["details"] == {"purpose": "demo log-in list", "count": 2}


# --- staff and studies -------------------------------------------------------------------------


def test_staff_passwords_are_argon2(env):
    with db_session(env["url"]) as s:
        _, researcher, _ = setup_org(s)
        assert researcher.password_hash.startswith("$argon2id$")
        assert "correct horse" not in researcher.password_hash
        assert (
            staff.authenticate(s, "forskare@example.com", "correct horse battery").id
            == researcher.id
        )
        for email, password in (("forskare@example.com", "wrong"), ("nobody@example.com", "x")):
            with pytest.raises(PermissionDenied, match="wrong e-mail address or password"):
                staff.authenticate(s, email, password)
        with pytest.raises(FormError) as exc:
            staff.create_staff(
                s, {"email": "bad", "display_name": "x", "role": "researcher", "password": "short"}
            )
        assert set(exc.value.fields) == {"email", "password"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ethics_number": "2024-1234-01"}, "ethics_number"),
        ({"eu_ct_number": "2024-12345-12-00"}, "eu_ct_number"),
        ({"recruitment_end": (TODAY - timedelta(days=30)).isoformat()}, "recruitment_end"),
        ({"summary_sv": "x" * 2001}, "summary_sv"),
        (
            {"criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: NOPE}\n"},
            "criteria",
        ),
        ({"criteria_yaml": "include: [\n"}, "criteria"),
        ({"sites": [{"name": "Mars", "municipality_code": "9999"}]}, "sites.0.municipality_code"),
        ({"area": "astrology"}, "area"),
    ],
)
def test_study_field_errors(env, change, field):
    with db_session(env["url"]) as s:
        _, researcher, _ = setup_org(s)
        with pytest.raises(FormError) as exc:
            registration.create_study(s, researcher, study_data(**change))
    assert field in exc.value.fields


def test_study_lifecycle(env):
    with db_session(env["url"]) as s:
        _, researcher, office = setup_org(s)
        study = registration.create_study(
            s, researcher, study_data(ethics_number="", drug_trial=True)
        )
        assert study.status == "draft"
        with pytest.raises(FormError) as exc:
            registration.submit(s, researcher, study)
        assert set(exc.value.fields) == {"ethics_number", "eu_ct_number"}
        registration.update_study(
            s, researcher, study, study_data(drug_trial=True, eu_ct_number="2024-512345-12-00")
        )
        with pytest.raises(PermissionDenied):
            registration.submit(s, office, study)
        registration.submit(s, researcher, study)
        with pytest.raises(InputError, match="cannot be edited"):
            registration.update_study(s, researcher, study, study_data())
        with pytest.raises(PermissionDenied):
            registration.review(s, researcher, study, approve=True)
        with pytest.raises(FormError, match="reason"):
            registration.review(s, office, study, approve=False)
        registration.review(s, office, study, approve=False, reason="Oklar rekrytering")
        assert (study.status, study.review_reason) == ("rejected", "Oklar rekrytering")
        with pytest.raises(InputError, match="cannot be submitted"):  # a rejection is final
            registration.submit(s, researcher, study)
        # Returned for changes instead: edited, submitted again, approved.
        second = registration.create_study(s, researcher, study_data())
        registration.submit(s, researcher, second)
        review.return_for_changes(s, office, second, "Ange försäkringen.")
        assert (second.status, second.review_reason) == ("returned", "Ange försäkringen.")
        registration.update_study(s, researcher, second, study_data(title_sv="Ny titel"))
        assert second.status == "returned"
        registration.submit(s, researcher, second)
        registration.review(s, office, second, approve=True)
        assert second.status == "approved"
        assert [h.action for h in review.history(s, second)] == [
            "submit",
            "return",
            "submit",
            "approve",
        ]
        assert registration.studies_for(s, office) == [second, study]


def test_every_ctgov_record_becomes_a_valid_draft(env, shared_dir):
    from brygga.studies import ctgov

    records = ctgov.load_records(shared_dir / "data" / "ctgov" / "ctgov-v2-studies-100.json")
    with db_session(env["url"]) as s:
        _, researcher, _ = setup_org(s)
        for record in records:
            data = registration.from_ctgov(ctgov.import_record(record))
            data["sites"] = [{"name": "SUS Lund", "municipality_code": "1281"}]
            study = registration.create_study(s, researcher, data)
            assert study.nct_id == record["protocolSection"]["identificationModule"]["nctId"]


# --- matching and invitations ----------------------------------------------------------------


def test_matching_is_idempotent_and_respects_preferences(env):
    p = [x["personnummer"] for x in env["people"]]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        fits = join(s, p[0], areas=["diabetes"], travel=50, conditions=["t2d"])
        join(s, p[1], areas=["oncology"], conditions=["t2d"])  # other area
        join(s, p[2], conditions=["t2d"], travel=10)  # Malmö-Lund is ~16 km
        join(s, p[4], conditions=["hypertension"])  # no diabetes reported
        on_records = join(s, p[6], conditions=[], records=True)  # records decide
        not_on_records = join(s, p[8], conditions=["t2d"], records=True)
        eligible = {on_records.person_id}
        assert matching.match_study(s, study, lambda _: eligible) == 2
        assert matching.match_study(s, study, lambda _: eligible) == 0  # idempotent
        got = dict(s.execute(select(Invitation.resident_id, Invitation.basis)).all())
        assert got == {fits.id: "self_report", on_records.id: "records"}
        assert not_on_records.id not in got
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 2
        # The database itself refuses a second invitation for the same person and study.
        s.add(
            Invitation(
                study_id=study.id,
                resident_id=fits.id,
                basis="records",
                created_at=clock.now(),
                expires_at=clock.now(),
            )
        )
        with pytest.raises(IntegrityError):
            s.flush()


def test_healthy_volunteer_studies_invite_only_healthy_volunteers(env):
    p = [x["personnummer"] for x in env["people"]]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(
            s, healthy_volunteers=True, criteria_yaml="demographics: {age: {min: 18}}"
        )
        join(s, p[0])
        healthy = join(s, p[2], healthy=True)
        assert matching.match_study(s, study, no_records) == 1
        assert s.scalar(select(Invitation.resident_id)) == healthy.id


def test_pause_and_withdrawal_take_effect_at_once(env):
    p = [x["personnummer"] for x in env["people"]]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        paused = join(s, p[0], conditions=["t2d"])
        service.pause(s, paused, True)
        withdrawn = join(s, p[2], conditions=["t2d"])
        assert matching.match_study(s, study, no_records) == 1
        participation.set_consent(
            s, withdrawn, "contact", False, text_version=VERSION, eligibility=no_records
        )
        assert (
            s.scalar(select(Invitation.status).where(Invitation.resident_id == withdrawn.id))
            == "withdrawn"
        )
        assert matching.match_study(s, study, no_records) == 0
        service.pause(s, paused, False)
        assert matching.match_study(s, study, no_records) == 1
        assert (
            s.scalar(select(Invitation.resident_id).where(Invitation.status == "sent")) == paused.id
        )


def test_withdrawing_contact_closes_invitations_even_if_the_registry_had_it_withdrawn(env):
    """The studies-level withdrawal closes invitations whatever the registry's state: an
    invitation left open by a registry-only withdrawal is closed by the next withdrawal."""
    p = [x["personnummer"] for x in env["people"]]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        r = join(s, p[0], conditions=["t2d"])
        assert matching.match_study(s, study, no_records) == 1
        assert consent.record_consent(s, r, "contact", False, text_version=VERSION)
        status = select(Invitation.status).where(Invitation.resident_id == r.id)
        assert s.scalar(status) == "sent"  # the registry's half alone does not touch it
        changed = participation.set_consent(
            s, r, "contact", False, text_version=VERSION, eligibility=no_records
        )
        assert changed is False and s.scalar(status) == "withdrawn"


def test_only_participation_calls_the_registry_halves_of_withdrawal_and_deletion():
    """Security property 5: withdrawal and deletion must also close invitations, which the
    registry cannot see; so outside the registry only studies/participation.py may call the
    registry's halves (a web route calling them would leave invitations open)."""
    src = Path(__file__).resolve().parents[2] / "src" / "brygga"
    halves = re.compile(r"\b(record_consent|erase_registry_data|export_registry_data)\(")
    callers = {
        path.relative_to(src).as_posix()
        for path in src.rglob("*.py")
        if halves.search(path.read_text(encoding="utf-8"))
    }
    assert callers == {"registry/consent.py", "registry/service.py", "studies/participation.py"}


def test_not_recruiting_studies_do_not_match(env):
    with db_session(env["url"]) as s:
        _, researcher, _ = setup_org(s)
        draft = registration.create_study(s, researcher, study_data())
        join(s, env["people"][0]["personnummer"], conditions=["t2d"])
        assert matching.match_study(s, draft, no_records) == 0


def test_identity_reaches_the_team_only_after_interested(env):
    p = [x["personnummer"] for x in env["people"]]
    with db_session(env["url"]) as s:
        study, researcher, office = approved_study(s)
        yes, no = join(s, p[0], conditions=["t2d"]), join(s, p[2], conditions=["t2d"])
        matching.match_study(s, study, no_records)
        assert invitations.team_view(s, researcher, study) == []
        reads_before = sum(1 for x in audit_lines(env) if x["action"] == "identity.read")
        [inv_yes] = invitations.for_resident(s, yes)
        [inv_no] = invitations.for_resident(s, no)
        invitations.mark_seen(s, yes, inv_yes.id)
        invitations.answer(s, yes, inv_yes.id, interested=True)
        invitations.answer(s, no, inv_no.id, interested=False)
        with pytest.raises(InputError, match="can no longer be answered"):
            invitations.answer(s, no, inv_no.id, interested=True)
        with pytest.raises(NotFoundError):
            invitations.answer(s, no, inv_yes.id, interested=False)  # someone else's
        with pytest.raises(PermissionDenied):
            invitations.team_view(s, office, study)  # the research office is not the team
        rows = invitations.team_view(s, researcher, study)
        assert [r["name"] for r in rows] == [f"{yes.given_name} {yes.family_name}"]
        assert rows[0]["email"] == yes.email
        reads = [x for x in audit_lines(env) if x["action"] == "identity.read"]
        assert len(reads) == reads_before + 1
        assert reads[-1]["details"]["invitations"] == [inv_yes.id]
        invitations.record_outcome(s, researcher, inv_yes.id, "enrolled")
        with pytest.raises(InputError):
            invitations.record_outcome(s, researcher, inv_no.id, "enrolled")
        exact = funnel.funnel(s, study, TeamPolicy())
        assert {k: v["value"] for k, v in exact["stages"].items()} == {
            "matched": 2, "invited": 0, "seen": 2, "interested": 1, "enrolled": 1
        }  # fmt: skip
        assert exact["days_to_first_enrolment"] == 0
        disclosed = funnel.funnel(s, study, RoundingPolicy())
        assert disclosed["stages"]["matched"] == {"value": None, "display": "<8"}
        assert disclosed["days_to_first_enrolment"] is None


def test_expired_invitations_cannot_be_answered(env):
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        r = join(s, env["people"][0]["personnummer"], conditions=["t2d"])
        matching.match_study(s, study, no_records)
        [inv] = invitations.for_resident(s, r)
        inv.expires_at = clock.now() - timedelta(days=1)
        s.flush()
        assert invitations.expire_due(s) == 1
        with pytest.raises(InputError, match="expired"):
            invitations.answer(s, r, inv.id, interested=True)


def test_outbox_file_sender(env):
    p = env["people"]
    with db_session(env["url"]) as s:
        study, *_ = approved_study(s)
        by_mail = join(s, p[0]["personnummer"], conditions=["t2d"])
        service.update_profile(s, by_mail, {"conditions": ["t2d"], "contact_channel": "email"})
        join(s, p[2]["personnummer"], conditions=["t2d"])  # in-app
        leaving = join(s, p[4]["personnummer"], conditions=["t2d"])
        service.update_profile(s, leaving, {"conditions": ["t2d"], "contact_channel": "sms"})
        assert matching.match_study(s, study, no_records) == 3
        participation.delete_account(s, leaving)
    # deliver claims, sends and marks in transactions of its own (no lock held while sending)
    sender = FileSender(env["dir"] / "outbox.jsonl")
    done = {"sent": 1, "in_app": 1, "retrying": 0, "failed": 0}
    assert outbox.deliver(env["url"], sender) == done
    assert outbox.deliver(env["url"], sender) == dict.fromkeys(done, 0)
    with db_session(env["url"]) as s:
        assert funnel.funnel_counts(s, study)["invited"] == 2
    lines = [json.loads(x) for x in (env["dir"] / "outbox.jsonl").read_text().splitlines()]
    assert [(x["channel"], x["to"]) for x in lines] == [("email", p[0]["email"])]
    assert "studie" in lines[0]["text"] and "diabet" not in lines[0]["text"].lower()


def test_a_resident_invited_by_several_studies_gets_one_message(env):
    p = env["people"]
    with db_session(env["url"]) as s:
        _, researcher, office = setup_org(s)
        several = []
        for i in range(3):
            study = registration.create_study(
                s, researcher, study_data(ethics_number=f"2024-0123{i}-01")
            )
            registration.submit(s, researcher, study)
            registration.review(s, office, study, approve=True)
            several.append(study)
        english = join(s, p[0]["personnummer"], conditions=["t2d"])
        service.update_profile(
            s, english, {"conditions": ["t2d"], "contact_channel": "sms", "language": "en"}
        )
        swedish = join(s, p[1]["personnummer"], conditions=["t2d"])
        service.update_profile(s, swedish, {"conditions": ["t2d"], "contact_channel": "email"})
        assert matching.match_all(s, no_records) == {x.id: 2 for x in several}
        assert [funnel.funnel_counts(s, x)["invited"] for x in several] == [0, 0, 0]
    sender = FileSender(env["dir"] / "outbox.jsonl")
    settings = NotifySettings(public_url="https://brygga.example")
    assert outbox.deliver(env["url"], sender, settings) == {
        "sent": 2, "in_app": 0, "retrying": 0, "failed": 0,
    }  # fmt: skip
    with db_session(env["url"]) as s:
        # Each study's invitations count as sent once the resident's digest went out.
        assert [funnel.funnel_counts(s, x)["invited"] for x in several] == [2, 2, 2]
    lines = [json.loads(x) for x in (env["dir"] / "outbox.jsonl").read_text().splitlines()]
    assert [(x["channel"], x["to"]) for x in lines] == [
        ("sms", p[0]["phone"]), ("email", p[1]["email"]),
    ]  # fmt: skip
    assert lines[0]["text"] == (
        "You have 3 new study invitations in Brygga. "
        "Log in to read and answer: https://brygga.example/portal"
    )  # an SMS: the one line
    assert lines[1]["text"].startswith("Du har 3 nya studieinbjudningar i Brygga.")
    for line in lines:
        assert "https://brygga.example/portal" in line["text"]
        # No study or health details travel by e-mail or SMS (only the count).
        for leak in ("metformin", "diabet", "Lunds", "2024-0123"):
            assert leak.lower() not in line["text"].lower()


# --- the resident's page version (migration 0013's triggers) ----------------------------------


def test_a_residents_page_version_rises_with_every_change_their_pages_show(env):
    """The resident's own pages are kept rendered under ``page_version`` (web.deps.render_own):
    it must rise with every write to what they show, whoever writes (ORM, Core bulk inserts
    like the matching run's, plain SQL), and only the resident's own."""
    from sqlalchemy import delete, insert, update

    url = env["url"]
    with db_session(url) as s:
        mine = join(s, env["people"][0]["personnummer"])
        other = join(s, env["people"][1]["personnummer"])
        study, _, _ = approved_study(s)
        ids = {"me": mine.id, "ref": mine.ref, "other": other.ref, "study": study.id}
    assert service.page_version(url, "no-such-ref") is None
    other_before = service.page_version(url, ids["other"])
    versions = [service.page_version(url, ids["ref"])]

    def write(change) -> None:
        with db_session(url) as s:
            change(s)
        now = service.page_version(url, ids["ref"])
        assert now is not None and now > versions[-1], change
        versions.append(now)

    def by_id(s):
        return s.get(Resident, ids["me"])

    write(lambda s: service.pause(s, by_id(s), True))  # the resident's own row
    write(lambda s: service.update_profile(s, by_id(s), {"conditions": ["t2d", "copd"]}))
    write(
        lambda s: consent.record_consent(s, by_id(s), "match_records", True, text_version=VERSION)
    )
    write(
        lambda s: consent.record_consent(s, by_id(s), "match_records", False, text_version=VERSION)
    )
    now = clock.now()
    invitation = {"study_id": ids["study"], "resident_id": ids["me"], "basis": "self_report"}
    invitation |= {"status": "sent", "created_at": now, "expires_at": now + timedelta(days=30)}
    write(lambda s: s.execute(insert(Invitation).values(invitation)))  # as the matching run
    write(lambda s: s.execute(update(Invitation).values(status="expired")))
    write(lambda s: s.execute(delete(Invitation)))
    # A write that changes nothing of the resident's is not a new version.
    with db_session(url) as s:
        s.execute(update(Resident).where(Resident.ref == ids["other"]).values(phone="070-1"))
    assert service.page_version(url, ids["ref"]) == versions[-1]
    assert service.page_version(url, ids["other"]) > other_before
    # Erasure: the account is gone, so are its kept pages.
    with db_session(url) as s:
        service.erase_registry_data(s, by_id(s))
    assert service.page_version(url, ids["ref"]) is None
