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
    "disclosure_text",
    "eligibility_ready",
    "error_response",
    "feasibility_now",
    "lang",
    "local_time",
    "localized",
    "municipality_name",
    "number",
    "platform",
    "read_db",
    "render",
    "render_own",
    "render_public",
    "render_study",
    "short_write",
    "study_eligibility_ready",
    "wants_json",
]

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path as PathParam
from fastapi import Request
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from brygga import charts, clock
from brygga.db.base import MAX_ID
from brygga.db.session import session, write_session, writer_turn
from brygga.errors import InputError
from brygga.messages import format_number, localize
from brygga.platform import Brygga
from brygga.privacy.questions import Asker
from brygga.registry import service as registry
from brygga.studies import builder, funnel, matching, registration, review, staff
from brygga.studies.models import DOCUMENT_KINDS, StaffAccount, Study
from brygga.synth.targets import REGIONS
from brygga.web import i18n, security
from brygga.web.page_cache import PageCache
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
    return "" if value is None else format_number(value, language)


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
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    *,
    csrf: str | None = None,
) -> HTMLResponse:
    language = lang(request)
    context = dict(context or {})
    if context.get("errors"):  # field messages from the services: in the page's language
        context["errors"] = {k: localized(v, language) for k, v in context["errors"].items()}
    base = {
        "lang": language,
        "csrf": csrf or request.state.csrf,
        "who": security.principal(request),
        "demo": request.app.state.config.demo,
        "staff_roles": security.STAFF_ROLES,
    }
    return request.app.state.templates.TemplateResponse(
        request, name, base | context, status_code=status
    )


async def render_public(
    request: Request,
    name: str,
    version: Hashable,
    build: Callable[[Session], dict[str, Any]],
    status: int = 200,
) -> HTMLResponse:
    """``render`` for a page that is the same for every visitor who is not logged in, given
    ``version`` (everything its data depends on): such visitors get a kept copy
    (``page_cache``), on the event loop. Otherwise ``build`` makes the context with a read
    session and the page is rendered in a worker thread (a logged-in visitor's page, or one
    not kept yet)."""
    url = request.app.state.config.database_url
    pages: PageCache = request.app.state.pages
    anonymous = security.principal(request).role == security.ANONYMOUS.role
    key = (name, request.url.path, request.url.query, lang(request), version)
    if anonymous and status == 200:
        body = pages.get(key, request.state.csrf)
        if body is not None:
            return HTMLResponse(body)

    def rendered() -> HTMLResponse:
        with session(url) as s:  # rendering inside: the context may hold the session's rows
            if not anonymous or status != 200:
                return render(request, name, build(s), status)
            response = render(request, name, build(s), status, csrf=pages.sentinel)
        body = bytes(response.body).decode()
        pages.put(key, body)
        return HTMLResponse(body.replace(pages.sentinel, request.state.csrf))

    return await run_in_threadpool(rendered)


async def render_own(
    request: Request,
    name: str,
    variant: Hashable,
    build: Callable[[Session], dict[str, Any]],
    *,
    kept_view: Callable[[], Awaitable[object]] | None = None,
) -> HTMLResponse:
    """``render`` for a resident's own page, kept per resident until their data changes.

    The key holds the resident, the page, ``variant`` (what else the page shows: a banner
    after a redirect), the language and the resident's page version, which the database's
    triggers raise on any change to what the pages show (migration 0013); one primary-key
    read, on the event loop, tells whether the kept copy still holds. A resident is only
    ever served their own copy: the key holds who they are. ``kept_view`` is what a view of
    a kept copy must still do (the audited identity read, security property 4), awaited on the
    event loop before the page goes out. Otherwise ``build`` makes the context with a read
    session opened after the version was read (so a page is never older than its key) and
    the page is rendered in a worker thread.
    """
    url = request.app.state.config.database_url
    pages: PageCache = request.app.state.own_pages
    who = security.principal(request)
    version = registry.page_version(url, who.id or "")
    key = (name, who.role, who.id, variant, lang(request), version)
    if version is not None:
        body = pages.get(key, request.state.csrf)
        if body is not None:
            if kept_view is not None:
                await kept_view()
            return HTMLResponse(body)

    def rendered() -> HTMLResponse:
        with session(url) as s:
            response = render(request, name, build(s), csrf=pages.sentinel)
        body = bytes(response.body).decode()
        if version is not None:
            pages.put(key, body)
        return HTMLResponse(body.replace(pages.sentinel, request.state.csrf))

    return await run_in_threadpool(rendered)


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


async def eligibility_ready(request: Request) -> None:
    """Every recruiting study's people on the records worked out before the route's ``db``
    takes the write lock (declare it before ``db``): a resident's consent, profile or resume,
    which rematches that resident, and a study's approval then find them kept, and never
    compute them (seconds per new study on a large region) while other writers wait."""
    await run_in_threadpool(
        matching.warm, request.app.state.config.database_url, request.app.state.eligibility
    )


async def study_eligibility_ready(request: Request, study_id: Id) -> None:
    """``eligibility_ready`` for the study of the path (a review that may approve it)."""
    await run_in_threadpool(
        matching.warm,
        request.app.state.config.database_url,
        request.app.state.eligibility,
        [study_id],
    )


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


# The release gate's policy descriptions (privacy/disclosure.py, privacy/noise.py), in English,
# as catalogue keys with their figures, so a Swedish page says them in Swedish.
_DISCLOSURES = (
    (re.compile(r"counts 1-(?P<max>\d+) suppressed, others rounded to the nearest (?P<to>\d+)"),
     "wb_disc_rounding"),
    (re.compile(r"counts 1-(?P<max>\d+) suppressed, exact"), "wb_disc_threshold"),
    (re.compile(r"RAW exact counts \(synthetic region\)"), "wb_disc_raw"),
    (re.compile(r"exact \(study team\)"), "wb_disc_team"),
    (re.compile(r"cell key method \(perturbation up to ±(?P<p>\d+)\), counts below (?P<min>\d+)"
                r" suppressed"), "wb_disc_cellkey"),
    (re.compile(r"(?P<mech>\w+) noise \(epsilon (?P<eps>[0-9.]+)(?:, delta [^)]*)?\) rounded to "
                r"(?P<to>\d+), results below (?P<min>\d+) suppressed; 95 % of answers within "
                r"±(?P<err>[0-9.]+) of the truth"), "wb_disc_noise"),
)  # fmt: skip


# Å, Ä and Ö sort after Z, in that order (Swedish alphabetical order).
_SWEDISH_ORDER = str.maketrans({"å": "{", "ä": "|", "ö": "}"})


def disclosure_text(description: str, language: str) -> str:
    """A disclosure policy's description in the page's language."""
    for pattern, key in _DISCLOSURES:
        match = pattern.fullmatch(description or "")
        if match:
            return i18n.translate(key, language).format(**match.groupdict())
    return localized(description, language)


def _feasibility_charts(request: Request, study: Study, language: str) -> dict[str, Any]:
    """The saved feasibility as charts, each with its table: attrition (steps described in the
    page's language), and the eligible by sex, age band and municipality (by name). Every
    figure is the disclosed one saved with the answer (``funnel.study_feasibility``)."""
    result = study.feasibility
    if not result:
        return {}

    def t(key: str) -> str:
        return i18n.translate(key, language)

    steps = result.get("attrition") or []
    labels = [str(s["step"]) for s in steps]
    try:
        criteria = registration.study_criteria(study)
        config = request.app.state.config
        region = platform(request).region(config.region) if config.region else None
        names = builder.concept_names(region, criteria)
        described = builder.step_labels(criteria, t, language, names)
        if len(described) + 1 == len(labels):  # the engine's first step: the population
            day = str(result.get("index_date", ""))
            described = [builder.population_label(criteria, t, language, day), *described]
        if len(described) == len(labels):  # saved for these criteria (save_feasibility)
            labels = described
    except (InputError, ValueError):  # old criteria the language now refuses: keep the text
        pass
    count = t("col_count")

    def bar(title: str, head: str, keys: list[str], cells: list[dict[str, Any]]) -> Any:
        return charts.bar(
            title,
            keys,
            [c.get("value") for c in cells],
            [str(c.get("display")) for c in cells],
            label_title=head,
            value_title=count,
            lang=language,
        )

    out = {"attrition": bar(t("wb_chart_attrition"), t("col_step"), labels,
                            [s["count"] for s in steps])}  # fmt: skip
    groups = result.get("breakdowns") or {}
    sex = groups.get("sex") or {}
    if sex:
        out["sex"] = bar(t("wb_chart_sex"), t("wb_col_sex"),
                         [t(f"wb_sex_{k}") if k in ("female", "male") else k for k in sex],
                         list(sex.values()))  # fmt: skip
    bands = groups.get("age_band") or {}
    if bands:
        out["age_band"] = bar(t("wb_chart_age"), t("wb_col_age"),
                              [t("wb_age_band").format(band=k.replace("-", "–")) for k in bands],
                              list(bands.values()))  # fmt: skip
    places = groups.get("municipality") or {}
    if places:  # by name (unknown last), as a reader looks a place up
        named = sorted(
            ((t("wb_unknown") if k == "unknown" else municipality_name(k), v)
             for k, v in places.items()),
            key=lambda p: (p[0] == t("wb_unknown"), p[0].casefold().translate(_SWEDISH_ORDER)),
        )  # fmt: skip
        out["municipality"] = bar(t("wb_chart_municipality"), t("wb_col_municipality"),
                                  [n for n, _ in named], [v for _, v in named])  # fmt: skip
    return out


def local_time(at: datetime | None) -> str:
    """A stored moment as Swedish local time (SQLite gives back naive UTC)."""
    if at is None:
        return ""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(clock.SWEDEN).strftime("%Y-%m-%d %H:%M")


def render_study(
    request: Request,
    session: Session,
    me: StaffAccount,
    study: Study,
    errors: dict[str, str] | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    """A study's page (``study.html``): its facts, feasibility with charts and tables, the
    recruitment funnel as a chart, and the review (checklist, documents, comment thread,
    history). ``errors`` and ``values``: a form on the page sent back with its field errors."""
    language = lang(request)
    on_team = registration.is_team(me, study)
    counts = funnel.funnel(session, study, disclosure(request, team=on_team))
    stages = counts["stages"]
    funnel_chart = charts.bar(
        i18n.translate("funnel", language),
        [i18n.translate(f"funnel_{k}", language) for k in stages],
        [v.get("value") for v in stages.values()],
        [str(v.get("display")) for v in stages.values()],
        label_title=i18n.translate("col_stage", language),
        value_title=i18n.translate("col_count", language),
        lang=language,
    )
    reviewer = me.role == "research_office"
    participant = reviewer or (me.role == "researcher" and on_team)
    context = {
        "study": study,
        "me": me,
        "on_team": on_team,
        "funnel": counts,
        "funnel_chart": funnel_chart,
        "funnel_disclosure": disclosure_text(counts["disclosure"], language),
        "feasibility_disclosure": disclosure_text(
            (study.feasibility or {}).get("disclosure", ""), language
        ),
        "feasibility_charts": _feasibility_charts(request, study, language),
        "participant": participant,
        "editable": me.role == "researcher" and on_team and study.status in registration.EDITABLE,
        "checklist": review.checklist(session, study),
        "documents": review.documents(session, study) if participant else [],
        "comments": review.comments(session, study) if participant else [],
        "history": review.history(session, study),
        "waiting_days": review.waiting_days(study),
        "document_kinds": DOCUMENT_KINDS,
        "max_document": review.MAX_DOCUMENT,
        "errors": errors or {},
        "values": values or {},
        "local_time": local_time,
    }
    return render(request, "study.html", context, status)
