"""The public study catalogue (``/studier``), a page per study, and "Anmäl intresse".

Anyone may search and read; registering interest needs a resident's log-in, and the page
says what it means: the study team sees who you are only after you say you are interested
(security property 3), and being contacted needs the ``contact`` consent, asked for on the
same page when it is missing.
"""

from __future__ import annotations

__all__ = ["router"]

from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import clock
from brygga.errors import InputError
from brygga.registry import catalogue as conditions
from brygga.registry import consent, service
from brygga.registry.areas import AREAS
from brygga.registry.areas import label as area_label
from brygga.registry.models import Resident
from brygga.studies import catalogue, invitations, participation
from brygga.studies.models import Invitation, Study
from brygga.web.deps import (
    MUNICIPALITIES,
    Id,
    db,
    eligibility_ready,
    lang,
    municipality_name,
    render,
    render_public,
)
from brygga.web.i18n import translate
from brygga.web.security import Principal, allow, principal

router = APIRouter()
public = Depends(allow("public"))
resident_only = allow("resident")


@cache
def _condition_options(language: str) -> list[tuple[str, str]]:
    """The search form's conditions, by name in the page's language (built once)."""
    return sorted(
        ((key, e.label(language)) for key, e in conditions.CONDITIONS.items()),
        key=lambda option: option[1],
    )


@cache
def _area_options(language: str) -> list[tuple[str, str]]:
    return [(key, labels[0] if language == "sv" else labels[1]) for key, labels in AREAS.items()]


def _search_form(
    q: str, area: str, condition: str, municipality: str, healthy: str, age: str, sex: str
) -> tuple[catalogue.Search, dict[str, str]]:
    errors: dict[str, str] = {}
    years: int | None = None
    if age.strip():
        try:
            years = int(age.strip())
        except ValueError:
            errors["age"] = "must be a whole number"
        else:
            if not 0 <= years <= 120:
                errors["age"] = "must be between 0 and 120"
                years = None
    query = catalogue.Search(
        text=q.strip(),
        area=area if area in AREAS else "",
        condition=condition if condition in conditions.CONDITIONS else "",
        municipality=municipality if municipality in MUNICIPALITIES else "",
        healthy=healthy == "yes",
        age=years,
        sex=sex if sex in ("female", "male") else "",
    )
    return query, errors


async def _catalogue_version(request: Request) -> tuple[Any, ...]:
    """What the kept catalogue pages depend on: the approved studies (read at most once a
    second, on the event loop when known: ``catalogue.known_version``) and the day."""
    url = request.app.state.config.database_url
    version = catalogue.known_version(url) or await run_in_threadpool(catalogue.read_version, url)
    return version, clock.today()


@router.get("/studier", dependencies=[public])
async def studies(
    request: Request,
    q: str = Query("", max_length=200),
    area: str = Query("", max_length=40),
    condition: str = Query("", max_length=40),
    municipality: str = Query("", max_length=10),
    healthy: str = Query("", max_length=5),
    age: str = Query("", max_length=10),
    sex: str = Query("", max_length=10),
) -> Response:
    query, errors = _search_form(q, area, condition, municipality, healthy, age, sex)
    # htmx asks for the results only (live filtering); the whole page otherwise.
    live = bool(request.headers.get("hx-request"))
    if live and errors:  # the field's message is outside the results: the whole page shows it
        return Response(headers={"HX-Redirect": str(request.url)})

    def build(session: Session) -> dict[str, Any]:
        recruiting = catalogue.listing(session)
        places = sorted({site.municipality_code for study in recruiting for site in study.sites},
                        key=municipality_name)  # fmt: skip
        return {
            "found": [study for study in recruiting if catalogue.fits(study, query)],
            "query": query,
            "raw": {"q": q, "age": age},
            "errors": errors,
            "areas": AREAS,
            "condition_options": _condition_options(lang(request)),
            "area_options": _area_options(lang(request)),
            "place_options": [(code, municipality_name(code)) for code in places],
            "live": live,
        }

    name = "_studier_results.html" if live else "studier.html"
    version = await _catalogue_version(request)
    return await render_public(request, name, version, build, 422 if errors else 200)


def _resident(session: Session, who: Principal) -> Resident | None:
    if who.role != "resident":
        return None
    return service.by_ref(session, who.id or "")


def _invitation(session: Session, resident: Resident | None, study: Study) -> Invitation | None:
    if resident is None:
        return None
    return session.scalar(
        select(Invitation).where(
            Invitation.study_id == study.id, Invitation.resident_id == resident.id
        )
    )


def _duration(weeks: int | None, language: str) -> str | None:
    """Plain words for how long taking part lasts: weeks, months or years."""
    if weeks is None:
        return None
    if weeks == 1:
        return translate("public_week_one", language)
    if weeks < 9:
        return translate("public_weeks_n", language).format(n=weeks)
    if weeks % 52 == 0:
        years = weeks // 52
        key = "public_year_one" if years == 1 else "public_years_n"
        return translate(key, language).format(n=years)
    return translate("public_months_about", language).format(n=round(weeks / 4.345))


def _study_context(request: Request, session: Session, study: Study) -> dict[str, Any]:
    resident = _resident(session, principal(request))
    language = lang(request)
    return {
        "study": study,
        "area_label": area_label(study.area, language),
        "duration": _duration(study.duration_weeks, language),
        "who_can": catalogue.who_can_take_part(study, lang(request), municipality_name),
        "recruiting": catalogue.is_recruiting(study),
        "resident": resident,
        "invitation": _invitation(session, resident, study),
    }


@router.get("/studier/{study_id}", dependencies=[public])
async def study_page(study_id: Id, request: Request) -> Response:
    def build(session: Session) -> dict[str, Any]:
        return _study_context(request, session, catalogue.public_study(session, study_id))

    version = await _catalogue_version(request)
    return await render_public(request, "studie.html", version, build)


def _interest_page(
    request: Request, session: Session, study: Study, resident: Resident,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    context = _study_context(request, session, study) | {
        "resident": resident,
        "contact_text": consent.TEXTS["contact"],
        "has_contact": resident.consent("contact") is not None,
        "errors": errors or {},
    }
    return render(request, "intresse.html", context, 422 if errors else 200)


@router.get("/studier/{study_id}/intresse")
def interest_form(
    study_id: Id,
    request: Request,
    who: Principal = Depends(resident_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    study = catalogue.public_study(session, study_id)
    resident = service.by_ref(session, who.id or "")
    invitation = _invitation(session, resident, study)
    if invitation is not None and invitation.status == "interested":
        return RedirectResponse(f"/studier/{study.id}/anmald", 303)
    return _interest_page(request, session, study, resident)


@router.post("/studier/{study_id}/intresse")
def interest(
    study_id: Id,
    request: Request,
    contact: str = Form("", max_length=5),
    text_version: str = Form("", max_length=20),
    who: Principal = Depends(resident_only),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> Response:
    study = catalogue.public_study(session, study_id)
    resident = service.by_ref(session, who.id or "")
    if resident.consent("contact") is None and contact != "yes":
        return _interest_page(
            request, session, study, resident, {"contact": "public_interest_needs_consent"}
        )
    try:
        if resident.registered_at is None:
            service.register(session, resident)  # the page says that this joins Brygga
        if resident.consent("contact") is None:
            participation.set_consent(
                session, resident, "contact", True, text_version=text_version,
                eligibility=request.app.state.eligibility,
            )  # fmt: skip
        invitations.express_interest(session, resident, study)
    except InputError as exc:
        return _interest_page(request, session, study, resident, {"form": exc.message})
    return RedirectResponse(f"/studier/{study.id}/anmald", 303)


@router.get("/studier/{study_id}/anmald")
def interest_done(
    study_id: Id,
    request: Request,
    who: Principal = Depends(resident_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    study = catalogue.public_study(session, study_id)
    resident = service.by_ref(session, who.id or "")
    invitation = _invitation(session, resident, study)
    if invitation is None or invitation.status != "interested":
        return RedirectResponse(f"/studier/{study.id}", 303)
    return render(request, "anmald.html", {"study": study, "invitation": invitation})
