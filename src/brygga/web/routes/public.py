"""Home, language, log-in (demo, OIDC, staff password) and log-out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit
from brygga.errors import NotFoundError
from brygga.registry import service
from brygga.registry.models import Resident
from brygga.studies import staff as staff_accounts
from brygga.web.app import db, render
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
def set_language(code: str, request: Request) -> Response:
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


@router.get("/login/oidc", dependencies=[public])
def login_oidc(request: Request) -> Response:
    provider = request.app.state.config.oidc
    if provider is None:
        raise NotFoundError("no identity provider is configured")
    url, state, _nonce = provider.start()
    response = RedirectResponse(url, status_code=303)
    response.set_cookie("brygga_oidc_state", state, httponly=True, samesite="lax", max_age=600)
    return response


@router.get("/login/oidc/callback", dependencies=[public])
def login_oidc_callback(
    request: Request,
    code: str = "",
    state: str = "",
    session: Session = Depends(db, scope="function"),
) -> Response:
    provider = request.app.state.config.oidc
    if provider is None:
        raise NotFoundError("no identity provider is configured")
    pnr = provider.finish(code, state, request.cookies.get("brygga_oidc_state", ""))
    resident = service.by_personnummer(session, pnr)
    audit.append("resident.login", actor=f"resident:{resident.ref}", details={"provider": "oidc"})
    response = logged_in(request, Principal("resident", resident.ref), "/portal")
    response.delete_cookie("brygga_oidc_state")
    return response


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
