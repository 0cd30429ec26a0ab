"""Prevention in the browser for care units (issue 14, item 3): the region's programs, eligible
and invited per care unit by name (disclosed), the identifiable worklist of the user's own unit
only (a stated legal basis, audited), its export that ``brygga evaluate`` reads, and equity
by deprivation quintile and municipality with charts.

Counts leave through the release gate (``ProgramPlan.summary`` and ``equity`` disclose them);
shares are computed from exact counts and shown as they are (they are rates, not people).
"""

from __future__ import annotations

__all__ = ["router"]

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from brygga import charts
from brygga.errors import InputError, NotFoundError
from brygga.forms import FieldMessage
from brygga.messages import translate
from brygga.prevention.programs import invitation_list
from brygga.prevention.worklist import LEGAL_BASES
from brygga.studies import staff
from brygga.web.deps import db, disclosure, lang, number, platform, render
from brygga.web.security import Principal, allow

router = APIRouter(prefix="/prevention")
viewers = allow("care_provider", "strategy", "admin")
care_unit_staff = allow("care_provider")


def _region(request: Request) -> Path:
    region = request.app.state.config.region
    if region is None:
        raise InputError("no regional records are configured for prevention")
    return region


def _own_unit(session: Session, who: Principal) -> tuple[int, str] | None:
    """The care unit whose worklist the user may read: their organization's, if it is one."""
    account = staff.get(session, who.staff_id)
    org = account.organization
    if org is None or org.kind != "care_unit" or org.care_site_id is None:
        return None
    return org.care_site_id, org.name


@router.get("")
async def programs(request: Request, who: Principal = Depends(viewers)) -> Response:
    found = await run_in_threadpool(platform(request).programs)
    return render(request, "care_programs.html", {"programs": found})


def _units_chart(summary: dict[str, Any], language: str) -> charts.Chart | None:
    rows = sorted(
        summary["units"].values(),
        key=lambda u: (-(u["eligible"]["value"] or 0), u["name"]),
    )[:15]
    if not rows:
        return None
    return charts.bar(
        translate("care_chart_units", language), [u["name"] for u in rows],
        [u["eligible"]["value"] for u in rows], [u["eligible"]["display"] for u in rows],
        label_title=translate("care_col_unit", language),
        value_title=translate("care_col_eligible", language), lang=language,
    )  # fmt: skip


@router.get("/{slug}")
async def program(
    request: Request,
    slug: str,
    who: Principal = Depends(viewers),
    session: Session = Depends(db, scope="function"),
) -> Response:
    brygga, region = platform(request), _region(request)
    found = await run_in_threadpool(brygga.programs)
    if slug not in found:
        raise NotFoundError(f"no prevention program {slug!r}")
    plan = await run_in_threadpool(brygga.program_plan, slug, region)
    summary = await run_in_threadpool(plan.summary, disclosure(request), names=plan.unit_names())
    own = _own_unit(session, who) if who.role == "care_provider" else None
    context = {"slug": slug, "program": found[slug], "summary": summary, "own": own,
               "chart_units": _units_chart(summary, lang(request))}  # fmt: skip
    return render(request, "care_program.html", context)


# Residents who asked to be invited (prevention_invite): the list in rank order with them
# marked, them first, or only them.
ASKED_CHOICES = ("all", "first", "only")


def _list_page(request: Request, slug: str, own: tuple[int, str] | None,
               errors: dict[str, str], items: list[Any] | None, basis: str,
               asked: str = "all") -> Response:  # fmt: skip
    found = platform(request).programs()
    if slug not in found:
        raise NotFoundError(f"no prevention program {slug!r}")
    context = {"slug": slug, "program": found[slug], "own": own, "errors": errors,
               "items": items, "bases": LEGAL_BASES, "basis": basis, "asked": asked,
               "asked_choices": ASKED_CHOICES}  # fmt: skip
    return render(request, "care_worklist.html", context, 422 if errors else 200)


@router.get("/{slug}/lista")
def worklist_form(
    request: Request,
    slug: str,
    who: Principal = Depends(care_unit_staff),
    session: Session = Depends(db, scope="function"),
) -> Response:
    return _list_page(request, slug, _own_unit(session, who), {}, None, "")


def _checked_basis(basis: str) -> dict[str, str]:
    return {} if basis in LEGAL_BASES else {"legal_basis": FieldMessage("is required")}


def _checked_asked(asked: str) -> dict[str, str]:
    return {} if asked in ASKED_CHOICES else {"asked": FieldMessage("is required")}


@router.post("/{slug}/lista")
async def worklist(
    request: Request,
    slug: str,
    legal_basis: str = Form("", max_length=200),
    asked: str = Form("all", max_length=10),
    who: Principal = Depends(care_unit_staff),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The identifiable list of the user's own unit: audited before the identities are read.
    ``asked``: all in rank order, those who asked to be invited first, or only them."""
    own = _own_unit(session, who)
    if own is None:  # the page says why there is no list (no identities read, no audit)
        return _list_page(request, slug, None, {}, None, legal_basis)
    errors = _checked_basis(legal_basis) | _checked_asked(asked)
    if errors:
        return _list_page(request, slug, own, errors, None, legal_basis, asked)
    items = await run_in_threadpool(
        platform(request).worklist, slug, _region(request), care_unit=own[0],
        legal_basis=legal_basis, actor=f"staff:{who.id}", asked_first=asked == "first",
        only_asked=asked == "only",
    )  # fmt: skip
    return _list_page(request, slug, own, {}, items, legal_basis, asked)


@router.post("/{slug}/lista.csv")
async def worklist_csv(
    request: Request,
    slug: str,
    legal_basis: str = Form("", max_length=200),
    who: Principal = Depends(care_unit_staff),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The same list as the file ``brygga prevention-list`` writes (``brygga evaluate`` reads
    it as it is), through the same audited function."""
    own = _own_unit(session, who)
    if own is None or _checked_basis(legal_basis):
        return _list_page(request, slug, own, _checked_basis(legal_basis), None, legal_basis)
    brygga = platform(request)
    plan = await run_in_threadpool(brygga.program_plan, slug, _region(request))

    def export() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{slug}-{own[0]}.csv"
            invitation_list(plan, care_unit=own[0], legal_basis=legal_basis,
                            actor=f"staff:{who.id}", out=out, audit_log=brygga.audit_log)  # fmt: skip
            return out.read_bytes()

    body = await run_in_threadpool(export)
    name = f"{slug}-vardenhet-{own[0]}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def _equity_charts(report: dict[str, Any], language: str) -> list[charts.Chart]:
    quintiles = report["breakdowns"].get("deprivation_quintile", {})
    keys = sorted(quintiles, key=int)
    labels = [translate("care_quintile", language).format(q=k) for k in keys]
    out = []
    for measure, key in (("need", "care_chart_need"), ("reach", "care_chart_reach")):
        values = [quintiles[k][measure] for k in keys]
        shares = [None if v is None else round(100 * v, 1) for v in values]
        out.append(charts.bar(
            translate(key, language), labels, shares,
            ["–" if v is None else f"{number(v, language)} %" for v in shares],
            label_title=translate("care_col_quintile", language), value_title="%", lang=language,
        ))  # fmt: skip
    return out


@router.get("/{slug}/jamlikhet")
async def equity(request: Request, slug: str, who: Principal = Depends(viewers)) -> Response:
    brygga = platform(request)
    found = await run_in_threadpool(brygga.programs)
    if slug not in found:
        raise NotFoundError(f"no prevention program {slug!r}")
    report = await run_in_threadpool(brygga.program_equity, slug, _region(request))
    # Municipalities by name ("1280 Malmö" -> "Malmö"), as a reader looks them up.
    places = sorted(
        (key.split(" ", 1)[-1], row) for key, row in report["breakdowns"]["municipality"].items()
    )
    context = {"slug": slug, "program": found[slug], "report": report, "places": places,
               "charts": _equity_charts(report, lang(request))}  # fmt: skip
    return render(request, "care_equity.html", context)
