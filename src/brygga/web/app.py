"""The FastAPI app factory: configuration, sessions, errors, templates, routers.

``create_app(WebConfig(...))`` builds an app; ``brygga serve`` runs one under uvicorn. One JSON
error shape for every JSON error (``/api/...`` or ``Accept: application/json``)::

    {"error": {"status": 422, "code": "invalid_input", "message": "...", "fields": {...}}}

HTML pages show the same message on an error page, or beside the fields of the form.
"""

from __future__ import annotations

__all__ = [
    "HERE",
    "UPLOAD_PATHS",
    "BodyLimit",
    "BodyTooLarge",
    "SecurityHeaders",
    "WebConfig",
    "create_app",
    "freeze_heap",
    "lifespan",
    "routers",
    "templates",
]

import gc
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brygga.config import ContactSettings, QuestionSettings, get_settings
from brygga.errors import BryggaError
from brygga.forms import FormError, field_message
from brygga.platform import Brygga
from brygga.privacy.questions import QuestionGuard
from brygga.web import i18n, notifier, security
from brygga.web.deps import (
    error_response,
    lang,
    localized,
    municipality_name,
    number,
    wants_json,
)
from brygga.web.page_cache import PageCache

HERE = Path(__file__).parent
# Routes taking a file upload (routes/staff.py, MAX_UPLOAD): their bodies may be up to
# ``max_upload_body_bytes``; every other body up to ``max_body_bytes``.
UPLOAD_PATHS = frozenset({"/studies", "/studies/import"})
# ... and these, with a study's id: its edited form and its review documents (routes/workbench.py).
UPLOAD_PATTERN = re.compile(r"/studies/[0-9]{1,12}/(edit|documents)")


@dataclass
class WebConfig:
    database_url: str
    region: Path | None = None  # regional records for feasibility and matching
    demo: bool = False  # enables the demo identity provider (synthetic people)
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    outbox_path: Path | None = None  # demo file sender
    raw_counts: bool = False  # synthetic regions only; outputs then say so
    oidc: Any = None  # web.auth.OIDCProvider
    secure_cookies: bool = False  # True behind HTTPS
    max_body_bytes: int = field(default_factory=lambda: get_settings().max_body_bytes)
    max_upload_body_bytes: int = field(default_factory=lambda: get_settings().max_upload_body_bytes)
    # Browsers reach us over https only (Settings.web.behind_tls): Secure cookies and HSTS.
    behind_tls: bool = False
    # Proxies whose X-Forwarded-For names the client (Settings.web.trusted_proxies).
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.behind_tls:
            self.secure_cookies = True

    questions: QuestionSettings | None = None  # feasibility limits; None: from the settings
    # The addresses on the information pages (BRYGGA_CONTACT_*; the demo passes its examples).
    contact: ContactSettings = field(default_factory=lambda: get_settings().contact)


def routers() -> tuple[Any, ...]:
    """Every router of the app (the role walk in the tests goes through these)."""
    from brygga.web.routes import (
        access,
        admin,
        agenda,
        api,
        care,
        catalogue,
        data,
        ecosystem,
        info,
        public,
        resident,
        staff,
        steward,
        workbench,
    )

    routes = (public, catalogue, info, resident, staff, workbench, care, admin, steward, api,
              data, access, agenda, ecosystem)  # fmt: skip
    return tuple(m.router for m in routes)


LOG = logging.getLogger("brygga.web")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the server runs: the outbox delivered on a schedule (``web/notifier.py``), and,
    once at the start, the public pages' figures computed in a background thread
    (``Brygga.warm_public_pages``) so that the first visitor of /agenda does not wait."""
    brygga: Brygga = app.state.brygga
    region = app.state.config.region
    if region is not None and brygga.settings.web.warm_public_pages:
        threading.Thread(
            target=_warm,
            args=(brygga, region, app.state.templates),
            name="brygga-warm",
            daemon=True,
        ).start()
    async with notifier.lifespan(app):
        yield


def freeze_heap() -> None:
    """Exempt every object alive now from the garbage collector's scans (``gc.freeze``).

    A full collection walks every tracked object: with the app's modules, models, templates
    and the region's eligibility tables that took 160-235 ms (measured on the demo), stopping
    the event loop and the group-commit writer every 20-30 s under load (the p99 spikes of
    bench/registration.py). ``brygga serve`` calls this once the app is built, and the
    start-up warming again once it has built the public pages' long-lived figures. Frozen
    objects are never collected: fine for what lives as long as the process; objects made
    by requests are collected as before.
    """
    gc.collect()  # what is already garbage is not kept alive by freezing it
    gc.freeze()


def _warm(brygga: Brygga, region: Path, pages: Jinja2Templates) -> None:
    started = time.monotonic()
    try:
        for name in pages.env.list_templates(extensions=["html"]):
            pages.env.get_template(name)  # compiled once, before a visitor's first view
        brygga.warm_public_pages(region)
    except Exception:  # the pages compute their figures on the first view instead
        LOG.exception("warming the public pages failed")
        return
    LOG.info("public pages' figures ready in %.1f s", time.monotonic() - started)
    freeze_heap()


def create_app(config: WebConfig) -> FastAPI:
    app = FastAPI(
        title="Brygga",
        description="Resident e-service and study front door",
        dependencies=[Depends(security.check_csrf)],
        openapi_url="/api/openapi.json",
        docs_url=None,  # /api/docs is routes/api.py's: Swagger UI from the package, no CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.trusted_proxies = security.trusted_networks(config.trusted_proxies)
    app.state.templates = templates()
    app.state.pages = PageCache()  # public pages for visitors not logged in (page_cache)
    # Each resident's own pages (deps.render_own): about 20 kB a page, so some thousands of
    # residents; apart from the public pages so that residents never crowd those out.
    app.state.own_pages = PageCache(entries=8192, max_bytes=192 * 1024 * 1024)
    # The one core object: regions, engines and the disclosure policy come from it.
    app.state.brygga = Brygga(get_settings())
    app.state.eligibility = app.state.brygga.eligibility(config.region)
    app.state.questions = QuestionGuard(config.questions)  # every feasibility question
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in routers():
        app.include_router(router)
    _errors(app)

    # Added first, so it runs inside SecurityHeaders: a 413 gets the headers and a CSRF token.
    app.add_middleware(
        BodyLimit, limit=config.max_body_bytes, upload_limit=config.max_upload_body_bytes
    )
    app.add_middleware(
        SecurityHeaders, secure_cookies=config.secure_cookies, hsts=config.behind_tls
    )
    return app


class BodyTooLarge(HTTPException):
    def __init__(self, request: Request, limit: int) -> None:
        language = "en" if wants_json(request) else lang(request)  # the API speaks English
        super().__init__(413, i18n.translate("body_too_large", language).format(limit=limit))


class BodyLimit:
    """Answers 413 to a request body over the limit, before routing, log-in or parsing.

    A declared ``Content-Length`` over the limit is refused without reading a byte. A body
    without one (chunked) is counted as it is read: the read that passes the limit raises
    ``BodyTooLarge``, which the app's error handler answers (JSON error shape, or the error
    page) - so at most the limit is ever held in memory, whoever sends it.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in UPLOAD_PATHS or UPLOAD_PATTERN.fullmatch(scope["path"])
        limit = self.upload_limit if upload else self.limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            request = Request(scope, receive)
            text = BodyTooLarge(request, limit).detail
            response = error_response(request, 413, text, detail=text)
            response.headers["Connection"] = "close"  # the unread body is not worth reading
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(Request(scope), limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None


class SecurityHeaders:
    """Gives every response the security headers, and a CSRF cookie to a client without one.

    Every response but a static asset gets ``Cache-Control: no-store``: pages and API answers
    may name a resident or carry their data (``/portal``, ``/api/me``, contacts, exports), and
    neither a shared cache nor the browser's back button after log-out may keep them. Behind
    TLS (``hsts``) browsers are also told to use https only, for a year.

    The request's token is ``request.state.csrf``. A plain ASGI middleware: Starlette's
    ``@app.middleware("http")`` runs each request in an extra task with a stream in between,
    which costs more CPU than a registration itself (bench/registration.py).
    """

    HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    )

    HSTS = ("Strict-Transport-Security", "max-age=31536000")

    def __init__(self, app: ASGIApp, secure_cookies: bool = False, hsts: bool = False) -> None:
        self.app = app
        self.secure_cookies = secure_cookies
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        existing = HTTPConnection(scope).cookies.get(security.CSRF_COOKIE)
        token = existing or security.new_csrf()
        scope.setdefault("state", {})["csrf"] = token
        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if existing is None:
                    cookie = Response()
                    cookie.set_cookie(
                        security.CSRF_COOKIE, token, httponly=True, samesite="lax",
                        secure=self.secure_cookies,
                    )  # fmt: skip
                    headers.append("set-cookie", cookie.headers["set-cookie"])
                for name, value in self.HEADERS:
                    headers.setdefault(name, value)
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers.setdefault(*self.HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=HERE / "templates")  # autoescape is on for .html
    t.env.globals["t"] = i18n.translate
    t.env.globals["municipality"] = municipality_name
    t.env.globals["long_date"] = i18n.long_date
    t.env.globals["localized"] = localized  # a service's English message in the page language
    t.env.globals["number"] = number
    return t


def _errors(app: FastAPI) -> None:
    @app.exception_handler(BryggaError)
    async def brygga_error(request: Request, exc: BryggaError) -> Response:
        fields = exc.fields if isinstance(exc, FormError) else None
        # The JSON API keeps the English text, as for every error; pages get the catalogue's.
        detail = i18n.translate_error(exc, lang(request))
        return error_response(request, exc.http_status, exc.message, fields, detail)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Our own (BodyTooLarge) speak the reader's language; Starlette's are English.
        detail = str(exc.detail) if isinstance(exc, BodyTooLarge) else None
        return error_response(request, exc.status_code, str(exc.detail), detail=detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = {}
        for e in exc.errors():
            loc = [str(p) for p in e["loc"] if p not in ("body", "query", "path", "form")]
            fields.setdefault(".".join(loc) or "request", field_message(e))
        return error_response(request, 422, "invalid input", fields)
