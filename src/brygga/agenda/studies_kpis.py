"""Live KPIs of the study front door: studies, recruitment, timelines, feasibility questions.

Computed from the operational database (``studies.models``, ``privacy.models``); every count
passes the release gate (``agenda.kpis``). Studies are counted by when they were submitted
(registered), approved (the review's day) and recruiting (approved, recruitment window open on
the period's last day); breakdowns by phase, research area and sponsor kind are given for the
last year of the series, in one table whose groups add up to the year.
"""

from __future__ import annotations

__all__ = ["SPONSOR_KINDS"]

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import case, func, select

from brygga.agenda.kpis import (
    KPI,
    REGISTRY,
    Context,
    Series,
    flow_series,
    median_series,
    point,
    series_of,
    share,
    stock_series,
    to_date,
)
from brygga.privacy.gate import CountTable
from brygga.privacy.models import FeasibilityQuestion
from brygga.privacy.questions import ASKED, REFUSED
from brygga.registry.areas import AREAS
from brygga.studies.models import Invitation, Organization, Study

SOURCE = "Brygga (studieregistret)"
OWNER = "Regionens FoU-enhet (forskningsstöd)"
APPROVED = ("approved", "closed")  # a closed study was approved before it closed
SPONSOR_KINDS = {
    "company": ("Företag", "Company"),
    "university": ("Universitet eller högskola", "University"),
    "care_unit": ("Vårdenhet", "Care unit"),
    "region": ("Region", "Region"),
}
PHASES = {
    "1": ("Fas 1", "Phase 1"),
    "1/2": ("Fas 1/2", "Phase 1/2"),
    "2": ("Fas 2", "Phase 2"),
    "2/3": ("Fas 2/3", "Phase 2/3"),
    "3": ("Fas 3", "Phase 3"),
    "4": ("Fas 4", "Phase 4"),
    "not_applicable": ("Ej läkemedelsprövning", "Not a drug trial"),
}
DIMENSIONS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "phase": ("phase", PHASES),
    "area": ("area", AREAS),
    "sponsor_kind": ("sponsor_kind", SPONSOR_KINDS),
}
DIMENSION_NAMES = {
    "phase": ("Fas", "Phase"),
    "area": ("Forskningsområde", "Research area"),
    "sponsor_kind": ("Huvudman", "Sponsor kind"),
}


def _studies_query() -> Any:
    return select(
        Study.id, Study.status, Study.phase, Study.area, Study.submitted_at, Study.reviewed_at,
        Study.recruitment_start, Study.recruitment_end, Study.target_enrolment,
        Organization.kind.label("sponsor_kind"),
    ).join(Organization, Organization.id == Study.organization_id)  # fmt: skip


def _firsts_query() -> Any:
    enrolled = Invitation.outcome == "enrolled"
    return select(
        Invitation.study_id,
        func.min(Invitation.created_at).label("first_invitation"),
        func.min(case((enrolled, Invitation.outcome_at))).label("first_enrolment"),
    ).group_by(Invitation.study_id)


def _enrolments_query() -> Any:
    return select(Invitation.study_id, Invitation.outcome_at).where(
        Invitation.outcome == "enrolled"
    )


def _invitations_query() -> Any:
    return select(Invitation.created_at, Invitation.outcome)


def _questions_query() -> Any:
    answered = FeasibilityQuestion.result.not_like(f"{REFUSED}%") & (
        FeasibilityQuestion.result != ASKED
    )
    return select(FeasibilityQuestion.at).where(answered)


def _studies(ctx: Context) -> list[Any]:
    return ctx.once("studies", lambda: ctx.session.execute(_studies_query()).all())


def _approved(ctx: Context) -> list[Any]:
    return [s for s in _studies(ctx) if s.status in APPROVED and s.reviewed_at is not None]


def _with_breakdowns(ctx: Context, series: Series, rows: list[Any], day: Callable) -> Series:
    """The last year's studies by phase, area and sponsor kind, each dimension adding up to
    the year (one table through the gate)."""
    year = str(ctx.periods.years[-1])
    in_year = [r for r in rows if (d := day(r)) and ctx.periods.of(d) and d.year == int(year)]
    table = CountTable(ctx.policy)
    table.add("total", len(in_year))
    groups: dict[str, list[str]] = {}
    for dim, (column, labels) in DIMENSIONS.items():
        keys = [getattr(r, column) for r in in_year]
        groups[dim] = sorted(set(labels) | set(keys))
        for key in groups[dim]:
            table.add((dim, key), keys.count(key))
        table.line("total", [(dim, k) for k in groups[dim]])
    shown = table.release(keep=["total"])
    series["breakdowns"] = {
        "period": year,
        "dimensions": [
            {
                "id": dim,
                "name": {"sv": DIMENSION_NAMES[dim][0], "en": DIMENSION_NAMES[dim][1]},
                "groups": [
                    {
                        "key": key,
                        "label": dict(
                            zip(("sv", "en"), DIMENSIONS[dim][1].get(key, (key, key)), strict=True)
                        ),
                        **point(year, shown[(dim, key)]),
                    }
                    for key in keys
                ],
            }
            for dim, keys in groups.items()
        ],
    }
    return series


def studies_registered(ctx: Context) -> Series:
    rows = [s for s in _studies(ctx) if s.submitted_at is not None]
    series = flow_series(ctx, (to_date(s.submitted_at) for s in rows))
    return _with_breakdowns(ctx, series, rows, lambda r: to_date(r.submitted_at))


def studies_approved(ctx: Context) -> Series:
    rows = _approved(ctx)
    series = flow_series(ctx, (to_date(s.reviewed_at) for s in rows))
    return _with_breakdowns(ctx, series, rows, lambda r: to_date(r.reviewed_at))


def _recruiting_span(s: Any) -> tuple[date | None, date | None]:
    start = max(to_date(s.reviewed_at), s.recruitment_start)
    return start, s.recruitment_end


def studies_recruiting(ctx: Context) -> Series:
    rows = _approved(ctx)
    series = stock_series(ctx, (_recruiting_span(s) for s in rows))
    last = ctx.periods.end(str(ctx.periods.years[-1]))

    def open_on_last_day(r: Any) -> date | None:
        start, end = _recruiting_span(r)
        return last if start <= last <= end else None

    return _with_breakdowns(ctx, series, rows, open_on_last_day)


def company_share(ctx: Context) -> Series:
    """Approved studies whose sponsor is a company, as a share of all approved: both counts
    through the gate in one table per period (company + other = all)."""
    counts: dict[Any, int] = {}
    for p in ctx.periods.all():
        counts[(p, "all")] = counts[(p, "company")] = 0
    for s in _approved(ctx):
        where = ctx.periods.of(to_date(s.reviewed_at))
        for p in where or ():
            counts[(p, "all")] += 1
            counts[(p, "company")] += s.sponsor_kind == "company"
    table = CountTable(ctx.policy)
    for p in ctx.periods.all():
        table.add((p, "all"), counts[(p, "all")])
        table.add((p, "company"), counts[(p, "company")])
        table.hide((p, "other"), counts[(p, "all")] - counts[(p, "company")])
        table.line((p, "all"), [(p, "company"), (p, "other")])
    shown = table.release(keep=[(p, "all") for p in ctx.periods.all()])
    points = {
        p: point(p, shown[(p, "company")], share(shown[(p, "company")], shown[(p, "all")]))
        for p in ctx.periods.all()
    }
    return series_of(ctx, points)


def studies_started(ctx: Context) -> Series:
    """Of the studies approved in a period, the share that has enrolled a first participant
    (by the day the figures describe): approved = started + not started, one table."""
    firsts = {r.study_id: r for r in ctx.session.execute(_firsts_query()).all()}
    counts: dict[Any, int] = {}
    for p in ctx.periods.all():
        counts[(p, "approved")] = counts[(p, "started")] = 0
    for s in _approved(ctx):
        first = firsts.get(s.id)
        started = first is not None and to_date(first.first_enrolment) is not None
        for p in ctx.periods.of(to_date(s.reviewed_at)) or ():
            counts[(p, "approved")] += 1
            counts[(p, "started")] += started
    table = CountTable(ctx.policy)
    for p in ctx.periods.all():
        table.add((p, "approved"), counts[(p, "approved")])
        table.add((p, "started"), counts[(p, "started")])
        table.hide((p, "not"), counts[(p, "approved")] - counts[(p, "started")])
        table.line((p, "approved"), [(p, "started"), (p, "not")])
    shown = table.release(keep=[(p, "approved") for p in ctx.periods.all()])
    points = {
        p: point(p, shown[(p, "started")], share(shown[(p, "started")], shown[(p, "approved")]))
        for p in ctx.periods.all()
    }
    return series_of(ctx, points)


def enrolled(ctx: Context) -> Series:
    rows = ctx.session.execute(_enrolments_query()).all()
    return flow_series(ctx, (to_date(r.outcome_at) for r in rows))


def enrolment_against_target(ctx: Context) -> Series:
    """Participants enrolled by the period's end in studies recruiting then, as a percentage
    of those studies' enrolment targets (the targets are study plans, not people)."""
    rows = _approved(ctx)
    enrolments = ctx.session.execute(_enrolments_query()).all()
    counts, targets = {}, {}
    for p in ctx.periods.all():
        day = ctx.periods.end(p)
        open_ = {s.id: s.target_enrolment for s in rows if _open_on(s, day)}
        counts[p] = sum(
            1 for e in enrolments if e.study_id in open_ and to_date(e.outcome_at) <= day
        )
        targets[p] = sum(open_.values())
    table = CountTable(ctx.policy)
    table.add_all(counts, {})
    shown = table.release()
    points = {}
    for p in ctx.periods.all():
        pct = (
            round(100 * shown[p]["value"] / targets[p], 1)
            if shown[p]["value"] is not None and targets[p]
            else None
        )
        points[p] = point(p, shown[p], pct, target_sum=targets[p])
    return series_of(ctx, points)


def _open_on(s: Any, day: date) -> bool:
    start, end = _recruiting_span(s)
    return start <= day <= end


def _days_after_approval(ctx: Context, column: str) -> Series:
    firsts = {r.study_id: r for r in ctx.session.execute(_firsts_query()).all()}
    values = []
    for s in _approved(ctx):
        first = to_date(getattr(firsts[s.id], column)) if s.id in firsts else None
        if first is not None:
            values.append((first, (first - to_date(s.reviewed_at)).days))
    return median_series(ctx, values)


def days_to_decision(ctx: Context) -> Series:
    values = [
        (to_date(s.reviewed_at), (to_date(s.reviewed_at) - to_date(s.submitted_at)).days)
        for s in _studies(ctx)
        if s.reviewed_at is not None and s.submitted_at is not None
    ]
    return median_series(ctx, values)


def days_to_first_invitation(ctx: Context) -> Series:
    return _days_after_approval(ctx, "first_invitation")


def days_to_first_enrolment(ctx: Context) -> Series:
    return _days_after_approval(ctx, "first_enrolment")


def funnel_conversion(ctx: Context) -> Series:
    """Of the invitations made in a period, the share whose resident was enrolled (both counts
    through the gate: invited per period, and enrolled among them, in one table)."""
    rows = ctx.session.execute(_invitations_query()).all()
    invited = {p: 0 for p in ctx.periods.all()}
    won = {p: 0 for p in ctx.periods.all()}
    for r in rows:
        for p in ctx.periods.of(to_date(r.created_at)) or ():
            invited[p] += 1
            won[p] += r.outcome == "enrolled"
    table = CountTable(ctx.policy)
    for p in ctx.periods.all():
        table.add((p, "invited"), invited[p])
        table.add((p, "enrolled"), won[p])
        table.hide((p, "not"), invited[p] - won[p])
        table.line((p, "invited"), [(p, "enrolled"), (p, "not")])
    for year in ctx.periods.years:
        quarters = ctx.periods.quarters(year)
        if quarters:
            for part in ("invited", "enrolled", "not"):
                table.line((str(year), part), [(q, part) for q in quarters])
    shown = table.release()
    points = {
        p: point(p, shown[(p, "invited")], share(shown[(p, "enrolled")], shown[(p, "invited")]))
        for p in ctx.periods.all()
    }
    return series_of(ctx, points)


def feasibility_questions(ctx: Context) -> Series:
    rows = ctx.session.execute(_questions_query()).all()
    return flow_series(ctx, (to_date(r.at) for r in rows))


def _add(kid: str, names: tuple[str, str], defs: tuple[str, str], unit: str, agg: str,
         compute: Callable[[Context], Series], queries: Callable[[], list[Any]],
         inputs: tuple[str, ...], method: str, owner: str = OWNER) -> None:  # fmt: skip
    REGISTRY.add(
        KPI(
            id=kid,
            name_sv=names[0],
            name_en=names[1],
            definition_sv=defs[0],
            definition_en=defs[1],
            unit=unit,
            kind="live",
            source=SOURCE,
            owner=owner,
            aggregation=agg,
            inputs=inputs,
            compute=compute,
            queries=queries,
            method=method,
        )
    )


_STUDY_INPUTS = ("study.submitted_at", "study.reviewed_at", "study.status", "study.phase",
                 "study.area", "organization.kind")  # fmt: skip

_add(
    "studies_registered",
    ("Registrerade studier", "Studies registered"),
    ("Studier som lämnats in till regionen via Brygga under perioden (efter dag för inlämning), "
     "per fas, forskningsområde och huvudman.",
     "Studies submitted to the region through Brygga in the period (by day of submission), by "
     "phase, research area and sponsor kind."),
    "studies", "flow", studies_registered, lambda: [_studies_query()], _STUDY_INPUTS,
    "Counted per year and quarter of submitted_at (Swedish calendar day); the last year broken "
    "down by phase, area and the sponsor organization's kind. Counts through the release gate.",
)  # fmt: skip
_add(
    "studies_approved",
    ("Godkända studier", "Studies approved"),
    ("Studier som godkänts vid regionens granskning under perioden (efter granskningsdag).",
     "Studies approved in the region's review during the period (by day of review)."),
    "studies", "flow", studies_approved, lambda: [_studies_query()], _STUDY_INPUTS,
    "Studies with status approved or closed, counted by reviewed_at; breakdowns as for "
    "studies_registered.",
)  # fmt: skip
_add(
    "studies_recruiting",
    ("Studier som rekryterar", "Studies recruiting"),
    ("Godkända studier vars rekryteringsperiod pågår periodens sista dag.",
     "Approved studies whose recruitment window is open on the period's last day."),
    "studies", "stock", studies_recruiting, lambda: [_studies_query()],
    (*_STUDY_INPUTS, "study.recruitment_start", "study.recruitment_end"),
    "Open from the later of approval and recruitment_start to recruitment_end inclusive.",
)  # fmt: skip
_add(
    "company_initiated_share",
    ("Andel företagsinitierade studier", "Company-initiated share"),
    ("Andel av de studier som godkänts under perioden vars huvudman är ett företag (%).",
     "Share of the studies approved in the period whose sponsor organization is a company (%)."),
    "percent", "share", company_share, lambda: [_studies_query()], _STUDY_INPUTS,
    "company / all approved, both counts disclosed in one table (company + other = all), the "
    "share computed from the disclosed counts.",
)  # fmt: skip
_add(
    "approved_studies_started",
    ("Godkända studier som startat", "Approved studies that started"),
    ("Andel av de studier som godkänts under perioden som har inkluderat minst en deltagare via "
     "Brygga (%). Ingen räknar i dag hur många godkända prövningar som faktiskt startar.",
     "Share of the studies approved in the period that have enrolled at least one participant "
     "through Brygga (%). Nobody counts today how many approved trials actually start."),
    "percent", "share", studies_started, lambda: [_studies_query(), _firsts_query()],
    (*_STUDY_INPUTS, "invitation.outcome", "invitation.outcome_at"),
    "started / approved among the studies approved in the period, one table through the gate "
    "(approved = started + not started); started: a first enrolment by the day described. "
    "Studies recruiting outside Brygga are not seen.",
)  # fmt: skip
_add(
    "participants_enrolled",
    ("Inkluderade deltagare", "Participants enrolled"),
    ("Invånare som inkluderats i en studie via Brygga under perioden (utfall 'inkluderad').",
     "Residents enrolled in a study through Brygga in the period (outcome 'enrolled')."),
    "people", "flow", enrolled, lambda: [_enrolments_query()],
    ("invitation.outcome", "invitation.outcome_at"), "Counted by outcome_at.",
)  # fmt: skip
_add(
    "enrolment_against_target",
    ("Inkludering mot mål", "Enrolment against target"),
    ("Inkluderade deltagare i de studier som rekryterar periodens sista dag, i procent av "
     "studiernas rekryteringsmål.",
     "Participants enrolled in the studies recruiting on the period's last day, as a percentage "
     "of those studies' enrolment targets."),
    "percent", "share", enrolment_against_target,
    lambda: [_studies_query(), _enrolments_query()],
    ("study.target_enrolment", "study.recruitment_start", "study.recruitment_end",
     "invitation.outcome", "invitation.outcome_at"),
    "Enrolled (disclosed) / sum of target_enrolment of the studies open that day.",
)  # fmt: skip
_add(
    "days_submission_to_decision",
    ("Dagar från inlämning till beslut", "Days from submission to decision"),
    ("Median av antal dagar från att en studie lämnats in till regionens beslut, för studier "
     "beslutade under perioden.",
     "Median days from a study's submission to the region's decision, for studies decided in "
     "the period."),
    "days", "median", days_to_decision, lambda: [_studies_query()],
    ("study.submitted_at", "study.reviewed_at"),
    "Median over the studies decided in the period; shown only when the number of studies "
    "(through the release gate) is shown.",
)  # fmt: skip
_add(
    "days_approval_to_first_invitation",
    ("Dagar från godkännande till första inbjudan", "Days from approval to first invitation"),
    ("Median av antal dagar från godkännande till studiens första inbjudan till en invånare, "
     "för studier vars första inbjudan skickades under perioden.",
     "Median days from approval to the study's first invitation of a resident, for studies "
     "whose first invitation went out in the period."),
    "days", "median", days_to_first_invitation, lambda: [_studies_query(), _firsts_query()],
    ("study.reviewed_at", "invitation.created_at"),
    "First invitation per study (min created_at) minus the day of approval.",
)  # fmt: skip
_add(
    "days_approval_to_first_enrolment",
    ("Dagar från godkännande till första inkluderade", "Days from approval to first enrolment"),
    ("Median av antal dagar från godkännande till studiens första inkluderade deltagare, för "
     "studier vars första deltagare inkluderades under perioden.",
     "Median days from approval to the study's first enrolled participant, for studies whose "
     "first participant was enrolled in the period."),
    "days", "median", days_to_first_enrolment, lambda: [_studies_query(), _firsts_query()],
    ("study.reviewed_at", "invitation.outcome", "invitation.outcome_at"),
    "First enrolment per study (min outcome_at where outcome = enrolled) minus the day of "
    "approval.",
)  # fmt: skip
_add(
    "funnel_conversion",
    ("Konvertering inbjudan till inkludering", "Invitation-to-enrolment conversion"),
    ("Andel av inbjudningarna som gjordes under perioden där invånaren inkluderades (%).",
     "Share of the invitations made in the period whose resident was enrolled (%)."),
    "percent", "share", funnel_conversion, lambda: [_invitations_query()],
    ("invitation.created_at", "invitation.outcome"),
    "enrolled / invited among the invitations created in the period, one table through the "
    "gate (invited = enrolled + not enrolled; a year = its quarters).",
)  # fmt: skip
_add(
    "feasibility_questions_answered",
    ("Besvarade genomförbarhetsfrågor", "Feasibility questions answered"),
    ("Frågor om genomförbarhet (hur många i regionen uppfyller kriterierna) som Brygga "
     "besvarat under perioden; nekade frågor räknas inte.",
     "Feasibility questions (how many in the region meet the criteria) Brygga answered in the "
     "period; refused questions are not counted."),
    "questions", "flow", feasibility_questions, lambda: [_questions_query()],
    ("feasibility_question.at", "feasibility_question.result"),
    "Counted by the question's time; each answer is immediate (the question guard records it "
    "when answered), so the time to answer is seconds, not days.",
    owner="Regionens hälsodataförvaltning",
)  # fmt: skip
