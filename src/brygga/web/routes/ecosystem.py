"""The ecosystem front door ("Vägen in"): the public directory (/ekosystem, no log-in), and
for staff their needs, the offerings ranked for them, inquiries, "Mina ärenden" and the
provider inbox; the JSON API under /api/ecosystem.

Writes go through ``short_write`` with the ecosystem's domain functions on that session (the
platform's ``Ecosystem`` opens its own sessions and is for the CLI); the ranking index is the
platform's, shared by every request.
"""

from __future__ import annotations

__all__ = ["router"]

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from brygga.clock import today
from brygga.ecosystem import directory, feasibility, inquiries, testbeds
from brygga.ecosystem.feasibility import FeasibilityForm, SiteEstimate
from brygga.ecosystem.inquiries import Actor
from brygga.ecosystem.match import AREA_KEYS, MAX_RESULTS, Index, NeedDocument
from brygga.ecosystem.models import ENTRY_TYPES, Entry, InquiryRecipient
from brygga.ecosystem.profiles import REGIONS, SUPPORT_KINDS, TECHNOLOGY_AREAS, THERAPY_AREAS
from brygga.ecosystem.service import Ecosystem
from brygga.errors import DocumentError, NotFoundError
from brygga.forms import FormError, validate
from brygga.messages import translate
from brygga.studies import staff
from brygga.web.deps import Id, db, lang, platform, read_db, render, short_write
from brygga.web.security import Principal, allow, principal

router = APIRouter()
public = Depends(allow("public"))
# Who files needs and answers inquiries: companies' and universities' researchers, care
# units, and the research office (the coordinating office).
members = allow("researcher", "care_provider", "research_office")
Slug = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)]
Filter = Annotated[str | None, Query(max_length=40)]


def ranking(request: Request) -> Index:
    """The directory's ranking index on the app's database: one ``Ecosystem`` per app (kept
    in the app's state), so the index is built once and rebuilt when the directory changes."""
    state = request.app.state
    url = state.config.database_url
    eco = getattr(state, "ecosystem", None)
    if eco is None or eco.url != url:
        eco = state.ecosystem = Ecosystem(url)
    return eco.index()


def actor(session: Session, who: Principal) -> Actor:
    account = staff.get(session, who.staff_id)
    return Actor(account.id, account.role, account.organization_id)


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """A filter value from the query string; anything else is no filter."""
    return value if value in allowed else None


def _area_label(key: str) -> str:
    """The catalogue key of an area's or a support kind's name."""
    from_support = key in SUPPORT_KINDS and key not in (*THERAPY_AREAS, *TECHNOLOGY_AREAS)
    return ("eco_support_" if from_support else "eco_area_") + key


# --- The public directory ------------------------------------------------------------------


@router.get("/ekosystem", dependencies=[public])
def directory_page(
    request: Request,
    typ: Filter = None,
    omrade: Filter = None,
    region: Filter = None,
    q: Annotated[str | None, Query(max_length=300)] = None,
    session: Session = Depends(db, scope="function"),
) -> Response:
    language = lang(request)
    kind = _choice(typ, ENTRY_TYPES)
    area = _choice(omrade, AREA_KEYS)
    where = _choice(region, REGIONS)
    entries = directory.list_entries(session, type=kind, area=area, region=where)
    reasons: dict[str, list[str]] = {}
    text = (q or "").strip()
    if text:
        # Free text ranks the (filtered) directory by the needs -> offerings ranking.
        need = NeedDocument(title=text, description=text)
        ranked = ranking(request).rank(need, day=today(), limit=MAX_RESULTS, lang=language)
        by_slug = {e.slug: e for e in entries}
        entries = [by_slug[r.id] for r in ranked if r.id in by_slug]
        reasons = {r.id: r.reasons for r in ranked}
    context = {
        "entries": entries,
        "reasons": reasons,
        "filters": {"typ": kind or "", "omrade": area or "", "region": where or "", "q": text},
        "types": ENTRY_TYPES,
        "areas": [(k, _area_label(k)) for k in AREA_KEYS],
        "regions": REGIONS,
    }
    return render(request, "eco_directory.html", context)


@router.get("/ekosystem/{slug}", dependencies=[public])
def entry_page(
    request: Request, slug: Slug, session: Session = Depends(db, scope="function")
) -> Response:
    entry = directory.get_entry(session, slug)
    if not directory.is_visible(entry):
        raise NotFoundError(f"no directory entry {slug!r}")
    return entry_view(request, session, entry, {})


def entry_view(
    request: Request, session: Session, entry: Entry, errors: dict[str, str], status: int = 200
) -> Response:
    bookable = entry.type in testbeds.BOOKABLE_TYPES
    who = principal(request)
    # The provider's own staff (or the office, for an entry without an organization) publish
    # the testbed's bookable periods here.
    provides = (
        bookable
        and who.role in members.roles
        and inquiries.may_answer(  # type: ignore[attr-defined]
            actor(session, who), entry
        )
    )
    context = {
        "e": entry,
        "rows": entry_rows(entry, lang(request)),
        "slots": testbeds.open_slots(session, entry.id) if bookable else [],
        "bookable": bookable,
        "provides": provides,
        "errors": errors,
    }
    return render(request, "eco_entry.html", context, status)


@router.post("/ekosystem/{slug}/tider")
async def add_slot(
    request: Request,
    slug: Slug,
    who: Principal = Depends(members),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    """The provider publishes a bookable period of its testbed or infrastructure."""
    async with request.form() as form:
        raw = {k: str(form.get(k) or "") for k in ("starts_on", "ends_on")}
        note = str(form.get("note") or "")[:300]
    try:
        period = validate(SlotBody, {k: v for k, v in raw.items() if v} | {"note": note})
        await short_write(
            request,
            lambda s: testbeds.add_slot(
                s, actor(s, who), slug, period.starts_on, period.ends_on, period.note
            ),
        )
    except FormError as exc:
        entry = directory.get_entry(session, slug)
        if not directory.is_visible(entry):
            raise NotFoundError(f"no directory entry {slug!r}") from None
        return entry_view(request, session, entry, exc.fields, 422)
    return RedirectResponse(f"/ekosystem/{slug}", status_code=303)


@router.post("/ekosystem/{slug}/bokning")
async def book_slot(
    request: Request,
    slug: Slug,
    who: Principal = Depends(members),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    """Ask to book one of a testbed's open slots; the provider confirms or declines."""
    async with request.form() as form:
        raw = str(form.get("slot") or "")
        message = str(form.get("message") or "")[:4000]
    try:
        if not raw.isdigit() or len(raw) > 18:
            raise FormError({"slot": "choose a period"})
        await short_write(
            request, lambda s: testbeds.request_booking(s, actor(s, who), int(raw), message)
        )
    except FormError as exc:
        entry = directory.get_entry(session, slug)
        if not directory.is_visible(entry):
            raise NotFoundError(f"no directory entry {slug!r}") from None
        return entry_view(request, session, entry, exc.fields, 422)
    return RedirectResponse("/ekosystem-arenden", status_code=303)


@router.post("/ekosystem-bokningar/{booking_id}")
async def answer_booking(
    request: Request,
    booking_id: Id,
    who: Principal = Depends(members),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    async with request.form() as form:
        decision = str(form.get("decision") or "")
        reason = str(form.get("reason") or "")[:2000]
    try:
        await short_write(
            request,
            lambda s: testbeds.answer_booking(s, actor(s, who), booking_id, decision, reason),
        )
    except FormError as exc:
        errors = {f"booking-{k}-{booking_id}": v for k, v in exc.fields.items()}
        return inbox_page(request, session, who, errors, 422)
    return RedirectResponse("/ekosystem-inkorg", status_code=303)


def entry_rows(e: Entry, language: str) -> list[tuple[str, str]]:
    """The profile's fields as (label, value), every enum through the catalogue."""

    def t(key: str) -> str:
        return translate(key, language)

    sv = language != "en"
    rows = []
    services = e.services_sv if sv else e.services_en
    if services:
        rows.append((t("eco_field_services"), ", ".join(services)))
    if e.support_kinds:
        rows.append(
            (t("eco_field_support"), ", ".join(t(f"eco_support_{k}") for k in e.support_kinds))
        )
    areas = [t(f"eco_area_{a}") for a in (*e.technology_areas, *e.therapy_areas)]
    if areas:
        rows.append((t("eco_field_areas"), ", ".join(areas)))
    if e.trl_min is not None:
        rows.append((t("eco_field_trl"), f"{e.trl_min}–{e.trl_max}"))
    access = e.access_sv if sv else e.access_en
    if access:
        rows.append((t("eco_field_access"), access))
    rows.append((t("eco_field_price"), t(f"eco_price_{e.price_model}")))
    rows.append((t("eco_field_languages"), ", ".join(t(f"eco_lang_{x}") for x in e.languages)))
    rows.append((t("eco_field_sme"), t("eco_yes") if e.sme_eligible else t("eco_no")))
    where = t(f"eco_region_{e.region}") + (f" ({e.location})" if e.location else "")
    rows.append((t("eco_field_location"), where))
    rows.append((t("eco_field_contact_role"), e.contact_role_sv if sv else e.contact_role_en))
    if e.contact_channel:
        rows.append((t("eco_field_channel"), e.contact_channel))
    rows.append((t("eco_field_response"), t("eco_response_days").format(days=e.response_days)))
    return rows


# --- Needs and inquiries (logged in) ------------------------------------------------------


def _need_form(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": str(form.get("title") or ""),
        "description": str(form.get("description") or ""),
        "areas": [str(a) for a in form.getlist("areas")],
        "types": [str(t) for t in form.getlist("types")],
        "languages": [str(x) for x in form.getlist("languages")],
        "sme": form.get("sme") == "yes",
    }
    for key in ("trl", "region"):
        if form.get(key):
            data[key] = str(form.get(key))
    return data


def need_form_page(
    request: Request, data: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    context = {
        "data": data,
        "errors": errors,
        "types": ENTRY_TYPES,
        "areas": [(k, _area_label(k)) for k in (*TECHNOLOGY_AREAS, *THERAPY_AREAS)],
        "regions": REGIONS,
    }
    return render(request, "eco_need_form.html", context, status)


@router.get("/ekosystem-behov/ny")
def new_need(request: Request, _who: Principal = Depends(members)) -> Response:
    return need_form_page(request, {"languages": [lang(request)]}, {})


@router.post("/ekosystem-behov")
async def create_need(request: Request, who: Principal = Depends(members)) -> Response:
    async with request.form() as form:
        data = _need_form(form)
    try:
        need = validate(NeedDocument, data)
    except FormError as exc:
        return need_form_page(request, data, exc.fields, 422)

    def job(s: Session) -> int:
        return inquiries.create_need(s, actor(s, who), need).id

    need_id = await short_write(request, job)
    return RedirectResponse(f"/ekosystem-behov/{need_id}", status_code=303)


def need_page(
    request: Request,
    session: Session,
    who: Principal,
    need_id: int,
    errors: dict[str, str] | None = None,
    chosen: list[str] | None = None,
    message: str = "",
    status: int = 200,
    feas: dict[str, Any] | None = None,
) -> Response:
    me = actor(session, who)
    row = inquiries.own_need(session, me, need_id)
    need = NeedDocument.model_validate(
        {"title": row.title, "description": row.description, **row.details}
    )
    ranked = ranking(request).rank(need, day=today(), lang=lang(request))
    asked = inquiries.asked_entries(session, need_id)
    context = {
        "need": row,
        "ranked": ranked,
        "asked": asked,
        "errors": errors or {},
        "chosen": chosen or [],
        "message": message,
        "feas": feas or {},
        "phases": feasibility.PHASES,
        "therapy_areas": THERAPY_AREAS,
    }
    return render(request, "eco_need.html", context, status)


FEASIBILITY_FIELDS = tuple(FeasibilityForm.model_fields)


@router.get("/ekosystem-behov/{need_id}")
def show_need(
    request: Request,
    need_id: Id,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> Response:
    return need_page(request, session, who, need_id)


@router.post("/ekosystem-behov/{need_id}/forfragan")
async def send_inquiry(
    request: Request,
    need_id: Id,
    who: Principal = Depends(members),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    async with request.form() as form:
        chosen = [str(x) for x in form.getlist("entries")][: inquiries.MAX_RECIPIENTS + 1]
        message = str(form.get("message") or "")
        feas = {k: str(form.get(k) or "")[:50_000] for k in FEASIBILITY_FIELDS}
        feas["kind"] = "site_feasibility" if form.get("kind") == "site_feasibility" else ""
    try:
        form_doc = None
        data: dict[str, Any] = {}
        if feas["kind"]:
            # A site feasibility inquiry: the form's questions, and the region's figures
            # asked first (a guarded feasibility question, no write lock held).
            values = {k: v for k, v in feas.items() if k in FEASIBILITY_FIELDS and v != ""}
            form_doc = validate(FeasibilityForm, values)
            if form_doc.criteria_yaml:
                try:
                    data = await run_in_threadpool(
                        platform(request).feasibility_data,
                        form_doc.criteria_yaml,
                        form_doc.therapy_area,
                        request.app.state.config.region,
                        user=f"staff:{who.staff_id}",
                        database=request.app.state.config.database_url,
                    )
                except DocumentError as exc:
                    raise FormError({"criteria_yaml": exc.message}) from None

        def job(s: Session) -> int:
            me = actor(s, who)
            if form_doc is None:
                return inquiries.send_inquiry(s, me, need_id, chosen, message).id
            return feasibility.send_feasibility(s, me, need_id, chosen, message, form_doc, data).id

        await short_write(request, job)
    except FormError as exc:
        return need_page(request, session, who, need_id, exc.fields, chosen, message, 422, feas)
    return RedirectResponse("/ekosystem-arenden", status_code=303)


@router.get("/ekosystem-arenden")
def my_cases(
    request: Request,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, language = actor(session, who), lang(request)
    cases = inquiries.my_cases(session, me, lang=language)
    bookings = testbeds.my_bookings(session, me, lang=language)
    return render(request, "eco_cases.html", {"cases": cases, "bookings": bookings})


@router.post("/ekosystem-arenden/{inquiry_id}/resultat")
async def set_outcome(
    request: Request, inquiry_id: Id, who: Principal = Depends(members)
) -> Response:
    """What came of an inquiry (for the agenda's follow-up)."""
    async with request.form() as form:
        outcome = str(form.get("outcome") or "") or None
    await short_write(
        request, lambda s: inquiries.set_outcome(s, actor(s, who), inquiry_id, outcome)
    )
    return RedirectResponse("/ekosystem-arenden", status_code=303)


def inbox_page(
    request: Request, session: Session, who: Principal, errors: dict[str, str], status: int = 200
) -> Response:
    me, language = actor(session, who), lang(request)
    rows = inquiries.inbox(session, me, lang=language)
    bookings = testbeds.provider_bookings(session, me, lang=language)
    context = {"rows": rows, "bookings": bookings, "errors": errors}
    return render(request, "eco_inbox.html", context, status)


@router.get("/ekosystem-inkorg")
def inbox(
    request: Request,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> Response:
    return inbox_page(request, session, who, {})


@router.post("/ekosystem-inkorg/{recipient_id}")
async def answer(
    request: Request,
    recipient_id: Id,
    who: Principal = Depends(members),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    async with request.form() as form:
        decision = str(form.get("decision") or "")
        reason = str(form.get("reason") or "")[:2000]
        participants = str(form.get("participants") or "").strip()
        competing = str(form.get("competing_studies") or "").strip() or "0"

    def job(s: Session) -> None:
        me = actor(s, who)
        r = s.get(InquiryRecipient, recipient_id)
        if r is None or r.inquiry.kind != "site_feasibility":
            inquiries.answer(s, me, recipient_id, decision, reason)
            return
        estimate = None
        if decision == "interested" and participants:
            estimate = validate(
                SiteEstimate, {"participants": participants, "competing_studies": competing}
            )
        feasibility.answer_site(s, me, recipient_id, decision, reason, estimate)

    try:
        await short_write(request, job)
    except FormError as exc:
        errors = {f"{k}-{recipient_id}": v for k, v in exc.fields.items()}
        return inbox_page(request, session, who, errors, 422)
    return RedirectResponse("/ekosystem-inkorg", status_code=303)


# --- JSON API -------------------------------------------------------------------------------


@router.get("/api/ecosystem", dependencies=[public])
def api_list(
    request: Request,
    type: Filter = None,
    area: Filter = None,
    region: Filter = None,
    session: Session = Depends(db, scope="function"),
) -> list[dict[str, Any]]:
    found = directory.list_entries(
        session,
        type=_choice(type, ENTRY_TYPES),
        area=_choice(area, AREA_KEYS),
        region=_choice(region, REGIONS),
    )
    return [directory.entry_document(e, lang=lang(request)) for e in found]


@router.get("/api/ecosystem/entries/{slug}", dependencies=[public])
def api_entry(
    request: Request, slug: Slug, session: Session = Depends(db, scope="function")
) -> dict[str, Any]:
    entry = directory.get_entry(session, slug)
    if not directory.is_visible(entry):
        raise NotFoundError(f"no directory entry {slug!r}")
    return directory.entry_document(entry, lang=lang(request))


@router.post("/api/ecosystem/match", dependencies=[public])
def api_match(
    request: Request,
    need: NeedDocument = Body(...),
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10,
) -> list[dict[str, Any]]:
    """Needs -> offerings: the visible directory ranked for ``need``, with reasons."""
    ranked = ranking(request).rank(need, day=today(), limit=limit)
    return [r.as_dict() for r in ranked]


class InquiryBody(BaseModel):
    """An inquiry about one of the caller's needs; with ``feasibility`` it is a site
    feasibility inquiry, and the region's disclosed figures are attached."""

    model_config = ConfigDict(extra="forbid")

    entries: list[Annotated[str, StringConstraints(max_length=80)]] = Field(
        min_length=1, max_length=inquiries.MAX_RECIPIENTS
    )
    message: str = Field(min_length=1, max_length=10_000)
    feasibility: FeasibilityForm | None = None


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["interested", "declined"]
    reason: str = Field(default="", max_length=4000)
    estimate: SiteEstimate | None = None


class MilestoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date | None


@router.post("/api/ecosystem/needs", status_code=201)
async def api_create_need(
    request: Request, need: NeedDocument = Body(...), who: Principal = Depends(members)
) -> dict[str, Any]:
    need_id = await short_write(request, lambda s: inquiries.create_need(s, actor(s, who), need).id)
    return {"id": need_id}


@router.post("/api/ecosystem/needs/{need_id}/inquiries", status_code=201)
async def api_send_inquiry(
    request: Request,
    need_id: Id,
    body: InquiryBody = Body(...),
    who: Principal = Depends(members),
) -> dict[str, Any]:
    """Send an inquiry; a feasibility inquiry first asks the region's records (a guarded,
    audited feasibility question, in a pool thread with no write lock held)."""
    form = body.feasibility
    data: dict[str, Any] = {}
    if form is not None and form.criteria_yaml:
        region = request.app.state.config.region
        data = await run_in_threadpool(
            platform(request).feasibility_data,
            form.criteria_yaml,
            form.therapy_area,
            region,
            user=f"staff:{who.staff_id}",
            database=request.app.state.config.database_url,
        )

    def job(s: Session) -> dict[str, Any]:
        me = actor(s, who)
        if form is None:
            inquiry = inquiries.send_inquiry(s, me, need_id, list(body.entries), body.message)
        else:
            inquiry = feasibility.send_feasibility(
                s, me, need_id, list(body.entries), body.message, form, data
            )
        return inquiries.case_view(inquiry, today(), lang(request))

    return await short_write(request, job)


@router.get("/api/ecosystem/inquiries/{inquiry_id}")
def api_inquiry(
    request: Request,
    inquiry_id: Id,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    """One of the caller's inquiries, with the collated answer."""
    inquiry = inquiries.own_inquiry(session, actor(session, who), inquiry_id)
    language = lang(request)
    return {**inquiries.case_view(inquiry, today(), language),
            "collated": feasibility.collate(inquiry, language)}  # fmt: skip


@router.put("/api/ecosystem/inquiries/{inquiry_id}/milestones/{name}")
async def api_milestone(
    request: Request,
    inquiry_id: Id,
    name: Annotated[str, Path(max_length=40)],
    body: MilestoneBody = Body(...),
    who: Principal = Depends(members),
) -> dict[str, Any]:
    """Record (or clear, with null) a set-up milestone: approval, site_opened,
    first_participant, target_reached."""
    return await short_write(
        request,
        lambda s: dict(
            feasibility.set_milestone(s, actor(s, who), inquiry_id, name, body.date).milestones
        ),
    )


class OutcomeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["study_started", "collaboration", "none"] | None


@router.put("/api/ecosystem/inquiries/{inquiry_id}/outcome")
async def api_outcome(
    request: Request,
    inquiry_id: Id,
    body: OutcomeBody = Body(...),
    who: Principal = Depends(members),
) -> dict[str, Any]:
    """What came of an inquiry: a started study, a collaboration, or neither (null clears)."""
    outcome = await short_write(
        request, lambda s: inquiries.set_outcome(s, actor(s, who), inquiry_id, body.outcome).outcome
    )
    return {"inquiry": inquiry_id, "outcome": outcome}


@router.post("/api/ecosystem/inbox/{recipient_id}")
async def api_answer(
    request: Request,
    recipient_id: Id,
    body: AnswerBody = Body(...),
    who: Principal = Depends(members),
) -> dict[str, Any]:
    """A provider answers; an interested site of a feasibility inquiry gives its estimate."""

    def job(s: Session) -> dict[str, Any]:
        me = actor(s, who)
        r = s.get(InquiryRecipient, recipient_id)
        if r is not None and r.inquiry.kind == "site_feasibility":
            done = feasibility.answer_site(
                s, me, recipient_id, body.decision, body.reason, body.estimate
            )
        else:
            done = inquiries.answer(s, me, recipient_id, body.decision, body.reason)
        return {"recipient": done.id, "status": done.status}

    return await short_write(request, job)


@router.get("/api/ecosystem/sites", dependencies=[public])
def api_sites(
    request: Request,
    area: Annotated[str, Query(max_length=40)],
    session: Session = Depends(db, scope="function"),
) -> list[dict[str, Any]]:
    """Clinical sites and trial units for a site feasibility inquiry, the area's first."""
    language = lang(request)
    return [directory.entry_document(e, lang=language)
            for e in feasibility.suggest_sites(session, area)]  # fmt: skip


class SlotBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_on: dt.date
    ends_on: dt.date
    note: str = Field(default="", max_length=300)


class BookingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=4000)


class BookingAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "declined"]
    reason: str = Field(default="", max_length=4000)


@router.get("/api/ecosystem/entries/{slug}/slots", dependencies=[public])
def api_slots(slug: Slug, session: Session = Depends(db, scope="function")) -> list[dict[str, Any]]:
    return testbeds.open_slots(session, slug)


@router.post("/api/ecosystem/entries/{slug}/slots", status_code=201)
async def api_add_slot(
    request: Request, slug: Slug, body: SlotBody = Body(...), who: Principal = Depends(members)
) -> dict[str, Any]:
    """The provider publishes a bookable period of its testbed or infrastructure."""
    slot_id = await short_write(
        request,
        lambda s: (
            testbeds.add_slot(s, actor(s, who), slug, body.starts_on, body.ends_on, body.note).id
        ),
    )
    return {"slot": slot_id}


@router.post("/api/ecosystem/slots/{slot_id}/bookings", status_code=201)
async def api_book(
    request: Request, slot_id: Id, body: BookingBody = Body(...), who: Principal = Depends(members)
) -> dict[str, Any]:
    booking = await short_write(
        request, lambda s: testbeds.request_booking(s, actor(s, who), slot_id, body.message).id
    )
    return {"booking": booking, "status": "requested"}


@router.post("/api/ecosystem/bookings/{booking_id}")
async def api_answer_booking(
    request: Request,
    booking_id: Id,
    body: BookingAnswer = Body(...),
    who: Principal = Depends(members),
) -> dict[str, Any]:
    status = await short_write(
        request,
        lambda s: (
            testbeds.answer_booking(s, actor(s, who), booking_id, body.decision, body.reason).status
        ),
    )
    return {"booking": booking_id, "status": status}


@router.get("/api/ecosystem/bookings")
def api_bookings(
    request: Request,
    provider: bool = False,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> list[dict[str, Any]]:
    """The caller's booking requests, or (``provider``) those to the entries they answer for."""
    me, language = actor(session, who), lang(request)
    if provider:
        return testbeds.provider_bookings(session, me, lang=language)
    return testbeds.my_bookings(session, me, lang=language)


@router.get("/api/ecosystem/cases")
def api_cases(
    request: Request,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> list[dict[str, Any]]:
    return inquiries.my_cases(session, actor(session, who), lang=lang(request))


@router.get("/api/ecosystem/inbox")
def api_inbox(
    request: Request,
    who: Principal = Depends(members),
    session: Session = Depends(db, scope="function"),
) -> list[dict[str, Any]]:
    return inquiries.inbox(session, actor(session, who), lang=lang(request))
