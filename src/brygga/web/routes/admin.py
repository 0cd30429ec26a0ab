"""Administration: organizations and staff accounts (create, new password, deactivate)."""

from __future__ import annotations

__all__ = ["router"]

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga.forms import FormError
from brygga.studies import staff
from brygga.studies.models import ORGANIZATION_KINDS, ROLES, Organization, StaffAccount
from brygga.web.deps import Id, db, render
from brygga.web.security import Principal, allow

router = APIRouter(prefix="/admin")
admin_only = allow("admin")


def page(request: Request, session: Session, errors: dict[str, str] | None = None) -> Response:
    context = {
        "organizations": list(session.scalars(select(Organization).order_by(Organization.name))),
        "accounts": list(session.scalars(select(StaffAccount).order_by(StaffAccount.email))),
        "errors": errors or {},
        "roles": ROLES,
        "kinds": ORGANIZATION_KINDS,
    }
    return render(request, "admin.html", context, 422 if errors else 200)


@router.get("")
def admin(
    request: Request,
    who: Principal = Depends(admin_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    return page(request, session)


@router.post("/organizations")
def add_organization(
    request: Request,
    name: str = Form("", max_length=200),
    kind: str = Form("", max_length=40),
    care_site_id: str = Form("", max_length=20),
    who: Principal = Depends(admin_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    data: dict[str, object] = {"name": name, "kind": kind}
    if care_site_id.strip():
        data["care_site_id"] = care_site_id.strip()  # validated (a whole number) by the service
    try:
        staff.create_organization(session, data)
    except FormError as exc:
        return page(request, session, exc.fields)
    return RedirectResponse("/admin", 303)


@router.post("/staff")
def add_staff(
    request: Request,
    email: str = Form("", max_length=200),
    display_name: str = Form("", max_length=200),
    role: str = Form("", max_length=40),
    organization_id: str = Form("", max_length=20),
    password: str = Form("", max_length=200),
    who: Principal = Depends(admin_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    data = {"email": email, "display_name": display_name, "role": role, "password": password or None,
            "organization_id": int(organization_id) if organization_id.isdigit() else None}  # fmt: skip
    try:
        staff.create_staff(session, data, actor=f"staff:{who.id}")
    except FormError as exc:
        return page(request, session, exc.fields)
    return RedirectResponse("/admin", 303)


@router.post("/staff/{staff_id}/password")
def set_password(
    request: Request,
    staff_id: Id,
    password: str = Form("", max_length=200),
    who: Principal = Depends(admin_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """A new password for an account; its sessions end at once (``staff.set_password``)."""
    account = staff.get(session, staff_id)
    try:
        staff.set_password(session, account, password, actor=f"staff:{who.id}")
    except FormError as exc:
        return page(request, session, {f"password-{staff_id}": exc.fields["password"]})
    return RedirectResponse("/admin", 303)


@router.post("/staff/{staff_id}/deactivate")
def deactivate(
    staff_id: Id,
    who: Principal = Depends(admin_only),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The account can no longer log in and its sessions end at once."""
    staff.deactivate(session, staff.get(session, staff_id), actor=f"staff:{who.id}")
    return RedirectResponse("/admin", 303)
