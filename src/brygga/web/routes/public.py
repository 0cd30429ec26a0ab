"""Home, language, log-in (demo, OIDC, staff password) and log-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.errors import BryggaError, NotFoundError
from brygga.registry import service
from brygga.registry.models import Resident
from brygga.studies import staff as staff_accounts
from brygga.web import auth
from brygga.web.app import db, error_response, render
from brygga.web.auth import OIDCProvider
from brygga.web.security import (
    SESSION_COOKIE,
    Principal,
    allow,
    principal,
    session_token,
)

router = APIRouter()
public = Depends(allow("public"))
DEMO_PEOPLE = 12


def logged_in(request: Request, who: Principal, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    config = request.app.state.config
    response.set_cookie(
        SESSION_COOKIE, session_token(who, config.secret_key), httponly=True, samesite="lax",
        secure=config.secure_cookies,
    )  # fmt: skip
    return response


@router.get("/", dependencies=[public])
def home(request: Request) -> Response:
    return render(request, "home.html")


@router.get("/healthz", dependencies=[public])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/lang/{code}", dependencies=[public])
def set_language(code: Annotated[str, Path(max_length=10)], request: Request) -> Response:
    back = request.headers.get("referer", "/")
    response = RedirectResponse(back if back.startswith(str(request.base_url)) else "/", 303)
    response.set_cookie("lang", "en" if code == "en" else "sv", samesite="lax")
    return response


@router.get("/login", dependencies=[public])
def login_page(request: Request, session: Session = Depends(db, scope="function")) -> Response:
    people = []
    if request.app.state.config.demo:
        # Synthetic people only (demo mode); the list itself is a read of identity data.
        people = list(
            session.scalars(
                select(Resident)
                .where(Resident.deleted_at.is_(None), Resident.personnummer.is_not(None))
                .order_by(Resident.registered_at.is_(None), Resident.id)
                .limit(DEMO_PEOPLE)
            )
        )
        audit.append(
            "identity.read",
            actor="demo-login",
            details={"purpose": "demo log-in list", "count": len(people)},
        )
    return render(
        request, "login.html", {"people": people, "oidc": request.app.state.config.oidc is not None}
    )


@router.post("/login/demo", dependencies=[public])
def login_demo(
    request: Request,
    ref: str = Form(max_length=32),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if not request.app.state.config.demo:
        raise NotFoundError("the demo identity provider is not enabled")
    resident = service.by_ref(session, ref)
    audit.append("resident.login", actor=f"resident:{resident.ref}", details={"provider": "demo"})
    return logged_in(request, Principal("resident", resident.ref), "/portal")


def _provider(request: Request) -> OIDCProvider:
    provider = request.app.state.config.oidc
    if provider is None:
        raise NotFoundError("no identity provider is configured")
    return provider


def _start_oidc(request: Request, purpose: str) -> Response:
    url, pending = _provider(request).start(purpose)
    response = RedirectResponse(url, status_code=303)
    # The state, the nonce and the purpose come back to the callback in a cookie signed with
    # the app's key (lax: the IdP's redirect back is a top-level GET, which carries it).
    response.set_cookie(
        auth.PENDING_COOKIE, auth.pending_cookie(pending, request.app.state.config.secret_key),
        max_age=auth.PENDING_SECONDS, httponly=True, samesite="lax", path="/login/oidc",
        secure=request.app.state.config.secure_cookies,
    )  # fmt: skip
    return response


@router.get("/login/oidc", dependencies=[public])
def login_oidc(request: Request) -> Response:
    return _start_oidc(request, "resident")


@router.get("/login/oidc/staff", dependencies=[public])
def login_oidc_staff(request: Request) -> Response:
    return _start_oidc(request, "staff")


@router.get("/login/oidc/callback", dependencies=[public])
def login_oidc_callback(
    request: Request,
    code: str = Query("", max_length=4096),
    state: str = Query("", max_length=200),
    error: str = Query("", max_length=200),
    session: Session = Depends(db, scope="function"),
) -> Response:
    provider = _provider(request)
    pending = auth.read_pending(
        request.cookies.get(auth.PENDING_COOKIE), request.app.state.config.secret_key
    )
    try:
        if error:  # the user cancelled, or the IdP refused before any code was issued
            raise auth.LoginRefused("the log-in was cancelled or refused at the identity provider")
        if pending is not None and pending.purpose == "staff":
            claims = provider.finish(code, state, pending, provider.staff_claim)
            response = _staff_logged_in(request, session, provider.staff_identifier(claims))
        else:
            claims = provider.finish(code, state, pending, provider.personnummer_claim)
            response = _resident_logged_in(request, session, provider.personnummer(claims))
    except BryggaError as e:  # a refused log-in also ends the pending one
        response = error_response(request, e.http_status, e.message)
    response.delete_cookie(auth.PENDING_COOKIE, path="/login/oidc")
    return response


def _resident_logged_in(request: Request, session: Session, pnr: str) -> Response:
    resident = service.by_personnummer(session, pnr)
    audit.append("resident.login", actor=f"resident:{resident.ref}", details={"provider": "oidc"})
    return logged_in(request, Principal("resident", resident.ref), "/portal")


def _staff_logged_in(request: Request, session: Session, email: str) -> Response:
    account = staff_accounts.by_identity_provider(session, email)
    audit.append("staff.login", actor=f"staff:{account.id}", details={"provider": "oidc"})
    to = "/studies" if account.role != "admin" else "/admin"
    return logged_in(request, Principal(account.role, str(account.id)), to)


@router.post("/login/staff", dependencies=[public])
def login_staff(
    request: Request,
    email: str = Form(max_length=200),
    password: str = Form(max_length=200),
    session: Session = Depends(db, scope="function"),
) -> Response:
    client = request.client.host if request.client else "unknown"
    request.app.state.login_limiter.hit(f"{client}|{email.strip().lower()}")
    request.app.state.address_limiter.hit(client)  # and per address, whatever the e-mail
    account = staff_accounts.authenticate(session, email, password)
    audit.append("staff.login", actor=f"staff:{account.id}", details={})
    return logged_in(
        request,
        Principal(account.role, str(account.id)),
        "/studies" if account.role != "admin" else "/admin",
    )


@router.post("/logout", dependencies=[public])
def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def current(request: Request) -> Principal:
    return principal(request)
