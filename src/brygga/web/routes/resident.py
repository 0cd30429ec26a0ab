"""The resident portal: join, profile, consents, pause, invitations, download, delete."""

from __future__ import annotations

__all__ = ["router"]

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from brygga.db.group_commit import group_commit
from brygga.forms import FormError
from brygga.registry import catalogue, consent, service
from brygga.registry.areas import AREAS
from brygga.registry.models import CONSENT_KINDS, Resident
from brygga.studies import invitations, participation
from brygga.web.deps import Id, db, eligibility_ready, render, render_own
from brygga.web.security import SESSION_COOKIE, Principal, allow

router = APIRouter(prefix="/portal")
resident_only = allow("resident")


async def resident_on_loop(request: Request) -> Principal:
    """``resident_only`` for async routes, on the event loop: the check is a signed cookie and
    one primary-key read of the session (about 0.1 ms on SQLite, ``logins.who``), less than
    the trip to a worker thread that FastAPI makes for a plain ``def`` dependency.
    """
    return resident_only(request)


resident_on_loop.roles = resident_only.roles  # type: ignore[attr-defined]


def me(session: Session, who: Principal) -> Resident:
    return service.by_ref(session, who.id or "")


# What the portal confirms after a redirect (``?klart=``): the banner's message key.
DONE = {
    "saved": "saved",
    "declined": "public_done_declined",
    "paused": "public_done_paused",
    "resumed": "public_done_resumed",
    "granted": "public_done_granted",
    "withdrawn": "public_done_withdrawn",
    "withdrawn_contact": "public_done_withdrawn_contact",
}


def version_words(version: str) -> tuple[int, str]:
    """A consent text's version ("2026-1") as (number, year), to say in words."""
    year, _, number = version.partition("-")
    return (int(number) if number.isdigit() else 1), year


def portal_context(
    session: Session, resident: Resident, done: str | None, kind: str | None
) -> dict[str, Any]:
    """The resident's own start page: invitations, a summary of the profile, consents, account.

    The profile form has a page of its own (``/portal/profil``): this page is the one every
    resident opens most, so it shows what they answer to and links to what they change.
    """
    return {
        "done": done,
        "done_kind": kind,
        "version_words": version_words,
        "resident": resident,
        "identity": service.portal_identity(resident),
        "profile": resident.profile,
        "areas": AREAS,
        "conditions": catalogue.CONDITIONS,
        "texts": consent.TEXTS,
        "kinds": CONSENT_KINDS,
        "invitations": invitations.portal_list(session, resident),
    }


def profile_page(request: Request, resident: Resident, **extra: Any) -> Response:
    return render(request, "profil.html", profile_context(resident) | extra, 422)


def profile_context(resident: Resident) -> dict[str, Any]:
    return {
        "profile": resident.profile,
        "areas": AREAS,
        "conditions": catalogue.CONDITIONS,
        "medicines": catalogue.MEDICINES,
        "errors": {},
    }


@router.get("")
async def portal(request: Request, who: Principal = Depends(resident_on_loop)) -> Response:
    """Kept rendered per resident until their data changes (``render_own``): most views of
    the page every resident opens most are then a version read and a copy."""
    done = DONE.get(request.query_params.get("klart", ""))
    kind = request.query_params.get("samtycke", "")
    variant = (done, kind if kind in CONSENT_KINDS else None)
    return await render_own(
        request,
        "portal.html",
        variant,
        lambda session: portal_context(session, me(session, who), *variant),
        # A kept copy shows the identity too: each view of it is an audited read.
        kept_view=lambda: service.portal_identity_read_async(who.id or ""),
    )


@router.post("/join")
async def join(request: Request, who: Principal = Depends(resident_on_loop)) -> Response:
    """Joining is the one write every new resident makes, often many at once (a campaign).

    Joins go through the group commit: all those waiting in one transaction, with one fsync
    of the database and one of the audit log, each answered only once durable.
    """
    url = request.app.state.config.database_url
    await group_commit(url).run_bulk(service.register_refs, who.id or "")
    return RedirectResponse("/portal", 303)


async def _profile_form(request: Request) -> dict[str, Any]:
    form = await request.form()

    def number(name: str) -> Any:
        value = str(form.get(name) or "").strip()
        return value or None

    return {
        "conditions": form.getlist("conditions"),
        "medicines": form.getlist("medicines"),
        "height_cm": number("height_cm"),
        "weight_kg": number("weight_kg"),
        "smoking": number("smoking"),
        "areas": form.getlist("areas"),
        "healthy_volunteer": form.get("healthy_volunteer") == "yes",
        "max_travel_km": number("max_travel_km"),
        "contact_channel": form.get("contact_channel") or "in_app",
        "language": form.get("language") or "sv",
    }


@router.post("/profile")
async def profile(
    request: Request,
    who: Principal = Depends(resident_only),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> Response:
    resident = me(session, who)
    try:
        participation.update_profile(
            session, resident, await _profile_form(request), request.app.state.eligibility
        )
    except FormError as exc:
        return profile_page(request, resident, errors=exc.fields)
    return RedirectResponse("/portal?klart=saved", 303)


@router.get("/profil")
async def profile_form(request: Request, who: Principal = Depends(resident_on_loop)) -> Response:
    """The profile form, kept per resident like the start page (``render_own``)."""
    return await render_own(
        request, "profil.html", None, lambda session: profile_context(me(session, who))
    )


@router.post("/consent/{kind}")
def set_consent(
    kind: Annotated[str, Path(max_length=40)],
    request: Request,
    action: str = Form(pattern="^(grant|withdraw)$"),
    text_version: str = Form(max_length=20),
    who: Principal = Depends(resident_only),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> Response:
    resident = me(session, who)
    participation.set_consent(
        session, resident, kind, action == "grant", text_version=text_version,
        eligibility=request.app.state.eligibility,
    )  # fmt: skip
    done = "granted" if action == "grant" else (
        "withdrawn_contact" if kind == "contact" else "withdrawn")  # fmt: skip
    return RedirectResponse(f"/portal?klart={done}&samtycke={kind}", 303)


@router.post("/pause")
def pause(
    request: Request,
    paused: str = Form(pattern="^(yes|no)$"),
    who: Principal = Depends(resident_only),
    _ready: None = Depends(eligibility_ready),
    session: Session = Depends(db, scope="function"),
) -> Response:
    resident = me(session, who)
    participation.pause(session, resident, paused == "yes", request.app.state.eligibility)
    return RedirectResponse(f"/portal?klart={'paused' if paused == 'yes' else 'resumed'}", 303)


@router.post("/invitations/{invitation_id}")
def answer(
    invitation_id: Id,
    answer: str = Form(pattern="^(interested|declined|seen)$"),
    who: Principal = Depends(resident_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    resident = me(session, who)
    if answer == "seen":
        invitations.mark_seen(session, resident, invitation_id)
        return RedirectResponse("/portal#invitations", 303)
    invitation = invitations.answer(session, resident, invitation_id, answer == "interested")
    if invitation.status == "interested":  # the confirmation page says what happens next
        return RedirectResponse(f"/studier/{invitation.study_id}/anmald", 303)
    return RedirectResponse("/portal?klart=declined", 303)


@router.get("/samtycken")
def consent_receipt(
    request: Request,
    who: Principal = Depends(resident_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """A receipt of the resident's consents: what they agreed to, in which words, and when."""
    resident = me(session, who)
    context = {
        "resident": resident,
        "kinds": CONSENT_KINDS,
        "texts": consent.TEXTS,
        "history": consent.history(session, resident),
        "version_words": version_words,
    }
    return render(request, "samtycken.html", context)


@router.get("/export")
def export(
    who: Principal = Depends(resident_only), session: Session = Depends(db, scope="function")
) -> Response:
    document = participation.export_data(session, me(session, who))
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="brygga-my-data.json"'},
    )


@router.post("/delete")
def delete(
    confirm: str = Form(pattern="^yes$"),
    who: Principal = Depends(resident_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    participation.delete_account(session, me(session, who))
    response = RedirectResponse("/konto-raderat", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/search")
def search(
    request: Request,
    kind: str = Query("conditions", max_length=20),
    q: str = Query("", max_length=200),
    who: Principal = Depends(resident_only),
) -> Response:
    """HTMX: conditions or medicines whose name contains ``q``."""
    source = catalogue.MEDICINES if kind == "medicines" else catalogue.CONDITIONS
    hits = catalogue.search(source, q[:50])
    return render(request, "_search.html", {"hits": hits, "kind": kind})
