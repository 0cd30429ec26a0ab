"""Health-data access on the web: the JSON API (``/api/access/...``), the pages for applicants
(researchers) and data stewards (``/access/...``), and the public register of permits
(``/data/tillstand``).

Thin: each route parses, calls one operation of the platform (``Brygga.access_*``) in a pool
thread (they read and write in short transactions of their own, so no route holds the write
lock while a cohort is counted or an extract written), and renders or returns the document.
Every count in those documents has passed the release gate.
"""

from __future__ import annotations

__all__ = ["router"]

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from brygga.access import applications, review
from brygga.access.applications import Actor
from brygga.access.statistics import DIMENSIONS
from brygga.access.variables import EVENT_TABLES, PERSON_VARIABLES
from brygga.errors import InputError
from brygga.forms import FormError
from brygga.web.deps import Id, platform, render
from brygga.web.security import Principal, allow

router = APIRouter()
applicant = allow("researcher")
viewer = allow("researcher", "data_steward", "admin")
steward = allow("data_steward")
FileName = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


async def _actor(request: Request, who: Principal) -> Actor:
    return await run_in_threadpool(platform(request).access_actor, who.staff_id)


def _region(request: Request) -> Any:
    region = request.app.state.config.region
    if region is None:
        raise InputError("no regional records are configured for data access")
    return region


def _criteria(text: Any, field: str = "criteria_yaml") -> Any:
    if not isinstance(text, str) or not text.strip():
        raise FormError({field: "is required"})
    try:
        return applications.application_criteria(text, field)
    except InputError as exc:
        raise FormError({field: exc.message.removeprefix(f"{field}: ")}) from None


# --- JSON API ---------------------------------------------------------------------------------


@router.get("/api/access/applications")
async def api_list(request: Request, who: Principal = Depends(viewer)) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_list, actor)


@router.post("/api/access/applications", status_code=201)
async def api_create(
    request: Request, data: dict[str, Any] = Body(...), who: Principal = Depends(applicant)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_apply, actor, data)


@router.get("/api/access/applications/{application_id}")
async def api_show(
    application_id: Id, request: Request, who: Principal = Depends(viewer)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_show, actor, application_id)


@router.put("/api/access/applications/{application_id}")
async def api_update(
    application_id: Id,
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(applicant),
) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_update, actor, application_id, data)


@router.post("/api/access/applications/{application_id}/submit")
async def api_submit(
    application_id: Id, request: Request, who: Principal = Depends(applicant)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    core = platform(request)
    return await run_in_threadpool(core.access_submit, actor, application_id, _region(request))


@router.post("/api/access/feasibility")
async def api_feasibility(
    request: Request, data: dict[str, Any] = Body(...), who: Principal = Depends(applicant)
) -> dict[str, Any]:
    """The disclosed size of a cohort before applying (donors only for a donation-based
    application: ``legal_basis: donation_consent``)."""
    actor = await _actor(request, who)
    text = data.get("criteria_yaml")
    _criteria(text)
    donors = data.get("legal_basis") == "donation_consent"
    return await run_in_threadpool(
        lambda: platform(request).access_feasibility(
            actor, text, _region(request), donors_only=donors
        )
    )


@router.post("/api/access/applications/{application_id}/decision")
async def api_decide(
    application_id: Id,
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(steward),
) -> dict[str, Any]:
    actor = await _actor(request, who)
    decision = review.decision_from(data)
    return await run_in_threadpool(platform(request).access_decide, actor, application_id, decision)


@router.get("/api/access/permits/{permit_id}")
async def api_permit(
    permit_id: Id, request: Request, who: Principal = Depends(viewer)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_permit, actor, permit_id)


@router.post("/api/access/permits/{permit_id}/extract", status_code=201)
async def api_extract(
    permit_id: Id, request: Request, who: Principal = Depends(steward)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    core = platform(request)
    return await run_in_threadpool(core.access_extract, actor, permit_id, _region(request))


@router.post("/api/access/permits/{permit_id}/revoke")
async def api_revoke(
    permit_id: Id,
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(steward),
) -> dict[str, Any]:
    actor = await _actor(request, who)
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise FormError({"revoke_reason": "must be text"})
    return await run_in_threadpool(platform(request).access_revoke, actor, permit_id, reason)


@router.post("/api/access/requests")
async def api_request(
    request: Request, data: dict[str, Any] = Body(...), who: Principal = Depends(applicant)
) -> dict[str, Any]:
    """A data request: ``criteria_yaml``, ``tables`` (lists of dimensions), optionally
    ``measure``, ``epsilon`` and ``permit`` (then an output waiting for output checking)."""
    actor = await _actor(request, who)
    criteria = _criteria(data.get("criteria_yaml"))
    permit = data.get("permit")
    if permit is not None and (not isinstance(permit, int) or isinstance(permit, bool)):
        raise FormError({"permit": "must be a permit's number"})
    spec = {k: data[k] for k in ("tables", "measure", "epsilon") if k in data}
    core = platform(request)
    return await run_in_threadpool(
        lambda: core.access_request(actor, criteria, spec, _region(request), permit_id=permit)
    )


@router.get("/api/access/outputs/{output_id}")
async def api_output(
    output_id: Id, request: Request, who: Principal = Depends(viewer)
) -> dict[str, Any]:
    actor = await _actor(request, who)
    return await run_in_threadpool(platform(request).access_output, actor, output_id)


@router.post("/api/access/outputs/{output_id}/release")
async def api_release(
    output_id: Id,
    request: Request,
    data: dict[str, Any] = Body(...),
    who: Principal = Depends(steward),
) -> dict[str, Any]:
    actor = await _actor(request, who)
    approve = data.get("approve") is True
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise FormError({"reason": "must be text"})
    return await run_in_threadpool(
        lambda: platform(request).access_release(actor, output_id, approve=approve, reason=reason)
    )


@router.get("/api/access/outputs/{output_id}/files/{name}")
async def api_download(
    output_id: Id, name: FileName, request: Request, who: Principal = Depends(applicant)
) -> Response:
    return await _download(request, who, output_id, name)


async def _download(request: Request, who: Principal, output_id: int, name: str) -> Response:
    actor = await _actor(request, who)
    path = await run_in_threadpool(platform(request).access_download, actor, output_id, name)
    return FileResponse(
        path,
        filename=name,
        media_type="application/octet-stream",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/access/register")
async def api_register(
    request: Request, who: Principal = Depends(allow("public"))
) -> dict[str, Any]:
    return {"permits": await run_in_threadpool(platform(request).access_register)}


# --- Pages ------------------------------------------------------------------------------------

CHOICES = {
    "purpose_category": applications.PURPOSES,
    "legal_basis": applications.LEGAL_BASES,
    "data_form": applications.DATA_FORMS,
    "output_format": applications.OUTPUT_FORMATS,
    "variables": (*PERSON_VARIABLES, *EVENT_TABLES),
    "dimensions": DIMENSIONS,
    "checklist": review.CHECKLIST,
}


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return render(request, name, {"choices": CHOICES} | context, status)


@router.get("/data/tillstand")
async def register_page(request: Request, who: Principal = Depends(allow("public"))) -> Response:
    permits = await run_in_threadpool(platform(request).access_register)
    return _page(request, "access_register.html", {"permits": permits})


@router.get("/access")
async def home(request: Request, who: Principal = Depends(viewer)) -> Response:
    actor = await _actor(request, who)
    listing = await run_in_threadpool(platform(request).access_list, actor)
    return _page(request, "access_list.html", {"listing": listing, "actor": actor})


def _form_values(form: Any) -> dict[str, Any]:
    """The application form's fields (multi-valued ``variables`` as a list)."""
    data: dict[str, Any] = {
        k: form.get(k, "")
        for k in ("title", "purpose", "purpose_category", "legal_basis", "ethics_number",
                  "criteria_yaml", "data_form", "data_form_reason", "safeguards",
                  "period_start", "period_end", "people", "output_format")
    }  # fmt: skip
    data["variables"] = list(form.getlist("variables"))
    data["statistics"] = form.get("statistics") == "yes"
    return {k: v for k, v in data.items() if v != "" or k in ("ethics_number",)}


@router.get("/access/new")
async def new_page(request: Request, who: Principal = Depends(applicant)) -> Response:
    return _page(request, "access_form.html", {"values": {}, "errors": {}, "feasibility": None})


@router.post("/access/new")
async def new_post(request: Request, who: Principal = Depends(applicant)) -> Response:
    """``action``: ``feasibility`` (show the cohort's disclosed size, keep the form), ``save``
    (a draft) or ``submit`` (save and submit with the feasibility count)."""
    form = await request.form()
    values = _form_values(form)
    action = form.get("action", "save")
    actor = await _actor(request, who)
    core = platform(request)
    try:
        if action == "feasibility":
            _criteria(values.get("criteria_yaml"))
            donors = values.get("legal_basis") == "donation_consent"
            feasibility = await run_in_threadpool(
                lambda: core.access_feasibility(
                    actor, values["criteria_yaml"], _region(request), donors_only=donors
                )
            )
            return _page(request, "access_form.html",
                         {"values": values, "errors": {}, "feasibility": feasibility})  # fmt: skip
        region = _region(request) if action == "submit" else None
        doc = await run_in_threadpool(
            lambda: core.access_apply(actor, values, region=region, submit=action == "submit")
        )
    except FormError as exc:
        return _page(request, "access_form.html",
                     {"values": values, "errors": exc.fields, "feasibility": None}, 422)  # fmt: skip
    return RedirectResponse(f"/access/applications/{doc['id']}", status_code=303)


TABLE_CHOICES = ("sex", "age_band", "municipality", "deprivation", "age_band,sex",
                 "municipality,sex", "deprivation,sex")  # fmt: skip


async def _request_page(
    request: Request, who: Principal, values: dict[str, Any], errors: dict[str, str],
    answer: dict[str, Any] | None = None, status: int = 200,
) -> Response:  # fmt: skip
    actor = await _actor(request, who)
    listing = await run_in_threadpool(platform(request).access_list, actor)
    permits = [p for p in listing["permits"] if p["state"] == "active"]
    return _page(request, "access_request.html",
                 {"values": values, "errors": errors, "answer": answer, "permits": permits,
                  "tables": TABLE_CHOICES}, status)  # fmt: skip


@router.get("/access/request")
async def request_page(request: Request, who: Principal = Depends(applicant)) -> Response:
    return await _request_page(request, who, {"tables": ["sex", "age_band"]}, {})


@router.post("/access/request")
async def request_post(request: Request, who: Principal = Depends(applicant)) -> Response:
    """A data request from the page: the tables at once, or (under a permit) an output that
    waits for output checking, shown on the permit's application page."""
    form = await request.form()
    values = {"criteria_yaml": str(form.get("criteria_yaml", "")),
              "tables": [str(t) for t in form.getlist("tables") if t in TABLE_CHOICES],
              "permit": str(form.get("permit", ""))}  # fmt: skip
    actor = await _actor(request, who)
    core = platform(request)
    try:
        criteria = _criteria(values["criteria_yaml"])
        if not values["tables"]:
            raise FormError({"tables": "choose at least one table"})
        permit = int(values["permit"]) if values["permit"].isdigit() else None
        spec = {"tables": [t.split(",") for t in values["tables"]]}
        answer = await run_in_threadpool(
            lambda: core.access_request(actor, criteria, spec, _region(request), permit_id=permit)
        )
    except FormError as exc:
        return await _request_page(request, who, values, exc.fields, status=422)
    if "kind" in answer:  # an output under a permit
        doc = await run_in_threadpool(core.access_permit, actor, answer["permit"])
        return RedirectResponse(f"/access/applications/{doc['application']}", status_code=303)
    return await _request_page(request, who, values, {}, answer)


async def _application_page(
    request: Request,
    who: Principal,
    application_id: int,
    errors: dict[str, str] | None = None,
    status: int = 200,
    message: str | None = None,
) -> Response:
    actor = await _actor(request, who)
    doc = await run_in_threadpool(platform(request).access_show, actor, application_id)
    return _page(
        request,
        "access_application.html",
        {"application": doc, "actor": actor, "errors": errors or {}, "message": message},
        status,
    )


@router.get("/access/applications/{application_id}")
async def application_page(
    application_id: Id, request: Request, who: Principal = Depends(viewer)
) -> Response:
    return await _application_page(request, who, application_id)


@router.post("/access/applications/{application_id}/submit")
async def submit_post(
    application_id: Id, request: Request, who: Principal = Depends(applicant)
) -> Response:
    actor = await _actor(request, who)
    core = platform(request)
    try:
        await run_in_threadpool(core.access_submit, actor, application_id, _region(request))
    except FormError as exc:
        return await _application_page(request, who, application_id, exc.fields, 422)
    return RedirectResponse(f"/access/applications/{application_id}", status_code=303)


@router.post("/access/applications/{application_id}/decision")
async def decision_post(
    application_id: Id, request: Request, who: Principal = Depends(steward)
) -> Response:
    form = await request.form()
    data = {k: form.get(k, "") for k in ("decision", "reasons", "conditions", "epsilon",
                                          "extracts")}  # fmt: skip
    data["checklist"] = list(form.getlist("checklist"))
    actor = await _actor(request, who)
    try:
        decision = review.decision_from(data)
        await run_in_threadpool(platform(request).access_decide, actor, application_id, decision)
    except FormError as exc:
        return await _application_page(request, who, application_id, exc.fields, 422)
    return RedirectResponse(f"/access/applications/{application_id}", status_code=303)


@router.post("/access/permits/{permit_id}/extract")
async def extract_post(
    permit_id: Id, request: Request, who: Principal = Depends(steward)
) -> Response:
    actor = await _actor(request, who)
    core = platform(request)
    doc = await run_in_threadpool(core.access_permit, actor, permit_id)
    await run_in_threadpool(core.access_extract, actor, permit_id, _region(request))
    return RedirectResponse(f"/access/applications/{doc['application']}", status_code=303)


@router.post("/access/permits/{permit_id}/revoke")
async def revoke_post(
    permit_id: Id, request: Request, who: Principal = Depends(steward)
) -> Response:
    form = await request.form()
    actor = await _actor(request, who)
    core = platform(request)
    doc = await run_in_threadpool(core.access_permit, actor, permit_id)
    try:
        reason = str(form.get("revoke_reason", ""))
        await run_in_threadpool(core.access_revoke, actor, permit_id, reason)
    except FormError as exc:
        return await _application_page(request, who, doc["application"], exc.fields, 422)
    return RedirectResponse(f"/access/applications/{doc['application']}", status_code=303)


@router.post("/access/outputs/{output_id}/release")
async def release_post(
    output_id: Id, request: Request, who: Principal = Depends(steward)
) -> Response:
    form = await request.form()
    actor = await _actor(request, who)
    core = platform(request)
    output = await run_in_threadpool(core.access_output, actor, output_id)
    permit = await run_in_threadpool(core.access_permit, actor, output["permit"])
    approve = form.get("decision") == "release"
    reason = str(form.get("reason", ""))
    try:
        await run_in_threadpool(
            lambda: core.access_release(actor, output_id, approve=approve, reason=reason)
        )
    except FormError as exc:
        # Each output has its own reason field on the page: name it for the error summary.
        fields = {f"{k}-{output_id}" if k == "reason" else k: v for k, v in exc.fields.items()}
        return await _application_page(request, who, permit["application"], fields, 422)
    return RedirectResponse(f"/access/applications/{permit['application']}", status_code=303)


@router.get("/access/outputs/{output_id}/files/{name}")
async def download_page(
    output_id: Id, name: FileName, request: Request, who: Principal = Depends(applicant)
) -> Response:
    return await _download(request, who, output_id, name)
