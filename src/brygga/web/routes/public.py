"""Home, language, log-in (demo, OIDC, staff password) and log-out."""

from __future__ import annotations

__all__ = ["router"]

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from brygga import audit, logins
from brygga.errors import BryggaError, NotFoundError, PermissionDenied
from brygga.registry import service
from brygga.studies import staff as staff_accounts
from brygga.web import auth
from brygga.web.auth import OIDCProvider
from brygga.web.deps import db, error_response, render
from brygga.web.security import (
    SESSION_COOKIE,
    STAFF_ROLES,
    Principal,
    TooManyAttempts,
    allow,
    client_address,
    principal,
    session_cookie,
    session_id,
)

router = APIRouter()
public = Depends(allow("public"))
DEMO_PEOPLE = 12


def logged_in(request: Request, session: Session, who: Principal, to: str) -> Response:
    """A new server-side session for ``who`` (a previous one in this browser ends)."""
    config = request.app.state.config
    old = session_id(request)
    if old is not None:
        logins.revoke(session, old)
    kind = "staff" if who.role in STAFF_ROLES else "resident"
    sid = logins.open_session(session, kind, who.id or "", who.role, demo=config.demo)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session_cookie(sid, config.secret_key, demo=config.demo), httponly=True,
        samesite="lax", secure=config.secure_cookies,
    )  # fmt: skip
    return response


@router.get("/", dependencies=[public])
def home(request: Request) -> Response:
    return render(request, "home.html")


@router.get("/healthz", dependencies=[public])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/lang/{code}", dependencies=[public])
def set_language(
    code: Annotated[str, Path(max_length=10)],
    request: Request,
    next: str = Query("", max_length=2000),
) -> Response:
    # Back to the page the user came from, as a path on this site only: the Host header and
    # the Referer are the client's to choose, so neither may name where we redirect.
    back = same_site_path(next) or same_site_path(request.headers.get("referer", "")) or "/"
    response = RedirectResponse(back, 303)
    response.set_cookie("lang", "en" if code == "en" else "sv", samesite="lax")
    return response


def same_site_path(url: str) -> str | None:
    """The path and query of ``url`` if they make a relative redirect that stays on this site
    (not ``//host``, ``/\\host`` or anything with control characters); else None."""
    parts = urlsplit(url.strip())
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not path.startswith("/") or path[1:2] in ("/", "\\"):
        return None
    if any(ord(c) < 32 or c == "\\" for c in path):
        return None
    return path


@router.get("/login", dependencies=[public])
def login_page(
    request: Request,
    next: str = Query("", max_length=2000),
    session: Session = Depends(db, scope="function"),
) -> Response:
    people = []
    if request.app.state.config.demo:
        # Synthetic people only (demo mode); the read is audited in the registry.
        people = service.demo_login_people(session, DEMO_PEOPLE)
    context = {"people": people, "oidc": request.app.state.config.oidc is not None,
               "next": same_site_path(next) or ""}  # fmt: skip
    return render(request, "login.html", context)


@router.post("/login/demo", dependencies=[public])
def login_demo(
    request: Request,
    ref: str = Form(max_length=32),
    next: str = Form("", max_length=2000),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if not request.app.state.config.demo:
        raise NotFoundError("the demo identity provider is not enabled")
    resident = service.by_ref(session, ref)
    audit.append("resident.login", actor=f"resident:{resident.ref}", details={"provider": "demo"})
    # Back to where the log-in was asked for (a study's "Anmäl intresse"), on this site only.
    to = same_site_path(next) or "/portal"
    return logged_in(request, session, Principal("resident", resident.ref), to)


def _provider(request: Request) -> OIDCProvider:
    provider = request.app.state.config.oidc
    if provider is None:
        raise NotFoundError("no identity provider is configured")
    return provider


def _start_oidc(request: Request, purpose: str, next: str = "") -> Response:
    # Only a path on this site is kept (open-redirect safe), and checked again on the way back.
    url, pending = _provider(request).start(purpose, same_site_path(next) or "")
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
def login_oidc(request: Request, next: str = Query("", max_length=2000)) -> Response:
    return _start_oidc(request, "resident", next)


@router.get("/login/oidc/staff", dependencies=[public])
def login_oidc_staff(request: Request, next: str = Query("", max_length=2000)) -> Response:
    return _start_oidc(request, "staff", next)


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
            response = _staff_logged_in(
                request, session, provider.staff_identifier(claims), pending.next
            )
        else:
            claims = provider.finish(code, state, pending, provider.personnummer_claim)
            after = pending.next if pending is not None else ""
            response = _resident_logged_in(request, session, provider.personnummer(claims), after)
    except BryggaError as e:  # a refused log-in also ends the pending one
        response = error_response(request, e.http_status, e.message)
    response.delete_cookie(auth.PENDING_COOKIE, path="/login/oidc")
    return response


def _resident_logged_in(request: Request, session: Session, pnr: str, next: str = "") -> Response:
    resident = service.by_personnummer(session, pnr)
    audit.append("resident.login", actor=f"resident:{resident.ref}", details={"provider": "oidc"})
    # Back to where the log-in was asked for, as after the password and demo log-ins.
    to = same_site_path(next) or "/portal"
    return logged_in(request, session, Principal("resident", resident.ref), to)


def _staff_logged_in(request: Request, session: Session, email: str, next: str = "") -> Response:
    account = staff_accounts.by_identity_provider(session, email)
    audit.append("staff.login", actor=f"staff:{account.id}", details={"provider": "oidc"})
    to = same_site_path(next) or ("/studies" if account.role != "admin" else "/admin")
    return logged_in(request, session, Principal(account.role, str(account.id)), to)


@router.post("/login/staff", dependencies=[public])
def login_staff(
    request: Request,
    email: str = Form(max_length=200),
    password: str = Form(max_length=200),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Password log-in, limited per account and per client address (``brygga/logins.py``).

    The write session serializes log-ins of every worker, so the counts are exact. A failure
    is recorded and answered without raising: raising would roll the count back.
    """
    secret = request.app.state.config.secret_key
    account_key = logins.account_key(secret, email)
    address = client_address(request)
    address_key = logins.address_key(secret, address) if address is not None else None
    wait = logins.locked_for(session, [k for k in (account_key, address_key) if k])
    if wait:
        raise TooManyAttempts(
            f"too many failed log-ins; wait {wait} seconds and try again",
        )
    try:
        account = staff_accounts.authenticate(session, email, password)
    except PermissionDenied as e:
        known = staff_accounts.exists(session, email)
        counts = logins.record_failure(session, account_key, address_key, known=known)
        # The keys are HMACs with the server's key: the audit log holds no e-mail address.
        audit.append(
            "staff.login_failed",
            actor="anonymous",
            details={"account": account_key, "address": address_key, **counts},
        )
        return error_response(request, e.http_status, e.message)
    logins.record_success(session, account_key)
    audit.append("staff.login", actor=f"staff:{account.id}", details={})
    return logged_in(
        request,
        session,
        Principal(account.role, str(account.id)),
        "/studies" if account.role != "admin" else "/admin",
    )


@router.post("/logout", dependencies=[public])
def logout(request: Request, session: Session = Depends(db, scope="function")) -> Response:
    sid = session_id(request)
    if sid is not None:
        logins.revoke(session, sid)  # the cookie is worthless from now on, wherever it is kept
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def current(request: Request) -> Principal:
    return principal(request)
