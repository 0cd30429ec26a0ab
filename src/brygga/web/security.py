"""Who is calling, and may they: signed session cookies, roles, CSRF, log-in rate limits.

Every route declares its roles with ``Depends(allow(...))`` (security property 6); a test walks
every route with every role. Roles: ``public`` (anyone), ``resident``, and the staff roles
``researcher``, ``research_office``, ``care_provider``, ``data_steward`` (health-data
stewards), ``strategy`` (the strategy group) and ``admin``.

Sessions live in the operational database (``brygga/logins.py``): the cookie holds only the
session's random id, HMAC-SHA256-signed with the server's mode (demo or not) and an expiry, and
every request reads the session's row, so log-out, password change and deactivation end a
session at once in every worker. A session made by a ``--demo`` server is refused elsewhere.
The caller's client address (for the log-in limits) comes from ``X-Forwarded-For`` only when the
immediate peer is a configured trusted proxy (``client_address``). CSRF uses a double-submit token: a random ``brygga_csrf`` cookie that every
unsafe request must repeat in the ``csrf_token`` form field or the ``X-CSRF-Token`` header; a
cross-site page can neither read the cookie nor set the header.
"""

from __future__ import annotations

__all__ = [
    "ANONYMOUS",
    "CSRF_COOKIE",
    "ROLES",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "STAFF_ROLES",
    "CsrfError",
    "NotLoggedIn",
    "Principal",
    "TooManyAttempts",
    "allow",
    "check_csrf",
    "client_address",
    "csrf_token",
    "new_csrf",
    "principal",
    "session_cookie",
    "session_id",
    "session_tokens",
    "sign",
    "trusted_networks",
    "unsign",
]

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from brygga import clock, logins
from brygga.db import write_session
from brygga.errors import BryggaError, PermissionDenied
from brygga.studies import models as studies_models

STAFF_ROLES = studies_models.ROLES  # one list of staff roles (studies/models.py)
ROLES = ("public", "resident", *STAFF_ROLES)
SESSION_COOKIE = "brygga_session"
CSRF_COOKIE = "brygga_csrf"
SESSION_SECONDS = logins.SESSION_SECONDS


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
    if not isinstance(payload, dict) or payload.get("exp", 0) < clock.now().timestamp():
        return None
    return payload


def session_cookie(session_id: str, secret: str, *, demo: bool) -> str:
    """The cookie value for a session made by ``logins.open_session``."""
    return sign(
        {"sid": session_id, "demo": demo, "exp": int(clock.now().timestamp()) + SESSION_SECONDS},
        secret,
    )


def session_tokens(
    who: list[Principal], secret: str, database_url: str, *, demo: bool = False
) -> list[str]:
    """Session cookies for many principals at once, without logging in: for load tests and
    benchmarks that act as thousands of residents (one transaction for all)."""
    with write_session(database_url) as s:
        ids = [
            logins.open_session(
                s, "staff" if p.role in STAFF_ROLES else "resident", p.id or "", p.role, demo=demo
            )
            for p in who
        ]
    return [session_cookie(sid, secret, demo=demo) for sid in ids]


def session_id(request: Request) -> str | None:
    """The id in the request's session cookie, if the cookie is ours, unexpired and was made
    by a server in this server's mode (demo or not); the database has the last word."""
    token = request.cookies.get(SESSION_COOKIE)
    config = request.app.state.config
    payload = unsign(token, config.secret_key) if token else None
    if payload is None or payload.get("demo") is not config.demo:
        return None
    sid = payload.get("sid")
    return sid if isinstance(sid, str) and sid else None


def principal(request: Request) -> Principal:
    """Who is calling: looked up once per request (the session's row, see ``logins``)."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    who = ANONYMOUS
    sid = session_id(request)
    if sid is not None:
        config = request.app.state.config
        found = logins.who(config.database_url, sid, demo=config.demo)
        if found is not None and found[0] in ROLES:
            who = Principal(*found)
    request.state.principal = who
    return who


def client_address(request: Request) -> str | None:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    address in ``X-Forwarded-For`` that is not a trusted proxy. None when a trusted proxy sent
    no such address (then the address is the proxy's own and says nothing about the client).
    """
    trusted = request.app.state.trusted_proxies
    peer = request.client.host if request.client else None
    if peer is None or not _within(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
    ]
    for hop in reversed(hops):  # each proxy appends the address it saw: read from the right
        if not _within(hop, trusted):
            return hop if _ip(hop) is not None else None
    return None


def trusted_networks(
    proxies: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _within(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return ip is not None and any(ip in net for net in networks)


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
