"""The FastAPI app factory: configuration, sessions, errors, templates, routers.

``create_app(WebConfig(...))`` builds an app; ``brygga serve`` runs one under uvicorn. One JSON
error shape for every JSON error (``/api/...`` or ``Accept: application/json``)::

    {"error": {"status": 422, "code": "invalid_input", "message": "...", "fields": {...}}}

HTML pages show the same message on an error page, or beside the fields of the form.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brygga.config import QuestionSettings
from brygga.errors import BryggaError
from brygga.forms import FormError
from brygga.privacy.questions import QuestionGuard
from brygga.web import i18n, security

HERE = Path(__file__).parent
CODES = {400: "bad_request", 401: "not_logged_in", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 422: "invalid_input", 429: "too_many_requests"}  # fmt: skip


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
    questions: QuestionSettings | None = None  # feasibility limits; None: from the settings


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
    app.state.login_limiter = security.RateLimiter(limit=5, window=60)  # per address+e-mail
    app.state.address_limiter = security.RateLimiter(limit=30, window=60)
    app.state.templates = templates()
    app.state.eligibility = _eligibility(config)
    app.state.questions = QuestionGuard(config.questions)  # every feasibility question
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in routers():
        app.include_router(router)
    _errors(app)

    app.add_middleware(SecurityHeaders, secure_cookies=config.secure_cookies)
    return app


class SecurityHeaders:
    """Gives every response the security headers, and a CSRF cookie to a client without one.

    The request's token is ``request.state.csrf``. A plain ASGI middleware: Starlette's
    ``@app.middleware("http")`` runs each request in an extra task with a stream in between,
    which costs more CPU than a registration itself (bench/registration.py).
    """

    HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    )

    def __init__(self, app: ASGIApp, secure_cookies: bool = False) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        existing = HTTPConnection(scope).cookies.get(security.CSRF_COOKIE)
        token = existing or security.new_csrf()
        scope.setdefault("state", {})["csrf"] = token

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
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _eligibility(config: WebConfig) -> Any:
    if config.region is None:
        return lambda _study: None  # no records: match on self-reports only
    from brygga.studies.matching import RecordsEligibility

    return RecordsEligibility(config.region)


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
    """
    from fastapi.concurrency import contextmanager_in_threadpool

    from brygga.db import session, write_session
    from brygga.db.session import writer_turn

    url = request.app.state.config.database_url
    if request.method in ("GET", "HEAD"):
        async with contextmanager_in_threadpool(session(url)) as s:
            yield s
        return
    async with writer_turn(url), contextmanager_in_threadpool(write_session(url)) as s:
        yield s


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
        message = exc.message
        if not wants_json(request):  # the JSON API keeps the English text, as for every error
            message = i18n.translate_error(exc, lang(request)) or message
        return error_response(request, exc.http_status, message, fields)

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
