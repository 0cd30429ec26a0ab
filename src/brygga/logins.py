"""Log-in sessions and log-in guessing limits, kept in the operational database.

Sessions (security property 8: log-out and deactivation end sessions at once). The web's
session cookie carries only a random session id (signed); the ``web_session`` row behind it
(keyed by the id's SHA-256, so a copy of the database holds no usable session) says who the
session is for, until when, in which server mode (demo or not) and whether it was revoked.
Every request reads that row, so a revocation by any worker process takes effect at the next
request; ``revoke_all`` is what log-out, password change, deactivation and deletion call.

Guessing limits (``login_attempt``). Failed password log-ins are counted per account and per
client address, in the database, so every worker of ``brygga serve --workers`` sees the same
counts. Keys are HMACs with the server's secret key of the normalized e-mail address or the
client address: no personal data in clear, here or in the audit records that name them.

* Per account, exponential back-off: ``ACCOUNT_FREE`` failures, then each failure locks the
  account for ``ACCOUNT_BASE_SECONDS * 2**k`` (at most ``ACCOUNT_MAX_SECONDS``). Rotating
  client addresses does not help the guesser; a locked account refuses even the right password.
* Per client address, a window: ``ADDRESS_FAILURES`` failures in ``ADDRESS_WINDOW_SECONDS``
  lock the address for the rest of the window (password spraying over many accounts). When
  the client address is unknown (a trusted proxy that sent no ``X-Forwarded-For``) there is no
  address limit: counting the proxy's own address would lock every user out at once.
* Bounded: rows whose last failure is older than ``FORGET_SECONDS`` are deleted, and at most
  ``MAX_ROWS`` are kept; rows for e-mail addresses without an account go first, so a flood of
  made-up addresses cannot push a real account's back-off out.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_BASE_SECONDS",
    "ACCOUNT_FREE",
    "ACCOUNT_MAX_SECONDS",
    "ADDRESS_FAILURES",
    "ADDRESS_WINDOW_SECONDS",
    "FORGET_SECONDS",
    "MAX_ROWS",
    "SESSION_SECONDS",
    "LoginAttempt",
    "WebSession",
    "account_key",
    "address_key",
    "keyed",
    "locked_for",
    "open_session",
    "record_failure",
    "record_success",
    "revoke",
    "revoke_all",
    "who",
]

import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from brygga.db.base import Base, utcnow
from brygga.db.session import engine

SESSION_SECONDS = 8 * 3600
ACCOUNT_FREE = 5
ACCOUNT_BASE_SECONDS = 30
ACCOUNT_MAX_SECONDS = 900
ADDRESS_FAILURES = 30
ADDRESS_WINDOW_SECONDS = 600
FORGET_SECONDS = 24 * 3600
MAX_ROWS = 10_000


class WebSession(Base):
    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_kind_subject", "kind", "subject"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the id
    kind: Mapped[str] = mapped_column(String(10))  # resident | staff
    subject: Mapped[str] = mapped_column(String(64))  # resident ref or staff id
    role: Mapped[str] = mapped_column(String(20))
    demo: Mapped[bool] = mapped_column(Boolean)  # made by a --demo server: valid only there
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    __tablename__ = "login_attempt"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # "account:<hmac>", ...
    known: Mapped[bool] = mapped_column(Boolean)  # an existing account (kept longest)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- Sessions ------------------------------------------------------------------------------

_WHO = select(WebSession.role, WebSession.subject, WebSession.demo, WebSession.expires_at).where(
    WebSession.id_hash == bindparam("id_hash"), WebSession.revoked_at.is_(None)
)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(session: Session, kind: str, subject: str, role: str, *, demo: bool) -> str:
    """A new session for ``subject``; returns its id (for the cookie, never stored in clear).

    Also deletes sessions that ended more than a day ago, so the table stays small.
    """
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now - timedelta(days=1)))
    session_id = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=SESSION_SECONDS)
    row = WebSession(id_hash=_digest(session_id), kind=kind, subject=subject, role=role)
    row.demo, row.created_at, row.expires_at = demo, now, expires
    session.add(row)
    session.flush()
    return session_id


def who(url: str, session_id: str, *, demo: bool) -> tuple[str, str] | None:
    """(role, subject) of a live session of this server's mode; None if there is none.

    Every request asks, so this is one primary-key read on a plain connection with a statement
    built once (Core, no ORM session): building the statement anew cost more than running it.
    """
    with engine(url).connect() as conn:
        row = conn.execute(_WHO, {"id_hash": _digest(session_id)}).first()
    if row is None or row.demo != demo or _aware(row.expires_at) <= utcnow():
        return None
    return row.role, row.subject


def revoke(session: Session, session_id: str) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id_hash == _digest(session_id), WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_all(session: Session, kind: str, subject: str) -> int:
    """End every session of one resident or staff member at once; returns how many."""
    result = session.execute(
        update(WebSession)
        .where(
            WebSession.kind == kind,
            WebSession.subject == subject,
            WebSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; every value was written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


# --- Guessing limits -----------------------------------------------------------------------


def keyed(secret: str, kind: str, value: str) -> str:
    """``kind:`` + the first 32 hex digits of HMAC-SHA256(secret, value): stable, not reversible
    without the server's key (an e-mail address could otherwise be found by guessing)."""
    mac = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{mac[:32]}"


def account_key(secret: str, email: str) -> str:
    return keyed(secret, "account", email.strip().lower())


def address_key(secret: str, address: str) -> str:
    """IPv6 clients are counted per /64: one host usually has a whole /64 to rotate through."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return keyed(secret, "address", address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 client
            return keyed(secret, "address", str(ip.ipv4_mapped))
        return keyed(secret, "address", str(ipaddress.ip_network(f"{ip}/64", strict=False)))
    return keyed(secret, "address", str(ip))


def locked_for(session: Session, keys: list[str]) -> int:
    """Seconds until the first of ``keys`` may try again (0: none is locked).

    On SQLite the caller holds the write lock (``write_session``), so concurrent log-ins of
    every worker see each other's counts; on PostgreSQL the rows are locked for update.
    """
    now = utcnow()
    rows = session.scalars(
        select(LoginAttempt).where(LoginAttempt.key.in_(keys)).with_for_update()
    ).all()
    waits = [
        (_aware(r.locked_until) - now).total_seconds() for r in rows if r.locked_until is not None
    ]
    return max(0, int(max(waits, default=0) + 0.999))


def record_failure(
    session: Session, account: str, address: str | None, *, known: bool
) -> dict[str, int]:
    """Count one failed log-in for the account key and (if known) the address key; returns the
    account's failure count and the lock it now has, in seconds (for the audit record)."""
    now = utcnow()
    _prune(session, now)
    row = _row(session, account, known, now, forget=FORGET_SECONDS)
    row.failures += 1
    lock = 0
    if row.failures >= ACCOUNT_FREE:
        lock = min(ACCOUNT_BASE_SECONDS * 2 ** (row.failures - ACCOUNT_FREE), ACCOUNT_MAX_SECONDS)
        row.locked_until = now + timedelta(seconds=lock)
    if address is not None:
        by_address = _row(session, address, True, now, forget=ADDRESS_WINDOW_SECONDS)
        by_address.failures += 1
        if by_address.failures >= ADDRESS_FAILURES:
            window_end = _aware(by_address.first_failure_at)
            by_address.locked_until = window_end + timedelta(seconds=ADDRESS_WINDOW_SECONDS)
    session.flush()
    return {"failures": row.failures, "locked_seconds": lock}


def record_success(session: Session, account: str) -> None:
    """The right password: the account's back-off starts over (the address's does not)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == account))


def _row(session: Session, key: str, known: bool, now: datetime, forget: int) -> LoginAttempt:
    row = session.get(LoginAttempt, key)
    if row is None:
        row = LoginAttempt(
            key=key, known=known, failures=0, first_failure_at=now, last_failure_at=now
        )
        session.add(row)
    elif _aware(row.first_failure_at if key.startswith("address:") else row.last_failure_at) < (
        now - timedelta(seconds=forget)
    ):
        # A new window (address) or a long quiet spell (account): count from zero again.
        row.failures, row.first_failure_at, row.locked_until = 0, now, None
    row.last_failure_at = now
    return row


def _prune(session: Session, now: datetime) -> None:
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.last_failure_at < now - timedelta(seconds=FORGET_SECONDS),
            (LoginAttempt.locked_until.is_(None)) | (LoginAttempt.locked_until < now),
        )
    )
    excess = (session.scalar(select(func.count()).select_from(LoginAttempt)) or 0) - MAX_ROWS + 1
    if excess > 0:
        oldest = (
            select(LoginAttempt.key)
            .order_by(LoginAttempt.known, LoginAttempt.last_failure_at)
            .limit(excess)
        )
        session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(oldest)))
