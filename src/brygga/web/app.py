"""The FastAPI app factory: configuration, sessions, errors, templates, routers.

``create_app(WebConfig(...))`` builds an app; ``brygga serve`` runs one under uvicorn. One JSON
error shape for every JSON error (``/api/...`` or ``Accept: application/json``)::

    {"error": {"status": 422, "code": "invalid_input", "message": "...", "fields": {...}}}

HTML pages show the same message on an error page, or beside the fields of the form.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brygga.config import get_settings
from brygga.db.base import MAX_ID
from brygga.db.session import session, write_session, writer_turn
from brygga.errors import BryggaError
from brygga.forms import FormError
from brygga.platform import Brygga
from brygga.web import i18n, security

HERE = Path(__file__).parent
T = TypeVar("T")
CODES = {400: "bad_request", 401: "not_logged_in", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid_input",
         429: "too_many_requests"}  # fmt: skip
# Routes taking a file upload (routes/staff.py, MAX_UPLOAD): their bodies may be up to
# ``max_upload_body_bytes``; every other body up to ``max_body_bytes``.
UPLOAD_PATHS = frozenset({"/studies", "/studies/import"})
# A record id in a path: out of range is a 422 like any invalid input (not a database overflow).
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]


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


def routers() -> tuple[Any, ...]:
    """Every router of the app (the role walk in the tests goes through these)."""
    from brygga.web.routes import admin, api, public, resident, staff

    return tuple(m.router for m in (public, resident, staff, admin, api))


def create_app(config: WebConfig) -> FastAPI:
    app = FastAPI(
        title="Brygga",
        description="Resident e-service and study front door",
        dependencies=[Depends(security.check_csrf)],
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.config = config
    app.state.trusted_proxies = security.trusted_networks(config.trusted_proxies)
    app.state.templates = templates()
    # The one core object: regions, engines and the disclosure policy come from it.
    app.state.brygga = Brygga(get_settings())
    app.state.eligibility = app.state.brygga.eligibility(config.region)
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
        limit = self.upload_limit if scope["path"] in UPLOAD_PATHS else self.limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            request = Request(scope, receive)
            response = error_response(request, 413, BodyTooLarge(request, limit).detail)
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


def platform(request: Request) -> Brygga:
    """The app's core object (``platform.Brygga``)."""
    return request.app.state.brygga


def disclosure(request: Request, *, team: bool = False) -> Any:
    """The policy for counts shown on this request (the platform chooses it)."""
    config = request.app.state.config
    return platform(request).policy(config.region, raw=config.raw_counts, team=team)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=HERE / "templates")  # autoescape is on for .html
    t.env.globals["t"] = i18n.translate
    return t


def lang(request: Request) -> str:
    value = request.cookies.get("lang", "sv")
    return value if value in i18n.LANGUAGES else "sv"


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    base = {
        "lang": lang(request),
        "csrf": request.state.csrf,
        "who": security.principal(request),
        "demo": request.app.state.config.demo,
    }
    return request.app.state.templates.TemplateResponse(
        request, name, base | (context or {}), status_code=status
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
    request: Request, status: int, message: str, fields: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        body = {"status": status, "code": CODES.get(status, "error"), "message": message}
        body["fields"] = fields or {}
        return JSONResponse({"error": body}, status_code=status)
    if status == 401:
        return Response(status_code=303, headers={"Location": "/login"})
    return render(request, "error.html", {"status": status, "message": message}, status)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(BryggaError)
    async def brygga_error(request: Request, exc: BryggaError) -> Response:
        fields = exc.fields if isinstance(exc, FormError) else None
        return error_response(request, exc.http_status, exc.message, fields)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = {}
        for e in exc.errors():
            loc = [str(p) for p in e["loc"] if p not in ("body", "query", "path", "form")]
            fields.setdefault(".".join(loc) or "request", e["msg"])
        return error_response(request, 422, "invalid input", fields)
