"""The JSON API (OpenAPI at /api/docs). Errors use the one JSON error shape (``web/app.py``)."""

from __future__ import annotations

__all__ = ["router"]

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from brygga.privacy import questions
from brygga.registry import service
from brygga.studies import funnel, participation, registration, staff
from brygga.studies.models import Study
from brygga.web.deps import (
    Id,
    db,
    disclosure,
    eligibility_ready,
    feasibility_now,
    read_db,
)
from brygga.web.security import Principal, allow

router = APIRouter(prefix="/api")
any_staff = allow("researcher", "research_office", "care_provider", "admin")


def study_json(study: Study) -> dict[str, Any]:
    return {
        "id": study.id,
        "status": study.status,
        "title": {"sv": study.title_sv, "en": study.title_en},
        "summary": {"sv": study.summary_sv, "en": study.summary_en},
        "sponsor": study.sponsor,
        "phase": study.phase,
        "area": study.area,
        "ethics_number": study.ethics_number,
        "eu_ct_number": study.eu_ct_number,
        "nct_id": study.nct_id,
        "target_enrolment": study.target_enrolment,
        "recruitment": {"start": study.recruitment_start, "end": study.recruitment_end},
        "sites": [{"name": s.name, "municipality_code": s.municipality_code} for s in study.sites],
        "criteria_yaml": study.criteria_yaml,
        "review_reason": study.review_reason,
        "feasibility": study.feasibility,
    }


@router.get("/studies")
def list_studies(
    who: Principal = Depends(any_staff), session: Session = Depends(db, scope="function")
) -> dict[str, Any]:
    me_ = staff.get(session, who.staff_id)
    return {"studies": [study_json(s) for s in registration.studies_for(session, me_)]}


@router.post("/studies", status_code=201)
def create_study(
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(allow("researcher")),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    study = registration.create_study(session, staff.get(session, who.staff_id), data)
    return study_json(study)


@router.get("/studies/{study_id}")
def get_study(
    study_id: Id,
    who: Principal = Depends(any_staff),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    study = registration.visible_study(session, staff.get(session, who.staff_id), study_id)
    return study_json(study)


@router.get("/studies/{study_id}/funnel")
def get_funnel(
    study_id: Id,
    request: Request,
    who: Principal = Depends(any_staff),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    me_ = staff.get(session, who.staff_id)
    study = registration.visible_study(session, me_, study_id)
    return funnel.funnel(session, study, disclosure(request, team=registration.is_team(me_, study)))


@router.post("/studies/{study_id}/feasibility")
async def post_feasibility(
    study_id: Id,
    request: Request,
    who: Principal = Depends(allow("researcher", "research_office")),
    session: Session = Depends(read_db, scope="function"),
) -> dict[str, Any]:
    """Ask feasibility again (after editing the criteria): through the question guard, on a
    read transaction; the result is saved in a short write (as the page's route does)."""

    result = await feasibility_now(request, session, who, study_id)
    return {"id": study_id, "feasibility": result}


@router.get("/feasibility/flags")
def feasibility_flags(
    reviewed: bool = False,
    who: Principal = Depends(allow("research_office")),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    """Sweeps of near-identical feasibility questions the guard refused (security property 7)."""
    return {"flags": questions.flags(session, include_reviewed=reviewed)}


@router.post("/feasibility/flags/{flag_id}/reviewed")
def review_flag(
    flag_id: Id,
    who: Principal = Depends(allow("research_office")),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    return questions.review_flag(session, flag_id, f"staff:{who.staff_id}")


@router.get("/me")
def my_data(
    who: Principal = Depends(allow("resident")), session: Session = Depends(db, scope="function")
) -> dict[str, Any]:
    return participation.export_data(session, service.by_ref(session, who.id or ""))


@router.put("/me/profile")
def put_profile(
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(allow("resident")),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    resident = service.by_ref(session, who.id or "")
    profile = participation.update_profile(session, resident, data, request.app.state.eligibility)
    return {k: getattr(profile, k) for k in service.ProfileInput.model_fields}


@router.post("/me/consents/{kind}")
def post_consent(
    kind: Annotated[str, Path(max_length=40)],
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(allow("resident")),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> dict[str, Any]:
    resident = service.by_ref(session, who.id or "")
    granted = data.get("granted") is True
    changed = participation.set_consent(
        session, resident, kind, granted, text_version=str(data.get("text_version", "")),
        eligibility=request.app.state.eligibility,
    )  # fmt: skip
    return {"kind": kind, "granted": granted, "changed": changed}


# Swagger UI is served from the package (static/swagger, Apache 2.0): a region's network need
# not reach a CDN, and the Content-Security-Policy (default-src 'self') would block one. So
# would it an inline script: FastAPI's own page (get_swagger_ui_html) has one, this one starts
# Swagger UI from static/swagger/init.js.
SWAGGER = "/static/swagger"
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API – Brygga</title>
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">
</head>
<body>
<main id="swagger-ui" data-openapi-url="/api/openapi.json"></main>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script src="{SWAGGER}/init.js"></script>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False, dependencies=[Depends(allow("public"))])
def api_docs() -> HTMLResponse:
    """The JSON API's documentation (Swagger UI over /api/openapi.json)."""
    return HTMLResponse(DOCS_PAGE)
