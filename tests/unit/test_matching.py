"""Vectorized matching: the same candidates as the person-by-person definition, and the
database run (idempotent, withdrawal and pause at once, outbox, audit) on every database."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, text

from brygga import clock
from brygga.cohort.criteria import parse_criteria
from brygga.db import session as db_session
from brygga.records.schema import IDENTITY
from brygga.registry import catalogue, consent, geography, service
from brygga.registry.areas import AREAS
from brygga.registry.models import Resident
from brygga.studies import matching, outbox, participation, registration, staff
from brygga.studies.models import Invitation, OutboxMessage
from brygga.studies.selfreport import (
    Health,
    SelfReport,
    demographics_hold,
    demographics_mask,
    may_be_eligible,
)
from brygga.studies.volunteers import NO_PERSON, Volunteers

TODAY = date.today()
CRITERIA = sorted((Path(__file__).parents[2] / "bench" / "criteria").glob("*.yaml"))
DEMOGRAPHICS = (
    "demographics: {age: {min: 40, max: 70}, sex: [female], municipalities: ['1280', '0180']}\n"
    "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n"
)
MUNICIPALITIES = ["1280", "1281", "1283", "1290", "0180", "0182", "9999", None]
TRAVELS = [None, 10, 20, 50, 100]


def random_volunteers(n: int, seed: int) -> Volunteers:
    rng = np.random.default_rng(seed)
    conditions, medicines = list(catalogue.CONDITIONS), list(catalogue.MEDICINES)
    profiles = []
    for _ in range(40):
        has_body = rng.random() < 0.5
        profiles.append(
            Health(
                conditions=frozenset(
                    catalogue.CONDITIONS[k].code
                    for k in rng.choice(conditions, int(rng.integers(0, 3)), replace=False)
                ),
                medicines=frozenset(
                    catalogue.MEDICINES[k].code
                    for k in rng.choice(medicines, int(rng.integers(0, 2)), replace=False)
                ),
                height_cm=int(rng.integers(150, 200)) if has_body else None,
                weight_kg=int(rng.integers(45, 130)) if has_body else None,
                smoking=[None, "never", "former", "current"][int(rng.integers(0, 4))],
            )
        )
    # Birthdays on and around today's date, so the age boundaries are exercised.
    years = rng.integers(1935, 2010, n)
    days = [TODAY + timedelta(days=int(d)) for d in rng.integers(-3, 4, n)]
    birth = np.array(
        [y * 10000 + d.month * 100 + min(d.day, 28) for y, d in zip(years, days, strict=True)]
    )
    area_bits = rng.integers(0, 1 << len(AREAS), n) * (rng.random(n) < 0.6)
    return Volunteers(
        resident_id=np.arange(1, n + 1, dtype=np.int64),
        person_id=np.where(rng.random(n) < 0.95, np.arange(n) + 5000, NO_PERSON),
        records_consent=rng.random(n) < 0.6,
        healthy=rng.random(n) < 0.4,
        areas=area_bits.astype(np.int64),
        area_keys=list(AREAS),
        municipality=rng.integers(0, len(MUNICIPALITIES), n).astype(np.int32),
        municipalities=list(MUNICIPALITIES),
        travel=rng.integers(0, len(TRAVELS), n).astype(np.int32),
        travels=list(TRAVELS),
        birth=birth.astype(np.int32),
        male=rng.random(n) < 0.5,
        health=rng.integers(0, len(profiles), n).astype(np.int32),
        profiles=profiles,
        channel=["in_app"] * n,
    )


def fake_study(i: int, criteria_yaml: str) -> SimpleNamespace:
    areas = list(AREAS)
    sites = [["1281"], ["1280", "1283"], ["0180"], ["0182", "1290"]][i % 4]
    return SimpleNamespace(
        id=i + 1,
        area=areas[i % len(areas)],
        healthy_volunteers=i % 5 == 0,
        sites=[SimpleNamespace(municipality_code=m) for m in sites],
        criteria_yaml=criteria_yaml,
    )


def one_by_one(study, people, eligible, today):
    """The definition, person by person (as matching was written before vectorizing)."""
    criteria = registration.study_criteria(study)
    index_date = criteria.effective_index_date(today)
    sites = [s.municipality_code for s in study.sites]
    out = []
    for v in people:
        if v.areas and study.area not in v.areas:
            continue
        if study.healthy_volunteers and not v.healthy_volunteer:
            continue
        if not geography.within_reach(v.municipality, sites, v.max_travel_km):
            continue
        if v.records_consent and eligible is not None:
            if v.person_id in eligible:
                out.append((v.resident_id, "records"))
        elif may_be_eligible(criteria, v.profile, index_date):
            out.append((v.resident_id, "self_report"))
    return sorted(out)


@pytest.mark.parametrize("records", ["set", "array", "none"])
def test_vectorized_candidates_are_the_one_by_one_candidates(records):
    people = random_volunteers(800, seed=7)
    rng = np.random.default_rng(3)
    chosen = people.person_id[rng.random(len(people)) < 0.3]
    eligible = {"set": set(chosen.tolist()), "array": np.sort(chosen), "none": None}[records]
    cache = matching.RunCache(people)
    texts = [p.read_text(encoding="utf-8") for p in CRITERIA] + [DEMOGRAPHICS]
    total = {"records": 0, "self_report": 0}
    for i, criteria_yaml in enumerate(texts * 2):  # the second round runs on the cache
        study = fake_study(i, criteria_yaml)
        by_records, by_report = matching.candidate_masks(study, people, eligible, TODAY, cache)
        got = sorted(
            [(int(people.resident_id[j]), "records") for j in np.flatnonzero(by_records)]
            + [(int(people.resident_id[j]), "self_report") for j in np.flatnonzero(by_report)]
        )
        assert got == one_by_one(study, people, eligible, TODAY), study.criteria_yaml
        for _, basis in got:
            total[basis] += 1
    assert total["self_report"] > 0  # the comparison saw candidates of both kinds
    assert total["records"] > 0 or records == "none"


def test_demographics_mask_is_demographics_hold_for_each_person():
    criteria = parse_criteria(
        {"demographics": {"age": {"min": 45, "max": 60}, "sex": ["male"],
                          "municipalities": ["1280", "1283"]}}
    )  # fmt: skip
    people = random_volunteers(3000, seed=11)
    index_date = date(TODAY.year, 2, 28)
    mask = demographics_mask(
        criteria, index_date, people.birth, people.male, people.municipality, MUNICIPALITIES
    )
    expected = [demographics_hold(criteria, v.profile, index_date) for v in people]
    assert mask.tolist() == expected
    assert 0 < mask.sum() < len(people)


def test_selfreport_is_health_plus_demographics():
    report = SelfReport(
        birth_date=date(1960, 3, 1), sex="female", municipality="1280", height_cm=170
    )
    assert isinstance(report, Health) and report.body("height") == 170
    assert report.age_at(date(2020, 2, 29)) == 59 and report.age_at(date(2020, 3, 1)) == 60


# --- on the operational database ---------------------------------------------------------------

VERSION = consent.TEXTS["contact"].version


def write_identities(path, n):
    rows = []
    for i in range(n):
        birth = f"19{50 + i % 40:02d}0{1 + i % 9}1{i % 9}"
        digits = [int(c) for c in birth[2:] + f"{100 + i:03d}"]
        check = (
            10
            - sum(sum(divmod(d * w, 10)) for d, w in zip(digits, [2, 1] * 4 + [2], strict=True))
            % 10
        ) % 10
        rows.append({
            "person_id": 1000 + i, "personnummer": f"{birth}-{100 + i:03d}{check}",
            "given_name": f"Förnamn{i}", "family_name": f"Efternamn{i}",
            "street_address": f"Gatan {i}", "postal_code": "211 20", "post_town": "Malmö",
            "municipality_code": ["1280", "1283", "1281"][i % 3],
            "phone": f"070-17406{i:02d}", "email": f"person{i}@example.com",
        })  # fmt: skip
    schema = pa.schema([(c.name, c.type) for c in IDENTITY.columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


@pytest.fixture
def db(tmp_path, monkeypatch, fresh_db):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    people = write_identities(tmp_path / "ids.parquet", 30)
    with db_session(fresh_db) as s:
        service.load_identities(s, tmp_path / "ids.parquet")
    return {"url": fresh_db, "people": people, "dir": tmp_path}


def join(s, pnr, **profile):
    r = service.register(s, service.by_personnummer(s, pnr))
    service.update_profile(s, r, {"conditions": ["t2d"]} | profile)
    consent.record_consent(s, r, "contact", True, text_version=VERSION)
    return r


def studies(s, n):
    org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
    password = {"password": "correct horse battery"}
    author = staff.create_staff(s, password | {"email": "f@example.com", "display_name": "F",
                                               "role": "researcher", "organization_id": org.id})  # fmt: skip
    office = staff.create_staff(s, password | {"email": "o@example.com", "display_name": "O",
                                               "role": "research_office"})  # fmt: skip
    out = []
    for i in range(n):
        study = registration.create_study(s, author, {
            "title_sv": f"Studie {i}", "title_en": f"Study {i}", "summary_sv": "Om diabetes.",
            "summary_en": "On diabetes.", "sponsor": "Lunds universitet", "phase": "2",
            "area": ["diabetes", "oncology"][i % 2], "ethics_number": f"2024-0123{i}-01",
            "target_enrolment": 100,
            "recruitment_start": (TODAY - timedelta(days=10)).isoformat(),
            "recruitment_end": (TODAY + timedelta(days=300)).isoformat(),
            "sites": [{"name": "SUS Lund", "municipality_code": "1281"}],
            "criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n",
        })  # fmt: skip
        registration.submit(s, author, study)
        registration.review(s, office, study, approve=True)
        out.append(study)
    return out


@pytest.fixture(autouse=True, scope="module")
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


def test_load_reads_what_the_profiles_say(db):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        join(s, p[0], areas=["oncology", "diabetes"], max_travel_km=20, healthy_volunteer=True,
             height_cm=180, weight_kg=90, smoking="former", contact_channel="email")  # fmt: skip
        second = join(s, p[1], conditions=["hypertension", "t2d"], medicines=["metformin"])
        consent.record_consent(s, second, "match_records", True, text_version=VERSION)
        paused = join(s, p[2])
        service.pause(s, paused, True)
        service.register(s, service.by_personnummer(s, p[3]))  # no contact consent
        people = matching.volunteers(s)
        assert len(people) == 2
        first, other = list(people)
        assert first.areas == {"oncology", "diabetes"} and first.max_travel_km == 20
        assert first.healthy_volunteer and not first.records_consent
        assert first.channel == "email" and first.municipality == "1280"
        assert (first.profile.height_cm, first.profile.weight_kg) == (180, 90)
        assert first.profile.smoking == "former" and first.profile.sex == "female"
        assert first.profile.birth_date == date(1950, 1, 10)
        assert other.records_consent and other.person_id == 1001 and other.areas == frozenset()
        assert other.profile.conditions == {
            catalogue.CONDITIONS[k].code for k in ("hypertension", "t2d")
        }
        assert other.profile.medicines == {catalogue.MEDICINES["metformin"].code}
        assert other.profile.sex == "male" and other.max_travel_km is None
        assert len(matching.volunteers(s, [second.id])) == 1


def test_a_run_invites_each_candidate_once_and_notifies_each_resident_once(db):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        diabetes, oncology, *_ = studies(s, 4)
        everyone = [join(s, pnr) for pnr in p[:12]]
        only_oncology = join(s, p[12], areas=["oncology"], contact_channel="sms")
        sqlite = s.get_bind().dialect.name == "sqlite"
        before = s.execute(text("PRAGMA cache_size")).scalar() if sqlite else None
        got = matching.match_all(s, lambda _study: None)
        assert got == {diabetes.id: 12, oncology.id: 13, diabetes.id + 2: 12, oncology.id + 2: 13}
        if sqlite:  # the larger page cache of the run is given back
            assert s.execute(text("PRAGMA cache_size")).scalar() == before
        assert matching.match_all(s, lambda _study: None) == dict.fromkeys(got, 0)
        rows = s.execute(select(Invitation.study_id, Invitation.resident_id)).all()
        assert len(rows) == len(set(rows)) == sum(got.values())
        # One digest per resident, however many studies invited them: 13 messages for 50
        # invitations, each counting that resident's new invitations and naming no study.
        per_resident: dict[int, int] = {}
        for _sid, rid in rows:
            per_resident[rid] = per_resident.get(rid, 0) + 1
        messages = s.execute(
            select(OutboxMessage.resident_id, OutboxMessage.channel, OutboxMessage.payload,
                   OutboxMessage.template, OutboxMessage.invitation_id)
        ).all()  # fmt: skip
        assert len(messages) == len(per_resident) == 13
        for rid, channel, payload, template, invitation_id in messages:
            assert template == outbox.DIGEST and invitation_id is None
            assert payload == {"count": per_resident[rid]}
            assert channel == ("sms" if rid == only_oncology.id else "in_app")
        assert per_resident[only_oncology.id] == 2 and per_resident[everyone[0].id] == 4
        assert {r.id for r in everyone} <= {rid for sid, rid in rows if sid == diabetes.id}
    audit = [json.loads(x) for x in (db["dir"] / "audit" / "audit.jsonl").read_text().splitlines()]
    runs = [x for x in audit if x["action"] == "matching.run"]
    assert len(runs) == 1  # the second run invited nobody
    assert runs[0]["details"]["invited"] == {str(k): v for k, v in got.items()}


def test_withdrawn_paused_and_already_invited_get_no_new_invitation(db):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        (study,) = studies(s, 1)
        stays, pauses, withdraws, raced = (join(s, x) for x in p[:4])
        service.pause(s, pauses, True)
        participation.set_consent(
            s, withdraws, "contact", False, text_version=VERSION, eligibility=lambda _study: set()
        )
        # Another run got there first: the unique pair is skipped, not duplicated.
        at = clock.now()
        s.add(Invitation(study_id=study.id, resident_id=raced.id, basis="self_report",
                         status="declined", created_at=at, expires_at=at))  # fmt: skip
        s.flush()
        assert matching.match_study(s, study, lambda _study: set()) == 1
        invited = dict(s.execute(select(Invitation.resident_id, Invitation.status)).all())
        assert invited == {stays.id: "sent", raced.id: "declined"}
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        # A resident's own run (after a profile change) sees only that resident.
        service.pause(s, pauses, False)
        assert matching.match_all(s, lambda _study: set(), resident_ids=[withdraws.id]) == {
            study.id: 0
        }
        assert matching.match_all(s, lambda _study: set(), resident_ids=[pauses.id]) == {
            study.id: 1
        }
        assert s.scalar(select(Resident.id).where(Resident.id == pauses.id)) in {
            rid for (rid,) in s.execute(select(Invitation.resident_id))
        }


def test_a_residents_own_run_sends_one_digest(db):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        some = studies(s, 3)
        other = join(s, p[0])
        assert matching.match_all(s, lambda _study: None) == {x.id: 1 for x in some}
        # A profile change: the resident's own run invites them to 3 studies, one message.
        changing = join(s, p[1], areas=["diabetes"])
        service.update_profile(s, changing, {"conditions": ["t2d"], "areas": []})
        got = matching.match_all(s, lambda _study: None, resident_ids=[changing.id])
        assert got == {x.id: 1 for x in some}
        digests = s.execute(
            select(OutboxMessage.resident_id, OutboxMessage.payload).order_by(OutboxMessage.id)
        ).all()
        assert digests == [(other.id, {"count": 3}), (changing.id, {"count": 3})]


def test_digest_text_says_how_many_and_nothing_else():
    portal = "https://brygga.example/portal"
    assert outbox.digest_text(3, "sv", portal) == (
        "Du har 3 nya studieinbjudningar i Brygga. "
        "Logga in för att läsa och svara: https://brygga.example/portal"
    )
    assert outbox.digest_text(1, "sv", portal).startswith("Du har en ny studieinbjudan i Brygga.")
    assert outbox.digest_text(2, "en", portal).startswith("You have 2 new study invitations in")
    assert outbox.digest_text(1, "en", portal).startswith("You have a new study invitation in")
    links = outbox.Links()
    assert outbox.digest(5, "en", "sms", links).body.startswith("You have 5 new")
    assert outbox.digest(5, "de", "sms", links).body.startswith("Du har 5 nya")  # Swedish first
    assert outbox.digest(5, "sv", "sms", links).body.endswith(links.portal)
    assert links.portal == "http://127.0.0.1:8000/portal"  # the default BRYGGA_NOTIFY_PUBLIC_URL


def test_records_decide_for_those_who_consent(db):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        (study,) = studies(s, 1)
        on_records = join(s, p[0], conditions=[])
        not_on_records = join(s, p[1])
        for r in (on_records, not_on_records):
            consent.record_consent(s, r, "match_records", True, text_version=VERSION)
        self_report = join(s, p[2])
        assert matching.match_study(s, study, lambda _study: np.array([on_records.person_id])) == 2
        got = dict(s.execute(select(Invitation.resident_id, Invitation.basis)).all())
        assert got == {on_records.id: "records", self_report.id: "self_report"}


def test_a_pair_invited_by_a_racing_run_is_skipped_by_the_database(db, monkeypatch):
    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        (study,) = studies(s, 1)
        first, raced = join(s, p[0]), join(s, p[1])
        at = clock.now()
        s.add(Invitation(study_id=study.id, resident_id=raced.id, basis="self_report",
                         status="sent", created_at=at, expires_at=at))  # fmt: skip
        s.flush()
        # As if the other run committed after this one read the existing invitations.
        monkeypatch.setattr(matching, "_invited", lambda *_args: {})
        assert matching.match_study(s, study, lambda _study: None) == 1
        rows = s.execute(select(Invitation.resident_id, Invitation.created_at)).all()
        assert sorted(rid for rid, _ in rows) == sorted([first.id, raced.id])
        messages = s.scalars(select(OutboxMessage.resident_id)).all()
        assert messages == [first.id]  # the other run queues its own message


def test_the_scheduled_run_holds_no_lock_while_it_works_and_writes_in_batches(db, monkeypatch):
    """A resident's consent change during the scheduled run commits at once (it does not wait
    for the run), and the run then honours it; the run writes in batches cut between
    residents (one digest per resident, with all of that resident's new invitations)."""
    import threading
    import time

    from brygga.db.session import write_session
    from brygga.platform import Brygga

    p = [x["personnummer"] for x in db["people"]]
    with db_session(db["url"]) as s:
        made = studies(s, 4)
        joined = [join(s, pnr) for pnr in p[:20]]
        consent.record_consent(s, joined[0], "match_records", True, text_version=VERSION)
        leaving = joined[-1].id
    monkeypatch.setenv("BRYGGA_DATABASE_URL", db["url"])
    monkeypatch.setattr(matching, "BATCH_ROWS", 10)  # 20 residents x 4 studies
    waited: list[float] = []

    def withdraw() -> None:
        started = time.perf_counter()
        with write_session(db["url"]) as s:
            resident = s.get(Resident, leaving)
            participation.set_consent(
                s, resident, "contact", False, text_version=VERSION, eligibility=None
            )
        waited.append(time.perf_counter() - started)

    writer = threading.Thread(target=withdraw)

    def slow_records(_study):  # the records' eligibility: seconds per study on a real region
        if not writer.is_alive() and not waited:
            writer.start()
        time.sleep(0.5)
        return None

    batches: list[int] = []
    insert = matching._insert_batch

    def counted(*args, **kwargs):
        done = insert(*args, **kwargs)
        batches.append(sum(done.values()))
        return done

    monkeypatch.setattr(matching, "_insert_batch", counted)
    core = Brygga()
    monkeypatch.setattr(core, "eligibility", lambda _region: slow_records)
    result = core.match()
    writer.join(timeout=30)
    assert waited and waited[0] < 0.5, waited  # it did not wait for the run's 2 s of work
    with db_session(db["url"]) as s:
        rows = s.execute(select(Invitation.resident_id, Invitation.status)).all()
        digests = s.execute(select(OutboxMessage.resident_id, OutboxMessage.payload)).all()
    assert (leaving, "sent") not in rows  # the withdrawal, committed mid-run, is honoured
    invited = {rid for rid, _ in rows}
    assert invited == {r.id for r in joined} - {leaving}
    assert len(rows) == 4 * len(invited)  # no areas chosen: every study
    assert sorted(rid for rid, _ in digests) == sorted(invited)  # one digest per resident
    counts = [json.loads(x) if isinstance(x, str) else x for _, x in digests]
    assert all(c["count"] == 4 for c in counts)
    assert set(result["invited"]) == {m.id for m in made}
    # Invitations per write transaction: about 10, never a resident's four split apart.
    assert sum(batches) == 76 and len(batches) >= 7 and max(batches) <= 10 + 4, batches
