"""Information pages (about, contact, personal data, cookies, accessibility statement), the
self-check (FINDRISC) and the confirmation after an account is deleted.

The information pages are text from the ``public`` catalogue, laid out by one template: each
page is a title, a lead paragraph and sections of paragraphs. A key ending in ``_list`` is a
bulleted list (one item per line). The accessibility statement keeps DIGG's headings, as the
DOS law (lag 2018:1937) asks.
"""

from __future__ import annotations

__all__ = ["INFO_PAGES", "fill", "router"]

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from brygga.forms import FormError
from brygga.prevention import selfcheck
from brygga.registry import consent, service
from brygga.web.deps import db, read_db, render
from brygga.web.security import allow, principal

router = APIRouter()
public = Depends(allow("public"))

# path -> (title key, lead key, [(heading key, [paragraph keys])])
INFO_PAGES: dict[str, tuple[str, str, list[tuple[str, list[str]]]]] = {
    "/om": ("public_about_title", "public_about_lead", [
        ("public_about_what_h", ["public_about_what_1", "public_about_what_2"]),
        ("public_about_who_h", ["public_about_who_list"]),
        ("public_about_data_h", ["public_about_data_1", "public_about_data_2"]),
        ("public_about_demo_h", ["public_about_demo_1"]),
    ]),
    "/kontakt": ("public_contact_title", "public_contact_lead", [
        ("public_contact_residents_h", ["public_contact_residents_1"]),
        ("public_contact_account_h", ["public_contact_account_1", "public_contact_account_list"]),
        ("public_contact_researchers_h", ["public_contact_researchers_1", "public_contact_researchers_list"]),
        ("public_contact_dpo_h", ["public_contact_dpo_1"]),
        ("public_contact_care_h", ["public_contact_care_1"]),
    ]),
    "/om-personuppgifter": ("public_privacy_title", "public_privacy_lead", [
        ("public_privacy_controller_h", ["public_privacy_controller_1"]),
        ("public_privacy_what_h", ["public_privacy_what_list"]),
        ("public_privacy_purposes_h", ["public_privacy_purposes_list"]),
        ("public_privacy_basis_h", ["public_privacy_basis_1", "public_privacy_basis_list"]),
        ("public_privacy_who_h", ["public_privacy_who_1", "public_privacy_who_2"]),
        ("public_privacy_retention_h", ["public_privacy_retention_list"]),
        ("public_privacy_rights_h", ["public_privacy_rights_1", "public_privacy_rights_list",
                                     "public_privacy_rights_2"]),
        ("public_privacy_security_h", ["public_privacy_security_1"]),
        ("public_privacy_contact_h", ["public_privacy_contact_1", "public_privacy_contact_2"]),
        ("public_privacy_demo_h", ["public_privacy_demo_1"]),
    ]),
    "/cookies": ("public_cookies_title", "public_cookies_lead", [
        ("public_cookies_set_h", ["public_cookies_set_list"]),
        ("public_cookies_none_h", ["public_cookies_none_1"]),
        ("public_cookies_control_h", ["public_cookies_control_1"]),
    ]),
    "/tillganglighet": ("public_a11y_title", "public_a11y_lead", [
        ("public_a11y_how_h", ["public_a11y_how_1", "public_a11y_how_list"]),
        ("public_a11y_cannot_h", ["public_a11y_cannot_1"]),
        ("public_a11y_report_h", ["public_a11y_report_1"]),
        ("public_a11y_supervision_h", ["public_a11y_supervision_1"]),
        ("public_a11y_tech_h", ["public_a11y_tech_1"]),
        ("public_a11y_content_h", ["public_a11y_content_1", "public_a11y_content_list"]),
        ("public_a11y_tested_h", ["public_a11y_tested_1", "public_a11y_tested_list",
                                  "public_a11y_tested_2"]),
    ]),
}  # fmt: skip


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(text: str, contact: dict[str, str | None]) -> str | None:
    """``text`` with the region's addresses (``{email}``, ``{dpo_email}`` ...) put in; None
    when one of them is not set (the caller leaves that line or paragraph out rather than
    show an address that reaches nobody)."""
    names = [n for n in PLACEHOLDER.findall(text) if n in contact]
    if any(not contact[n] for n in names):
        return None
    return PLACEHOLDER.sub(lambda m: contact.get(m.group(1)) or m.group(0), text)


def _info(path: str) -> Any:
    title, lead, sections = INFO_PAGES[path]

    def page(request: Request) -> Response:
        config = request.app.state.config
        # "About this demonstration" sections only where the site is one.
        shown = [s for s in sections if config.demo or not s[0].endswith("_demo_h")]
        context = {"title_key": title, "lead_key": lead, "sections": shown, "fill": fill,
                   "contact": config.contact.model_dump()}  # fmt: skip
        return render(request, "info.html", context)

    return page


for _path in INFO_PAGES:
    router.add_api_route(_path, _info(_path), methods=["GET"], dependencies=[public])


def _selfcheck_page(
    request: Request, session: Session, data: dict[str, Any], result: Any = None,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    who = principal(request)
    resident = service.by_ref(session, who.id or "") if who.role == "resident" else None
    context = {
        "data": data,
        "result": result,
        "errors": errors or {},
        "resident": resident,
        "invite_text": consent.TEXTS["prevention_invite"],
        "invite_given": resident is not None and resident.consent("prevention_invite") is not None,
    }
    return render(request, "egenkontroll.html", context, 422 if errors else 200)


@router.get("/egenkontroll", dependencies=[public])
def selfcheck_form(request: Request, session: Session = Depends(db, scope="function")) -> Response:
    return _selfcheck_page(request, session, {})


@router.post("/egenkontroll", dependencies=[public])
async def selfcheck_result(
    request: Request, session: Session = Depends(read_db, scope="function")
) -> Response:
    """The answers are used for this answer only: nothing is stored or logged."""
    form = await request.form()
    fields = ("age", "sex", "height_cm", "weight_kg", "waist_cm", "active", "vegetables",
              "bp_medication", "high_glucose", "family")  # fmt: skip
    data = {k: str(form.get(k) or "").strip() for k in fields}
    try:
        result = selfcheck.check(data)
    except FormError as exc:
        return _selfcheck_page(request, session, data, errors=exc.fields)
    return _selfcheck_page(request, session, data, result=result)


@router.get("/konto-raderat", dependencies=[public])
def account_deleted(request: Request) -> Response:
    return render(request, "konto_raderat.html")
