"""The staff workbench for studies: the criteria builder (with code search), and the research
office's review (queue, checklist, documents, comment thread, return for changes).

Editing a study's form and its page are in ``routes/staff.py``; what both show is built by
``deps.render_study``."""

from __future__ import annotations

__all__ = ["router"]

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile  # what request.form() gives

from brygga.cohort.criteria import Criteria
from brygga.forms import FormError
from brygga.registry.areas import AREAS
from brygga.studies import builder, registration, review, staff
from brygga.studies.models import STUDY_STATES, StaffAccount, Study
from brygga.web.deps import Id, db, local_time, platform, render, render_study
from brygga.web.security import Principal, allow

router = APIRouter()
researcher = allow("researcher")
office = allow("research_office")
participant = allow("researcher", "research_office")
MAX_ROWS = 50


def account(session: Session, who: Principal) -> StaffAccount:
    return staff.get(session, who.staff_id)


# --- The criteria builder ------------------------------------------------------------------------


def builder_page(
    request: Request,
    study: Study,
    form: dict[str, Any] | None,
    errors: dict[str, str],
    status: int = 200,
    saved: bool = False,
) -> Response:
    rows = list((form or {}).get("rules") or [])
    context = {"study": study, "form": form, "rows": rows, "errors": errors, "saved": saved,
               "kinds": builder.BUILDER_KINDS}  # fmt: skip
    return render(request, "criteria_builder.html", context, status)


@router.get("/studies/{study_id}/criteria")
def criteria_builder(
    study_id: Id,
    request: Request,
    saved: bool = False,
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    study = registration.editable_study(session, account(session, who), study_id)
    form = builder.form_from_criteria(registration.study_criteria(study))
    if form is not None and not form["rules"]:
        form["rules"] = [builder.blank_rule()]
    return builder_page(request, study, form, {}, saved=saved)


@router.post("/studies/{study_id}/criteria")
async def save_criteria(
    study_id: Id,
    request: Request,
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    study = registration.editable_study(session, me, study_id)
    async with request.form() as posted:
        form = builder.form_from_request(posted, posted.getlist)
        action = posted.get("action")
    if action == "add":  # "add a rule" without JavaScript: the same form, one row more
        form["rules"] = [*form["rules"], builder.blank_rule()][:MAX_ROWS]
        return builder_page(request, study, form, {})
    try:
        criteria: Criteria = builder.criteria_from_form(form)
        registration.update_criteria(session, me, study, builder.criteria_yaml(criteria))
    except FormError as exc:
        form["rules"] = form["rules"] or [builder.blank_rule()]
        return builder_page(request, study, form, exc.fields, 422)
    return RedirectResponse(f"/studies/{study.id}/criteria?saved=true", 303)


@router.get("/studies/{study_id}/criteria/rule")
def criteria_rule(
    study_id: Id,
    request: Request,
    n: int = Query(ge=0, lt=1000),
    side: str = Query("include", pattern="^(include|exclude)$"),
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """One more rule row (htmx); without JavaScript the page's "add a rule" reloads it with
    a blank row (``add``)."""
    study = registration.editable_study(session, account(session, who), study_id)
    context = {"study": study, "row": builder.blank_rule(side), "i": n, "errors": {},
               "kinds": builder.BUILDER_KINDS, "oob": True, "next_row": n + 1}  # fmt: skip
    return render(request, "_new_rule.html", context)


@router.get("/studies/{study_id}/criteria/codes")
def criteria_codes(
    study_id: Id,
    request: Request,
    q: str = Query("", max_length=100),
    row: int = Query(0, ge=0, lt=1000),
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Code search for one rule row (htmx, which sends the row's kind as ``rules-<row>-kind``):
    the catalogue's codes and, on an imported OMOP region, its concepts."""
    registration.editable_study(session, account(session, who), study_id)
    kind = request.query_params.get(f"rules-{row}-kind", "condition")
    config = request.app.state.config
    region = platform(request).region(config.region) if config.region else None
    hits = builder.search_codes(kind, q, region)
    return render(request, "_code_hits.html", {"hits": hits, "i": row, "q": q})


# --- The research office's review ----------------------------------------------------------------


@router.get("/reviews")
def review_queue(
    request: Request,
    status: str = Query("submitted", max_length=20),
    area: str = Query("", max_length=100),
    waiting: str = Query("", max_length=4),
    who: Principal = Depends(office),
    session: Session = Depends(db, scope="function"),
) -> Response:
    errors = {}
    if status and status not in STUDY_STATES:
        errors["status"] = "unknown status"
    if area and area not in AREAS:
        errors["area"] = "unknown research area (choose from the list)"
    if waiting and not waiting.isdigit():
        errors["waiting"] = "must be a whole number"
    rows = []
    if not errors:
        rows = review.queue(session, account(session, who), status=status or None,
                            area=area or None, min_days=int(waiting) if waiting else None)  # fmt: skip
    context = {"rows": rows, "filters": {"status": status, "area": area, "waiting": waiting},
               "errors": errors, "states": [s for s in STUDY_STATES if s != "draft"],
               "areas": AREAS, "local_time": local_time}  # fmt: skip
    return render(request, "review_queue.html", context, 422 if errors else 200)


def _study(session: Session, who: Principal, study_id: int) -> tuple[StaffAccount, Study]:
    me = account(session, who)
    return me, registration.visible_study(session, me, study_id)


@router.post("/studies/{study_id}/checklist")
async def save_checklist(
    study_id: Id,
    request: Request,
    who: Principal = Depends(office),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, study = _study(session, who, study_id)
    async with request.form() as posted:
        data = {k: str(posted.get(k) or "") for k in
                ("ethics_decision_date", "insurance", "protocol_version")}  # fmt: skip
        for box in ("ethics_checked", "eu_ct_checked"):
            data[box] = posted.get(box) == "yes"
    try:
        review.save_checklist(session, me, study, data)
    except FormError as exc:
        return render_study(request, session, me, study, exc.fields, 422, data)
    return RedirectResponse(f"/studies/{study.id}#checklist", 303)


@router.post("/studies/{study_id}/documents")
async def upload_document(
    study_id: Id,
    request: Request,
    who: Principal = Depends(participant),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, study = _study(session, who, study_id)
    async with request.form() as posted:
        kind = str(posted.get("kind") or "")
        upload = posted.get("document")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise FormError({"document": "choose a file"})
            content = await upload.read(review.MAX_DOCUMENT + 1)
            review.add_document(session, me, study, kind=kind, filename=upload.filename,
                                content_type=upload.content_type or "", content=content)  # fmt: skip
        except FormError as exc:
            return render_study(request, session, me, study, exc.fields, 422, {"kind": kind})
    return RedirectResponse(f"/studies/{study.id}#documents", 303)


@router.get("/studies/{study_id}/documents/{document_id}")
def download_document(
    study_id: Id,
    document_id: Id,
    who: Principal = Depends(participant),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, study = _study(session, who, study_id)
    row = review.document(session, me, study, document_id)
    name = quote(row.filename)
    return Response(
        row.content,
        media_type="application/octet-stream",  # never rendered by the browser as a page
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "X-Content-SHA256": row.sha256,
        },
    )


@router.post("/studies/{study_id}/comments")
def add_comment(
    study_id: Id,
    request: Request,
    comment: str = Form(""),  # its length is checked by review (with the form's error)
    who: Principal = Depends(participant),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, study = _study(session, who, study_id)
    try:
        review.add_comment(session, me, study, comment)
    except FormError as exc:
        return render_study(request, session, me, study, exc.fields, 422, {"comment": comment})
    return RedirectResponse(f"/studies/{study.id}#comments", 303)


@router.post("/studies/{study_id}/return")
def return_study(
    study_id: Id,
    request: Request,
    reason: str = Form(""),  # its length is checked by review (with the form's error)
    who: Principal = Depends(office),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me, study = _study(session, who, study_id)
    try:
        review.return_for_changes(session, me, study, reason)
    except FormError as exc:
        return render_study(request, session, me, study, exc.fields, 422, {"reason": reason})
    return RedirectResponse(f"/studies/{study.id}", 303)
