"""Studies for staff: register (form, YAML upload, ClinicalTrials.gov import), submit, review,
feasibility, interested volunteers (study team only), outcomes, funnel."""

from __future__ import annotations

__all__ = ["router"]

from typing import Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from brygga.errors import InputError
from brygga.forms import FormError
from brygga.messages import translate_error
from brygga.privacy.questions import QuestionRefused
from brygga.registry.areas import AREAS
from brygga.studies import ctgov, funnel, invitations, matching, registration, staff
from brygga.studies.models import PHASES, StaffAccount, Study
from brygga.web.deps import (
    Id,
    ask_feasibility,
    db,
    feasibility_now,
    lang,
    read_db,
    render,
    render_study,
    short_write,
    study_eligibility_ready,
)
from brygga.web.security import Principal, allow

router = APIRouter()
any_staff = allow("researcher", "research_office", "care_provider", "admin")
researcher = allow("researcher")
reviewer = allow("research_office")
team = allow("researcher", "care_provider")
MAX_UPLOAD = 2_000_000
SITE_ROWS = 3


def account(session: Session, who: Principal) -> StaffAccount:
    return staff.get(session, who.staff_id)


def form_page(
    request: Request,
    data: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    study: Study | None = None,
) -> Response:
    """The study form: a new study, or ``study`` being edited."""
    sites = list(data.get("sites") or [])
    sites += [{"name": "", "municipality_code": ""}] * (SITE_ROWS - len(sites))
    context = {"data": data, "errors": errors, "areas": AREAS, "phases": PHASES, "sites": sites,
               "study": study}  # fmt: skip
    return render(request, "study_form.html", context, status)


async def study_form(request: Request) -> dict[str, Any]:
    # Closing the form closes its uploads' temporary files (a browser always sends the file
    # field, even empty).
    async with request.form() as form:
        return await _study_form(form)


async def _study_form(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: str(form.get(k) or "")
        for k in ("title_sv", "title_en", "summary_sv", "summary_en", "sponsor", "phase", "area",
                  "ethics_number", "eu_ct_number", "nct_id", "target_enrolment",
                  "recruitment_start", "recruitment_end", "criteria_yaml", "visits",
                  "duration_weeks", "participation_sv", "participation_en", "compensation_sv",
                  "compensation_en", "contact_role", "contact_email", "contact_phone")
    }  # fmt: skip
    data["drug_trial"] = form.get("drug_trial") == "yes"
    data["healthy_volunteers"] = form.get("healthy_volunteers") == "yes"
    upload = form.get("criteria_file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            raise FormError({"criteria": "the file is too large"})
        try:
            data["criteria_yaml"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError({"criteria": "the file is not UTF-8 text"}) from None
    names, codes = form.getlist("site_name"), form.getlist("site_municipality")
    data["sites"] = [
        {"name": str(n), "municipality_code": str(c)}
        for n, c in zip(names, codes, strict=False)
        if str(n).strip() or str(c).strip()
    ]
    for key in ("target_enrolment", "recruitment_start", "recruitment_end", "visits",
                "duration_weeks"):  # fmt: skip
        if not data[key]:
            data.pop(key)
    return data


@router.get("/studies")
def studies(
    request: Request,
    who: Principal = Depends(any_staff),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    return render(
        request, "studies.html", {"studies": registration.studies_for(session, me), "me": me}
    )


@router.get("/studies/new")
def new_study(request: Request, who: Principal = Depends(researcher)) -> Response:
    return form_page(request, {"phase": "2", "area": "cardiovascular"}, {})


@router.post("/studies")
async def create_study(
    request: Request,
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    data: dict[str, Any] = {}
    try:
        data = await study_form(request)
        study = registration.create_study(session, account(session, who), data)
    except FormError as exc:
        return form_page(request, data, exc.fields, 422)
    return RedirectResponse(f"/studies/{study.id}", 303)


@router.get("/studies/{study_id}/edit")
def edit_study(
    study_id: Id,
    request: Request,
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    study = registration.editable_study(session, me, study_id)
    return form_page(request, registration.study_form_data(study), {}, study=study)


@router.post("/studies/{study_id}/edit")
async def update_study(
    study_id: Id,
    request: Request,
    who: Principal = Depends(researcher),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    study = registration.editable_study(session, me, study_id)
    data: dict[str, Any] = {}
    try:
        data = await study_form(request)
        registration.update_study(session, me, study, data)
    except FormError as exc:  # validated before anything is changed
        return form_page(request, data, exc.fields, 422, study=study)
    return RedirectResponse(f"/studies/{study.id}", 303)


@router.post("/studies/import")
async def import_ctgov(
    request: Request, file: UploadFile, who: Principal = Depends(researcher)
) -> Response:
    raw = await file.read(MAX_UPLOAD + 1)
    try:
        if len(raw) > MAX_UPLOAD:
            raise InputError("the file is too large")
        try:
            records = ctgov.records_from_text(raw.decode("utf-8"), "the file")
        except UnicodeDecodeError:
            raise InputError("the file is not JSON") from None
        imported = ctgov.import_record(records[0] if records else {})
    except InputError as exc:
        return form_page(request, {}, {"file": exc.message}, 422)
    data = registration.from_ctgov(imported)
    notes = (
        {"criteria": "not imported: " + ", ".join(imported.unmapped)} if imported.unmapped else {}
    )
    return form_page(request, data, notes)


@router.get("/studies/{study_id}")
def study_page(
    study_id: Id,
    request: Request,
    who: Principal = Depends(any_staff),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    return render_study(request, session, me, registration.visible_study(session, me, study_id))


@router.post("/studies/{study_id}/submit")
async def submit_study(
    study_id: Id,
    request: Request,
    who: Principal = Depends(researcher),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    def ask() -> tuple[Study, dict[str, Any] | None]:
        me = account(session, who)
        study = registration.visible_study(session, me, study_id)
        registration.check_submit(me, study)  # refused at once, not after the question
        try:
            return study, ask_feasibility(request, session, study, who)
        except QuestionRefused:  # recorded and reported; submitted all the same, the
            return study, None  # research office can ask later

    def submit(write: Session) -> None:  # the submission and its feasibility: both or neither
        me = account(write, who)
        registration.submit(write, me, registration.visible_study(write, me, study_id))
        if result is not None:
            funnel.save_feasibility(write, study_id, result, study.criteria_yaml)

    try:
        study, result = await run_in_threadpool(ask)
    except FormError as exc:  # what is missing, named on the study's page (no dead end)
        me = account(session, who)
        study = registration.visible_study(session, me, study_id)
        return render_study(request, session, me, study, exc.fields, 422)
    await short_write(request, submit)
    return RedirectResponse(f"/studies/{study_id}", 303)


@router.post("/studies/{study_id}/feasibility")
async def feasibility(
    study_id: Id,
    request: Request,
    who: Principal = Depends(allow("researcher", "research_office")),
    session: Session = Depends(read_db, scope="function"),
) -> Response:
    try:
        await feasibility_now(request, session, who, study_id)
    except (QuestionRefused, InputError) as exc:  # said on the study's page, not a dead end
        message = translate_error(exc, lang(request)) or exc.message
        me = account(session, who)
        study = registration.visible_study(session, me, study_id)
        return render_study(request, session, me, study, {"feasibility": message},
                            exc.http_status)  # fmt: skip
    return RedirectResponse(f"/studies/{study_id}#feasibility", 303)


@router.post("/studies/{study_id}/review")
def review(
    study_id: Id,
    request: Request,
    decision: str = Form(pattern="^(approve|reject)$"),
    reason: str = Form(""),  # registration.review checks its length: the page says so
    who: Principal = Depends(reviewer),
    _ready: None = Depends(study_eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    study = registration.visible_study(session, me, study_id)
    try:
        registration.review(session, me, study, approve=decision == "approve", reason=reason)
    except FormError as exc:  # e.g. a rejection without a reason: the page says so
        return render_study(request, session, me, study, exc.fields, 422, {"reason": reason})
    if study.status == "approved":
        matching.match_study(session, study, request.app.state.eligibility)
    return RedirectResponse(f"/studies/{study.id}", 303)


@router.get("/studies/{study_id}/contacts")
def contacts(
    study_id: Id,
    request: Request,
    who: Principal = Depends(team),
    session: Session = Depends(db, scope="function"),
) -> Response:
    me = account(session, who)
    study = registration.visible_study(session, me, study_id)
    rows = invitations.team_view(session, me, study)
    return render(request, "contacts.html", {"study": study, "rows": rows})


@router.post("/invitations/{invitation_id}/outcome")
def outcome(
    invitation_id: Id,
    outcome: str = Form(pattern="^(screened|enrolled|not_eligible)$"),
    who: Principal = Depends(team),
    session: Session = Depends(db, scope="function"),
) -> Response:
    invitation = invitations.record_outcome(session, account(session, who), invitation_id, outcome)
    return RedirectResponse(f"/studies/{invitation.study_id}/contacts", 303)
