"""The data stewards' pages: the audit log (filter, verify the chain), privacy budgets per
project, and the disclosure rules in force (with open sweep reports).

Stewards and administrators only. Nothing here shows personal data: audit records hold none
by design (``audit.py``), budgets and settings are not about people.
"""

from __future__ import annotations

__all__ = ["router"]

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, charts
from brygga.db.session import session as read_session
from brygga.errors import InputError
from brygga.forms import FieldMessage
from brygga.messages import translate
from brygga.privacy import budget
from brygga.privacy.models import QuestionFlag
from brygga.web.deps import db, disclosure, lang, number, platform, render
from brygga.web.security import Principal, allow

router = APIRouter(prefix="/forvaltning")
stewards = allow("data_steward", "admin")
PAGE_SIZE = 50


@router.get("")
def overview(who: Principal = Depends(stewards)) -> Response:
    return RedirectResponse("/forvaltning/logg", 303)


@router.get("/logg")
async def audit_log(
    request: Request,
    action: str = Query("", max_length=80),
    actor: str = Query("", max_length=120),
    since: str = Query("", max_length=10),
    who: Principal = Depends(stewards),
) -> Response:
    errors: dict[str, str] = {}
    if since:
        try:
            date.fromisoformat(since)
        except ValueError:
            errors["since"] = FieldMessage("must be a date written YYYY-MM-DD")
    path = platform(request).audit_log
    records = [] if errors else await run_in_threadpool(
        audit.recent, path, action=action or None, actor=actor or None,
        since=since or None, limit=PAGE_SIZE,
    )  # fmt: skip
    context = {"records": records, "filters": {"action": action, "actor": actor, "since": since},
               "errors": errors, "limit": PAGE_SIZE, "verification": None}  # fmt: skip
    return render(request, "steward_log.html", context, 422 if errors else 200)


@router.post("/logg/verifiera")
async def verify_log(request: Request, who: Principal = Depends(stewards)) -> Response:
    """Walks the whole chain (a long read, in a worker thread; no lock held)."""
    path = platform(request).audit_log
    result = await run_in_threadpool(audit.verify, path)
    audit.append("audit.verify", actor=f"staff:{who.id}", details={"ok": result.ok,
                 "records": result.records}, path=path)  # fmt: skip
    records = await run_in_threadpool(audit.recent, path, limit=PAGE_SIZE)
    context = {"records": records, "filters": {"action": "", "actor": "", "since": ""},
               "errors": {}, "limit": PAGE_SIZE, "verification": result}  # fmt: skip
    return render(request, "steward_log.html", context)


def _budgets_page(request: Request, session: Session, errors: dict[str, str],
                  data: dict[str, Any]) -> Response:  # fmt: skip
    budgets = budget.all_budgets(session)
    lang_ = lang(request)
    shares = [100 * b.epsilon_spent / b.epsilon_total for b in budgets]
    spent = charts.bar(
        translate("stw_budget_chart", lang_), [b.project_id for b in budgets], shares,
        [f"{number(v, lang_)} %" for v in shares], label_title=translate("stw_col_project", lang_),
        value_title="%", lang=lang_,
    ) if budgets else None  # fmt: skip
    context = {"budgets": budgets, "errors": errors, "data": data, "budget_chart": spent}
    return render(request, "steward_budgets.html", context, 422 if errors else 200)


@router.get("/budgetar")
def budgets(
    request: Request,
    who: Principal = Depends(stewards),
    session: Session = Depends(db, scope="function"),
) -> Response:
    return _budgets_page(request, session, {}, {})


@router.post("/budgetar")
async def create_budget(
    request: Request,
    project: str = Form("", max_length=100),
    epsilon: str = Form("", max_length=20),
    delta: str = Form("0", max_length=20),
    who: Principal = Depends(allow("data_steward")),
) -> Response:
    """An approved project's budget, given once (``privacy.budget.create_budget``)."""
    data = {"project": project, "epsilon": epsilon, "delta": delta}
    errors: dict[str, str] = {}
    values: dict[str, float] = {}
    if not project.strip():
        errors["project"] = FieldMessage("is required")
    for name, text in (("epsilon", epsilon), ("delta", delta or "0")):
        try:
            values[name] = float(text.replace(",", "."))
        except ValueError:
            errors[name] = FieldMessage("must be a number")
    if not errors:
        try:
            await run_in_threadpool(
                budget.create_budget, project.strip(), values["epsilon"], values["delta"],
                url=request.app.state.config.database_url,
            )  # fmt: skip
        except InputError as exc:
            errors["project" if "project" in exc.message else "epsilon"] = exc.message
        else:
            audit.append("budget.create", actor=f"staff:{who.id}", details={
                "project": project.strip(), "epsilon": values["epsilon"],
                "delta": values["delta"]}, path=platform(request).audit_log)  # fmt: skip
            return RedirectResponse("/forvaltning/budgetar", 303)
    with read_session(request.app.state.config.database_url) as session:
        return _budgets_page(request, session, errors, data)


@router.get("/rojandekontroll")
def disclosure_rules(
    request: Request,
    who: Principal = Depends(stewards),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The rules in force: what every count that leaves passes, and the question limits."""
    settings = platform(request).settings
    flags = session.scalars(
        select(QuestionFlag).where(QuestionFlag.reviewed_by.is_(None)).order_by(QuestionFlag.at)
    ).all()
    context = {
        "policy": disclosure(request),
        "disclosure_settings": settings.disclosure,
        "noise": settings.noise,
        "questions": request.app.state.questions.settings,
        "flags": flags,
    }
    return render(request, "steward_rules.html", context)
