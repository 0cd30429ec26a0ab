"""What routes need from the app, without importing the app factory: the core object, the
disclosure policy, database sessions, templates and the one JSON error shape.

Routes import this module (and the domain packages), never ``web/app.py`` or each other
(import-linter contracts in ``pyproject.toml``).
"""

from __future__ import annotations

__all__ = [
    "CODES",
    "Id",
    "ask_feasibility",
    "db",
    "disclosure",
    "error_response",
    "feasibility_now",
    "lang",
    "localized",
    "municipality_name",
    "number",
    "platform",
    "read_db",
    "render",
    "short_write",
    "wants_json",
]

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from babel.numbers import format_decimal
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from brygga.db.base import MAX_ID
from brygga.db.session import session, write_session, writer_turn
from brygga.errors import InputError
from brygga.messages import localize
from brygga.platform import Brygga
from brygga.privacy.questions import Asker
from brygga.studies import funnel, registration, staff
from brygga.studies.models import Study
from brygga.synth.targets import REGIONS
from brygga.web import i18n, security
from brygga.web.security import Principal

T = TypeVar("T")
CODES = {400: "bad_request", 401: "not_logged_in", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid_input",
         429: "too_many_requests"}  # fmt: skip
# A record id in a path: out of range is a 422 like any invalid input (not a database overflow).
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]


# SCB kommunkod -> name, for pages that show a municipality (one list: synth/targets.py).
MUNICIPALITIES = {m.code: m.name for r in REGIONS.values() for m in r.municipalities}


def municipality_name(code: str | None) -> str:
    """A municipality's name from its SCB code (the code itself if unknown)."""
    return MUNICIPALITIES.get(code or "", code or "")


def number(value: float | int | None, language: str) -> str:
    """A number as the reader writes it: 1 234,5 in Swedish, 1,234.5 in English."""
    if value is None:
        return ""
    return format_decimal(value, locale="sv_SE" if language == "sv" else "en_GB")


def platform(request: Request) -> Brygga:
    """The app's core object (``platform.Brygga``)."""
    return request.app.state.brygga


def disclosure(request: Request, *, team: bool = False) -> Any:
    """The policy for counts shown on this request (the platform chooses it)."""
    config = request.app.state.config
    return platform(request).policy(config.region, raw=config.raw_counts, team=team)


def ask_feasibility(
    request: Request, session: Session, study: Study, who: Principal
) -> dict[str, Any] | None:
    """A study's feasibility question from a staff member (None: no region is configured).

    Runs in ``session``, a read transaction (the route's ``read_db``); the question guard's
    records and the noisy answers' cache are written in short transactions of their own, and
    the route saves the result after it with ``short_write``. So a long read never holds the
    write lock, and a resident's pause or withdrawal does not wait behind it (security
    properties 7 and 8)."""
    config = request.app.state.config
    if config.region is None:
        return None
    return funnel.study_feasibility(
        session,
        study,
        platform(request).region(config.region),
        request.app.state.eligibility,
        disclosure(request),
        request.app.state.questions,
        Asker(f"staff:{who.staff_id}"),
        url=config.database_url,
    )


async def feasibility_now(
    request: Request, session: Session, who: Principal, study_id: int
) -> dict[str, Any]:
    """Ask a study's feasibility again and save the answer (the page's and the API's route):
    the question on the request's read transaction in a pool thread, the result in a short
    write, so the write lock is held only to save it."""

    def ask() -> tuple[Study, dict[str, Any] | None]:
        me = staff.get(session, who.staff_id)
        study = registration.visible_study(session, me, study_id)
        if request.app.state.config.region is None:
            raise InputError("no regional records are configured for feasibility")
        return study, ask_feasibility(request, session, study, who)

    study, result = await run_in_threadpool(ask)
    assert result is not None  # a region is configured
    await short_write(
        request, lambda write: funnel.save_feasibility(write, study_id, result, study.criteria_yaml)
    )
    return result


def lang(request: Request) -> str:
    value = request.cookies.get("lang", "sv")
    return value if value in i18n.LANGUAGES else "sv"


def localized(message: str, language: str) -> str:
    """A service's English message in the reader's language. A message the catalogues do not
    have yet is shown in Swedish pages after a Swedish lead, marked ``lang="en"`` (screen
    readers switch voice), never as bare English."""
    text = localize(message, language)
    if text is not None or language == "en":
        return text if text is not None else message
    lead = i18n.translate("error_untranslated", language)
    return Markup('{} <span lang="en">{}</span>').format(lead, escape(message))


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    language = lang(request)
    context = dict(context or {})
    if context.get("errors"):  # field messages from the services: in the page's language
        context["errors"] = {k: localized(v, language) for k, v in context["errors"].items()}
    base = {
        "lang": language,
        "csrf": request.state.csrf,
        "who": security.principal(request),
        "demo": request.app.state.config.demo,
        "staff_roles": security.STAFF_ROLES,
    }
    return request.app.state.templates.TemplateResponse(
        request, name, base | context, status_code=status
    )


async def db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back.

    Requests that may write take the write lock up front (SQLite ``BEGIN IMMEDIATE``), so they
    queue behind each other instead of failing when a read snapshot went stale. They wait for
    their turn on the event loop (``writer_turn``), not in a pool thread: a burst of writers
    larger than the thread pool would otherwise take every thread while the holder of the
    lock needs one to finish.

    Routes use it as ``Depends(db, scope="function")``: the commit then happens before the
    response is sent, so an acknowledged request is durable and the browser's next request
    (after a redirect) sees it. FastAPI's default would commit after sending.

    A POST whose work is a long read (a feasibility question) uses ``read_db`` instead, and
    writes its result with ``short_write``: the write lock is never held for long.
    """
    url = request.app.state.config.database_url
    if request.method in ("GET", "HEAD"):
        async with contextmanager_in_threadpool(session(url)) as s:
            yield s
        return
    async with writer_turn(url), contextmanager_in_threadpool(write_session(url)) as s:
        yield s


async def read_db(request: Request) -> AsyncIterator[Session]:
    """A read transaction for a request of any method, without the write lock.

    For POST routes whose work is mostly a long read (a feasibility question: seconds for
    large criteria): under ``db`` it would hold the write lock throughout, and a resident's
    pause or withdrawal would wait behind it (security properties 5 and 8). Such a route
    writes its result afterwards with ``short_write``; it must not write through this session
    (on SQLite a read transaction cannot take the write lock once another writer committed).
    """
    async with contextmanager_in_threadpool(session(request.app.state.config.database_url)) as s:
        yield s


async def short_write(request: Request, job: Callable[[Session], T]) -> T:
    """``job(session)`` in a write transaction of its own, committed when this returns.

    The turn is awaited on the event loop like ``db``'s (``writer_turn``), and the whole
    transaction then runs in one pool thread: no thread waits for the write lock while the
    holder might need one.
    """
    url = request.app.state.config.database_url
    async with writer_turn(url):
        return await run_in_threadpool(_write, url, job)


def _write(url: str, job: Callable[[Session], T]) -> T:
    with write_session(url) as s:
        return job(s)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def error_response(
    request: Request,
    status: int,
    message: str,
    fields: dict[str, str] | None = None,
    detail: str | None = None,
) -> Response:
    """The JSON error shape for the API, else the error page. ``detail`` is the message in the
    reader's language when the caller has it (``messages.translate_error``)."""
    if wants_json(request):
        body = {"status": status, "code": CODES.get(status, "error"), "message": message}
        body["fields"] = fields or {}
        return JSONResponse({"error": body}, status_code=status)
    if status == 401:
        return Response(status_code=303, headers={"Location": "/login"})
    # The page names the kind of error in the reader's language; the service's own message
    # is shown when the catalogues have it (or the page is English).
    if detail is None:
        detail = localize(message, lang(request)) or (message if lang(request) == "en" else None)
    context = {"status": status, "detail": detail, "errors": fields or {}}
    return render(request, "error.html", context, status)
