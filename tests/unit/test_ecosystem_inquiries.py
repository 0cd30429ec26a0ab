"""Routed inquiries: fan-out, answers, "Mina ärenden", working-day clocks, escalation,
e-mail through the outbox's sender, audit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from brygga import clock
from brygga.clock import SWEDEN
from brygga.db import session as db_session
from brygga.ecosystem.inquiries import Actor
from brygga.ecosystem.match import NeedDocument
from brygga.ecosystem.models import Entry
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FormError
from brygga.platform import Brygga
from brygga.studies import staff

# Monday 2 March 2026, 09:00 in Sweden: five working days later is Monday 9 March.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=SWEDEN)


@pytest.fixture(autouse=True, scope="module")
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


@pytest.fixture
def world(tmp_path, monkeypatch, fresh_db):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BRYGGA_DATABASE_URL", fresh_db)
    core = Brygga()
    with clock.frozen(MONDAY):
        core.ecosystem.seed(actor="test")
    people = {}
    with db_session(fresh_db) as s:
        lu = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        company = staff.create_organization(s, {"name": "Bolaget AB", "kind": "company"})
        other = staff.create_organization(s, {"name": "Annat AB", "kind": "company"})
        for key, role, org in [("requester", "researcher", company), ("provider", "researcher", lu),
                               ("stranger", "researcher", other), ("office", "research_office", None)]:  # fmt: skip
            account = staff.create_staff(
                s,
                {"email": f"{key}@example.se", "display_name": key, "role": role,
                 "organization_id": org.id if org else None, "password": "correct horse battery"},
            )  # fmt: skip
            people[key] = Actor(account.id, role, org.id if org else None)
        s.execute(update(Entry).where(Entry.slug == "lu-innovation").values(organization_id=lu.id))
    return core, people, tmp_path


def need() -> NeedDocument:
    return NeedDocument(
        title="Patent på en diagnostisk metod", description="Vi vill kommersialisera."
    )


def test_an_inquiry_fans_out_and_each_provider_answers(world):
    core, people, data = world
    eco = core.ecosystem
    with clock.frozen(MONDAY):
        need_id = eco.create_need(people["requester"], need())
        case = eco.send_inquiry(people["requester"], need_id, ["lu-innovation", "max-iv"], "Hej!")
    assert [r["due_on"] for r in case["recipients"]] == ["2026-03-09", "2026-03-09"]
    # No provider is asked twice about one need.
    with pytest.raises(InputError, match="already asked about this need: lu-innovation"):
        eco.send_inquiry(people["requester"], need_id, ["lu-innovation", "ess"], "Igen")
    asked = eco.need(people["requester"], need_id)["asked"]
    assert len(asked) == 2  # the entries' numbers, for the web form to grey out
    # Someone else's need is not theirs to send about.
    with pytest.raises(NotFoundError):
        eco.send_inquiry(people["stranger"], need_id, ["ess"], "Hej")

    (mine,) = [r for r in eco.inbox(people["provider"]) if r["entry"] == "lu-innovation"]
    assert mine["may_answer"] and mine["title"] == "Patent på en diagnostisk metod"
    assert eco.inbox(people["stranger"]) == []
    with pytest.raises(PermissionDenied):
        eco.answer(people["stranger"], mine["recipient"], "interested")
    with pytest.raises(FormError) as info:
        eco.answer(people["provider"], mine["recipient"], "declined", "  ")
    assert "reason" in info.value.fields
    with clock.frozen(MONDAY + timedelta(days=1)):
        eco.answer(
            people["provider"], mine["recipient"], "declined", "Vi tar inte diagnostik just nu"
        )
    with pytest.raises(InputError, match="already been answered"):
        eco.answer(people["provider"], mine["recipient"], "interested")
    # MAX IV has no organization in Brygga: the coordinating office answers for it.
    (office,) = eco.inbox(people["office"])
    assert office["entry"] == "max-iv" and office["may_answer"]
    with clock.frozen(MONDAY + timedelta(days=2)):
        eco.answer(people["office"], office["recipient"], "interested")

    with clock.frozen(MONDAY + timedelta(days=3)):
        (shown,) = eco.cases(people["requester"])
    states = {
        r["entry"]: (r["status_text"], r["reason"], r["working_days"]) for r in shown["recipients"]
    }
    assert states == {
        "lu-innovation": ("Avböjt", "Vi tar inte diagnostik just nu", 1),
        "max-iv": ("Intresserad", None, 2),
    }
    actions = [
        json.loads(x)["action"] for x in (data / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    assert [a for a in actions if a.startswith("ecosystem.") and a != "ecosystem.import"] == [
        "ecosystem.need",
        "ecosystem.inquiry",
        "ecosystem.answer",
        "ecosystem.answer",
    ]  # fmt: skip (before the outcome below)
    assert eco.set_outcome(people["requester"], case["inquiry"], "collaboration") == "collaboration"
    with pytest.raises(NotFoundError):
        eco.set_outcome(people["stranger"], case["inquiry"], "study_started")
    with pytest.raises(FormError):
        eco.set_outcome(people["requester"], case["inquiry"], "party")
    figures = eco.figures()
    assert figures["became_collaborations"] == 1 and figures["became_studies"] == 0
    assert figures["inquiries"] == 1 and figures["with_positive_answer"] == 1
    assert figures["median_working_days_to_first_answer"] == 1
    # What leaves (the CLI, the agenda) passes the release gate: one inquiry is suppressed.
    released = core.ecosystem_figures()
    assert released["inquiries"] == {"value": None, "display": "<8"}
    assert released["share_with_positive_answer"] is None
    assert released["median_working_days_to_first_answer"] is None


def test_overdue_inquiries_are_flagged_and_escalated_once_with_mail(world):
    core, people, data = world
    eco = core.ecosystem
    with clock.frozen(MONDAY):
        need_id = eco.create_need(people["requester"], need())
        eco.send_inquiry(people["requester"], need_id, ["lu-innovation"], "Hej!")
    # Due Monday 9 March: not overdue that day, overdue on Tuesday.
    with clock.frozen(MONDAY + timedelta(days=7)):
        assert not eco.cases(people["requester"])[0]["recipients"][0]["overdue"]
        assert core.ecosystem_round() == {"escalated": 0, "sent": 1, "failed": 0}
    with clock.frozen(MONDAY + timedelta(days=8)):
        recipient = eco.cases(people["requester"])[0]["recipients"][0]
        assert recipient["overdue"] and recipient["status_text"] == "Försenat svar"
        assert core.ecosystem_round() == {"escalated": 1, "sent": 1, "failed": 0}
        assert core.ecosystem_round()["escalated"] == 0  # once
        (escalated,) = eco.inbox(people["office"])
        assert escalated["escalated"] and not escalated["may_answer"]  # the provider answers
    mails = [json.loads(x) for x in (data / "outbox" / "messages.jsonl").read_text().splitlines()]
    assert [m["to"] for m in mails] == ["provider@example.se", "office@example.se"]
    assert all("Brygga" in m["text"] and "diagnostisk" not in m["text"] for m in mails)
    assert "1 förfrågningar" in mails[1]["text"] and "escalated" in mails[1]["text"]


FORM = {
    "protocol_title": "A phase 3 trial of drug X in type 2 diabetes",
    "sponsor": "Nordic Pharma AB",
    "phase": "3",
    "therapy_area": "diabetes",
    "indication": "Type 2 diabetes, HbA1c above target",
    "sites_wanted": 3,
    "participants_sweden": 40,
    "first_participant": "2026-09-01",
    "recruitment_months": 12,
    "key_inclusion": "Age 40-75, type 2 diabetes on metformin",
    "criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n",
}


@pytest.mark.slow  # generates the small synthetic region (session fixture)
def test_site_feasibility_collates_the_sites_answers_with_the_region_s_figures(world, small_region):
    from brygga.ecosystem.feasibility import FeasibilityForm, SiteEstimate

    core, people, _data = world
    eco = core.ecosystem
    form = FeasibilityForm.model_validate(FORM)
    sites = [e["id"] for e in eco.suggest_sites("diabetes")]
    assert sites[0] in {"skanes-universitetssjukhus", "region-skane", "precisionsmedicinskt-centrum-syd",
                        "centrum-for-primarvardsforskning"}  # fmt: skip
    assert "kss-syd" in sites
    data = core.feasibility_data(
        form.criteria_yaml, form.therapy_area, small_region.region, user="staff:1"
    )
    assert set(data) == {"region", "eligible", "volunteers", "overlapping_studies", "disclosure"}
    assert data["eligible"]["display"] and data["volunteers"]["display"]  # released, not raw
    with clock.frozen(MONDAY):
        need_id = eco.create_need(people["requester"], need())
        case = eco.send_feasibility(
            people["requester"], need_id, ["lu-innovation", "kss-syd"], "Kan ni delta?", form, data
        )
    assert case["kind"] == "site_feasibility" and case["data"]["eligible"] == data["eligible"]
    (mine,) = [r for r in eco.inbox(people["provider"]) if r["entry"] == "lu-innovation"]
    assert mine["form"]["participants_sweden"] == 40
    with pytest.raises(FormError):
        eco.answer_site(people["provider"], mine["recipient"], "interested")  # no estimate
    eco.answer_site(people["provider"], mine["recipient"], "interested", "",
                    SiteEstimate(participants=25, competing_studies=1))  # fmt: skip
    eco.set_milestone(people["requester"], case["inquiry"], "approval", MONDAY.date())
    with pytest.raises(InputError):
        eco.set_milestone(people["requester"], case["inquiry"], "party", MONDAY.date())
    with pytest.raises(NotFoundError):
        eco.set_milestone(people["stranger"], case["inquiry"], "approval", MONDAY.date())
    view = eco.collated(people["requester"], case["inquiry"])
    collated = view["collated"]
    assert collated["asked"] == 2 and collated["estimated_participants"] == 25
    assert collated["interested"][0]["participants"] == 25 and not collated["enough"]
    assert [p["site"] for p in collated["pending"]] == [
        "Kliniska Studier Sverige – nod Södra sjukvårdsregionen"
    ]
    assert view["milestones"] == {"approval": "2026-03-02"}


def test_testbed_slots_are_booked_with_confirmation(world):
    core, people, data = world
    eco = core.ecosystem
    eco.assign("lu-pregmp", people["provider"].organization_id, actor="test")
    with clock.frozen(MONDAY):
        start = MONDAY.date() + timedelta(days=30)
        with pytest.raises(PermissionDenied):
            eco.add_slot(people["stranger"], "lu-pregmp", start, start + timedelta(days=14))
        with pytest.raises(InputError, match="only testbeds and infrastructures"):
            eco.add_slot(people["provider"], "lu-innovation", start, start)
        with pytest.raises(FormError):
            eco.add_slot(people["provider"], "lu-pregmp", start, start - timedelta(days=1))
        slot = eco.add_slot(
            people["provider"], "lu-pregmp", start, start + timedelta(days=14), "Renrum B"
        )
        assert eco.slots("lu-pregmp") == [
            {
                "slot": slot,
                "starts_on": "2026-04-01",
                "ends_on": "2026-04-15",
                "note": "Renrum B",
                "taken": False,
            }
        ]
        first = eco.request_booking(
            people["requester"], slot, "Processutveckling för en cellterapi"
        )
        second = eco.request_booking(people["stranger"], slot, "Vi vill också testa")
        with pytest.raises(InputError, match="already asked"):
            eco.request_booking(people["requester"], slot, "Igen")
        (row, *_rest) = eco.bookings(people["provider"], provider=True)
        assert row["may_answer"] and row["status"] == "requested"
        with pytest.raises(PermissionDenied):
            eco.answer_booking(people["requester"], first, "confirmed")
        assert eco.answer_booking(people["provider"], first, "confirmed") == "confirmed"
        with pytest.raises(InputError, match="already booked"):
            eco.answer_booking(people["provider"], second, "confirmed")
        assert (
            eco.answer_booking(people["provider"], second, "declined", "Tiden är tagen")
            == "declined"
        )
        assert eco.slots("lu-pregmp")[0]["taken"]
        with pytest.raises(InputError, match="already booked"):
            eco.request_booking(people["office"], slot, "Och vi?")
        assert [b["status"] for b in eco.bookings(people["requester"])] == ["confirmed"]
        assert core.ecosystem_round()["sent"] == 4  # 2 requests to the provider, 2 answers
    actions = [
        json.loads(x)["action"] for x in (data / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    assert (
        actions.count("ecosystem.booking") == 2 and actions.count("ecosystem.booking_answer") == 2
    )


def test_an_organization_without_staff_has_its_mail_go_to_the_office(world):
    core, people, data = world
    with db_session(core.database) as s:
        empty = staff.create_organization(s, {"name": "Tomma AB", "kind": "company"})
        empty_id = empty.id
    core.ecosystem.assign("ess", empty_id, actor="test")
    with clock.frozen(MONDAY):
        need_id = core.ecosystem.create_need(people["requester"], need())
        core.ecosystem.send_inquiry(people["requester"], need_id, ["ess"], "Hej")
        assert core.ecosystem_round()["sent"] == 1
    mails = [json.loads(x) for x in (data / "outbox" / "messages.jsonl").read_text().splitlines()]
    assert [m["to"] for m in mails] == ["office@example.se"]
