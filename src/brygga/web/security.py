"""Who is calling, and may they: signed session cookies, roles, CSRF, log-in rate limits.

Every route declares its roles with ``Depends(allow(...))`` (security property 6); a test walks
every route with every role. Roles: ``public`` (anyone), ``resident``, and the staff roles
``researcher``, ``research_office``, ``care_provider``, ``admin``.

Sessions are an HMAC-SHA256-signed cookie (no server state) holding the kind of user, their id
and an expiry. CSRF uses a double-submit token: a random ``brygga_csrf`` cookie that every
unsafe request must repeat in the ``csrf_token`` form field or the ``X-CSRF-Token`` header; a
cross-site page can neither read the cookie nor set the header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from brygga.errors import BryggaError, PermissionDenied

ROLES = ("public", "resident", "researcher", "research_office", "care_provider", "admin")
STAFF_ROLES = ("researcher", "research_office", "care_provider", "admin")
SESSION_COOKIE = "brygga_session"
CSRF_COOKIE = "brygga_csrf"
SESSION_SECONDS = 8 * 3600


class NotLoggedIn(BryggaError):
    http_status = 401


class TooManyAttempts(BryggaError):
    http_status = 429


class CsrfError(BryggaError):
    http_status = 403


@dataclass(frozen=True)
class Principal:
    role: str  # one of ROLES
    id: str | None = None  # resident ref or staff id

    @property
    def staff_id(self) -> int:
        assert self.role in STAFF_ROLES and self.id is not None
        return int(self.id)


ANONYMOUS = Principal("public")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(payload: dict[str, Any], secret: str) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def unsign(token: str, secret: str) -> dict[str, Any] | None:
    body, _, mac = token.rpartition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
        return None
    return payload


def session_token(principal: Principal, secret: str) -> str:
    return sign(
        {"role": principal.role, "id": principal.id, "exp": int(time.time()) + SESSION_SECONDS},
        secret,
    )


def principal(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return ANONYMOUS
    payload = unsign(token, request.app.state.config.secret_key)
    if payload is None or payload.get("role") not in ROLES:
        return ANONYMOUS
    return Principal(payload["role"], payload.get("id"))


def allow(*roles: str) -> Callable[[Request], Principal]:
    """A dependency that admits only ``roles`` (``public`` admits everyone)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")

    def dependency(request: Request) -> Principal:
        who = principal(request)
        if "public" in roles or who.role in roles:
            return who
        if who.role == "public":
            raise NotLoggedIn("log in to continue")
        raise PermissionDenied("your role may not use this page")

    dependency.roles = frozenset(roles)  # type: ignore[attr-defined]
    return dependency


def csrf_token(request: Request) -> str:
    """The request's CSRF token (the middleware sets the cookie if it is missing)."""
    return request.state.csrf


async def check_csrf(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get("csrf_token")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise CsrfError("the form has expired or did not come from this site; reload the page")


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


class RateLimiter:
    """At most ``limit`` attempts per key in ``window`` seconds (in process memory)."""

    def __init__(self, limit: int = 5, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                raise TooManyAttempts("too many log-in attempts; wait a minute and try again")
            hits.append(now)
