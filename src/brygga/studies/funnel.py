"""Recruitment funnel per study, and feasibility on submission.

The funnel (matched, invited, seen, interested, enrolled; days from approval to the first
enrolment) is exact for the study team and passes the disclosure policy when shown to anyone
else (security property 2), with secondary suppression so that no stage or loss between stages
can be worked out by subtraction. Feasibility combines the regional records (``cohort.feasibility``,
already disclosed) with the number of registered volunteers who would match, disclosed the
same way.
"""

from __future__ import annotations

__all__ = [
    "STAGES",
    "SUBSETS",
    "days_to_first_enrolment",
    "disclose_stages",
    "funnel",
    "funnel_counts",
    "save_feasibility",
    "study_feasibility",
]

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.db.session import write_session
from brygga.privacy.disclosure import DisclosurePolicy, load_settings
from brygga.privacy.gate import CountTable, single
from brygga.privacy.noise import guarded_noise
from brygga.privacy.questions import Asker, QuestionGuard
from brygga.studies import outbox
from brygga.studies.models import Invitation, Study

STAGES = ("matched", "invited", "seen", "interested", "enrolled")
# (stage, a stage whose people are among its people)
SUBSETS = (
    ("matched", "invited"),
    ("matched", "seen"),
    ("invited", "seen"),
    ("seen", "interested"),
    ("interested", "enrolled"),
)


def funnel_counts(session: Session, study: Study) -> dict[str, int]:
    """Exact counts: internal, or for the study team only."""
    by_status = dict(
        session.execute(
            select(Invitation.status, func.count())
            .where(Invitation.study_id == study.id)
            .group_by(Invitation.status)
        ).all()
    )
    matched = sum(by_status.values())
    # Invited: the resident was notified (the digest of the run that made it was delivered).
    invited = (
        session.scalar(
            select(func.count()).where(
                Invitation.study_id == study.id, outbox.invitations_notified(Invitation)
            )
        )
        or 0
    )
    answered = by_status.get("interested", 0) + by_status.get("declined", 0)
    enrolled = (
        session.scalar(
            select(func.count()).where(
                Invitation.study_id == study.id, Invitation.outcome == "enrolled"
            )
        )
        or 0
    )
    return {
        "matched": matched,
        "invited": min(invited, matched),
        "seen": by_status.get("seen", 0) + answered,
        "interested": by_status.get("interested", 0),
        "enrolled": enrolled,
    }


def days_to_first_enrolment(session: Session, study: Study) -> int | None:
    first = session.scalar(
        select(func.min(Invitation.outcome_at)).where(
            Invitation.study_id == study.id, Invitation.outcome == "enrolled"
        )
    )
    if first is None or study.reviewed_at is None:
        return None
    reviewed = study.reviewed_at.replace(tzinfo=None)
    return (first.replace(tzinfo=None) - reviewed).days


def funnel(session: Session, study: Study, policy: DisclosurePolicy) -> dict[str, Any]:
    """The funnel, every count through ``policy`` (``TeamPolicy`` for the study's team)."""
    counts = funnel_counts(session, study)
    days = days_to_first_enrolment(session, study)
    stages = disclose_stages(policy, counts)
    # The delay is shown only once enough people are enrolled that it does not point at one.
    shown_days = days if stages["enrolled"]["value"] not in (None, 0) else None
    return {
        "stages": stages,
        "days_to_first_enrolment": shown_days,
        "disclosure": policy.description,
    }


def disclose_stages(policy: DisclosurePolicy, counts: dict[str, int]) -> dict[str, Any]:
    """The stages through the policy as one table: the people lost between two stages are a
    difference of shown counts (never shown), so a small loss is protected like a suppressed
    count and a suppressed stage cannot be recovered from its neighbours (secondary
    suppression, ``privacy.suppression``). The first stage is suppressed only as a last resort."""
    table = CountTable(policy)
    for stage, n in counts.items():
        table.add(stage, n)
    for upper, lower in SUBSETS:
        if counts[lower] <= counts[upper]:  # (not when invitations were never sent)
            table.hide(("lost", upper, lower), counts[upper] - counts[lower])
            table.line(upper, (lower, ("lost", upper, lower)))
    shown = table.release(keep=[STAGES[0]])
    return {stage: shown[stage] for stage in STAGES}


def study_feasibility(
    session: Session,
    study: Study,
    region: Any,
    eligible: Any,
    policy: DisclosurePolicy,
    guard: QuestionGuard,
    asker: Asker,
    *,
    url: str,
) -> dict[str, Any]:
    """Records feasibility (disclosed) plus registered volunteers who would match (disclosed).

    The question passes ``guard`` first (budgets, rate limit, sweeps; audited: security
    property 7). On a region that is not synthetic the records' counts are noisy and cached
    per question (``privacy.noise``), so near-identical questions cannot be averaged down
    to a hidden count within the budgets either.

    ``session`` may be a read transaction: the guard's records go to the database at ``url``
    in two short write transactions of their own (before and after the count), and the noisy
    answers' cache in one of its own, so no write lock is held while counting."""
    from brygga.cohort.feasibility import feasibility, index_date_for
    from brygga.studies.matching import candidates, volunteers
    from brygga.studies.registration import study_criteria

    criteria = study_criteria(study)
    index_date, note = index_date_for(criteria, region)
    with write_session(url) as w:  # a refusal is committed (and reported) before it raises
        ticket = guard.admit(w, asker.for_study(study.id), criteria, index_date)
    noisy = None if region.synthetic else guarded_noise(load_settings().threshold, url)
    answer = feasibility(criteria, region, index_date=index_date, policy=policy, noisy=noisy)
    with write_session(url) as w:
        guard.answered(w, ticket, answer.count, region=answer.region)
    result = answer.as_dict() | {"notes": [note] if note else []}
    people = volunteers(session)
    on_records = eligible(study) if any(v.records_consent for v in people) else None
    would_match = len(candidates(study, people, on_records))
    result.pop("fingerprint", None)
    result["volunteers"] = single(policy, would_match)
    return result


def save_feasibility(
    session: Session, study_id: int, result: dict[str, Any], criteria_yaml: str
) -> bool:
    """Store a feasibility ``result`` computed (in a read transaction) for ``criteria_yaml``.

    The question runs without the write lock, so the criteria may have changed meanwhile:
    then the result describes criteria the study no longer has and is not stored (False).
    """
    study = session.get(Study, study_id, with_for_update=True)
    if study is None or study.criteria_yaml != criteria_yaml:
        return False
    study.feasibility = result
    return True
