"""Site feasibility as an inquiry type (Trial Nation's and Feasibility Sweden's model).

A sponsor asks clinical sites whether they can run a trial: the form holds the questions of an
early-feedback form (protocol, phase, area, indication, sites and participants wanted in
Sweden, first participant, recruitment period, key criteria, special requirements) and,
optionally, the eligibility criteria in Brygga's language. Each site answers interested or
declined with a reason, and an interested site gives its estimate (participants it can
recruit, competing studies at the site). The sponsor sees one collated answer, and records the
set-up milestones (approval, site opened, first participant, target reached) as dates.

What none of the anchors has is attached by the platform when the inquiry is sent
(``platform.Brygga.feasibility_data``), through the release gate: the eligible count in the
region's records, the registered volunteers who would match, and the recruiting studies whose
eligible sets overlap. Those 2 + N numbers are about overlapping sets of people, so they
leave together as one table through the release gate (``disclose_figures``): each overlap and
the eligible people it leaves out add up to the eligible count, so a reader cannot subtract an
overlap from the eligible count to learn that a study's criteria leave out three people.

Routing: ``suggest_sites`` proposes the visible directory entries that run clinical studies in
the trial's therapy area (clinical sites, trial units and the KSS nodes); the sponsor chooses.
"""

from __future__ import annotations

__all__ = [
    "FeasibilityForm",
    "SiteEstimate",
    "answer_site",
    "collate",
    "disclose_figures",
    "send_feasibility",
    "set_milestone",
    "suggest_sites",
]

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from brygga import audit
from brygga.ecosystem.directory import list_entries
from brygga.ecosystem.inquiries import Actor, answer, collate, own_inquiry, send_inquiry
from brygga.ecosystem.models import MILESTONES, Entry, Inquiry, InquiryRecipient
from brygga.ecosystem.profiles import THERAPY_AREAS
from brygga.errors import InputError, NotFoundError
from brygga.forms import FormError
from brygga.privacy.people import PeopleCounter, PeopleTable

PHASES = ("1", "1/2", "2", "2/3", "3", "4")


class FeasibilityForm(BaseModel):
    """The sponsor's questions (an early-feedback form), the same for every site asked."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    protocol_title: str = Field(min_length=1, max_length=300)
    sponsor: str = Field(min_length=1, max_length=200)
    phase: Literal[PHASES]  # type: ignore[valid-type]
    therapy_area: Literal[THERAPY_AREAS]  # type: ignore[valid-type]
    indication: str = Field(min_length=1, max_length=300)
    sites_wanted: int = Field(ge=1, le=200)
    participants_sweden: int = Field(ge=1, le=100_000)
    first_participant: date
    recruitment_months: int = Field(ge=1, le=120)
    key_inclusion: str = Field(min_length=1, max_length=4000)
    key_exclusion: str = Field(default="", max_length=4000)
    special_requirements: str = Field(default="", max_length=4000)
    # Eligibility in Brygga's criteria language: the platform attaches the region's figures.
    criteria_yaml: str = Field(default="", max_length=50_000)


class SiteEstimate(BaseModel):
    """An interested site's estimate."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    participants: int = Field(ge=0, le=100_000)
    competing_studies: int = Field(default=0, ge=0, le=1000)
    comment: str = Field(default="", max_length=4000)


def suggest_sites(s: Session, therapy_area: str) -> list[Entry]:
    """Visible entries that run clinical studies in ``therapy_area`` first, then the other
    clinical-trial entries (the KSS nodes route to every site of their healthcare region)."""
    found = [
        e
        for e in list_entries(s)
        if "clinical_trials" in e.support_kinds or "clinical_trials" in e.technology_areas
    ]
    return sorted(found, key=lambda e: (therapy_area not in e.therapy_areas, e.name_sv))


def disclose_figures(
    counter: PeopleCounter,
    eligible: np.ndarray,
    overlaps: Sequence[tuple[int, np.ndarray]],
    volunteers: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[int, dict[str, Any]]]:
    """The region's figures of one feasibility inquiry through the release gate as ONE table:
    the eligible count, the matching volunteers and, per recruiting study, how many of the
    eligible its criteria also take. ``counter``: over the eligible people (``eligible``, their
    sorted ids); ``overlaps``: (study id, the study's eligible ids, sorted).

    Each overlap plus the eligible people the study leaves out (never shown) is the eligible
    count; the left-out ones are protected like the people an attrition rule removes, so an
    overlap close to the eligible count is suppressed rather than shown (secondary suppression
    keeps the eligible count, the headline). Returns (eligible, volunteers, overlap by study)."""
    table = PeopleTable(counter)
    everyone = np.ones(len(eligible), dtype=bool)
    table.add("eligible", everyone)
    for study, ids in overlaps:
        inside = np.isin(eligible, ids, assume_unique=True)
        table.add(("overlap", study), inside)
        table.add_hidden(("left_out", study), ~inside)
        table.line("eligible", [("overlap", study), ("left_out", study)])
    # Registered volunteers (eligible on their records or on their self-report): not a part
    # of the eligible count, so no line; disclosed under the same policy, without a cell key.
    table.table.add("volunteers", volunteers)
    shown = table.disclose(keep=["eligible"])
    by_study = {study: shown[("overlap", study)] for study, _ in overlaps}
    return shown["eligible"], shown["volunteers"], by_study


def send_feasibility(
    s: Session,
    actor: Actor,
    need_id: int,
    entries: list[int | str],
    message: str,
    form: FeasibilityForm,
    data: dict[str, Any] | None = None,
) -> Inquiry:
    return send_inquiry(
        s,
        actor,
        need_id,
        entries,
        message,
        kind="site_feasibility",
        details=form.model_dump(mode="json"),
        data=data,
    )


def answer_site(
    s: Session,
    actor: Actor,
    recipient_id: int,
    decision: str,
    reason: str = "",
    estimate: SiteEstimate | None = None,
) -> InquiryRecipient:
    """A site answers a feasibility inquiry; interested needs an estimate."""
    recipient = s.get(InquiryRecipient, recipient_id)
    if recipient is None or recipient.inquiry.kind != "site_feasibility":
        raise NotFoundError(f"no feasibility inquiry {recipient_id}")
    if decision == "interested" and estimate is None:
        raise FormError({"participants": "is required"})
    done = answer(s, actor, recipient_id, decision, reason)
    if decision == "interested" and estimate is not None:
        done.details = estimate.model_dump()
    return done


def set_milestone(
    s: Session, actor: Actor, inquiry_id: int, name: str, day: date | None
) -> Inquiry:
    """The requester records (or clears, with None) a set-up milestone's date."""
    inquiry = own_inquiry(s, actor, inquiry_id)
    if name not in MILESTONES:
        raise InputError(f"milestone must be one of {', '.join(MILESTONES)}")
    milestones = dict(inquiry.milestones or {})
    if day is None:
        milestones.pop(name, None)
    else:
        milestones[name] = day.isoformat()
    inquiry.milestones = milestones  # a new dict: JSON columns track assignment, not mutation
    audit.append(
        "ecosystem.milestone",
        actor=actor.name,
        details={"inquiry": inquiry.id, "milestone": name, "day": milestones.get(name)},
    )
    return inquiry
