"""Organizations and staff accounts: argon2 password hashes, roles.

Staff log in with a password in demo and small deployments, and through OIDC in production
(``web/auth.py``); a staff account without a password hash can only use OIDC. A new password
and a deactivation end the account's web sessions at once (``logins.revoke_all``).
"""

from __future__ import annotations

__all__ = [
    "MIN_PASSWORD",
    "OrganizationInput",
    "OwnAccount",
    "StaffInput",
    "authenticate",
    "by_identity_provider",
    "create_organization",
    "create_staff",
    "deactivate",
    "exists",
    "get",
    "set_password",
    "use_hasher",
]

from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga import audit, logins
from brygga.clock import now
from brygga.db.base import MAX_ID
from brygga.errors import InputError, PermissionDenied
from brygga.forms import FieldMessage, FormError, validate
from brygga.studies.models import Organization, StaffAccount

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB)
# Verify against this when the account does not exist, so timing does not reveal which
# e-mail addresses have accounts.
_DUMMY = _hasher.hash("not a real password")


def use_hasher(hasher: PasswordHasher) -> None:
    """Replace the hasher (tests use cheap parameters; stored hashes record their own)."""
    global _hasher, _DUMMY
    _hasher, _DUMMY = hasher, hasher.hash("not a real password")


MIN_PASSWORD = 12


class OrganizationInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=200)
    kind: Literal["company", "university", "care_unit", "region"]
    municipality_code: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    care_site_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # care units only

    @model_validator(mode="after")
    def _unit_only_for_care_units(self) -> OrganizationInput:
        if self.care_site_id is not None and self.kind != "care_unit":
            raise FormError({"care_site_id": "only a care unit has a primary-care unit"})
        return self


class StaffInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=200)
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal[
        "researcher", "research_office", "care_provider", "data_steward", "strategy", "admin"
    ]
    organization_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    password: str | None = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        local, at, domain = value.partition("@")
        if not (local and at and "." in domain) or " " in value:
            raise ValueError("must be an e-mail address")
        return value.lower()

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_PASSWORD:
            raise ValueError(
                FieldMessage("must be at least {min} characters", {"min": MIN_PASSWORD})
            )
        return value


def create_organization(session: Session, data: dict) -> Organization:
    values = validate(OrganizationInput, data)
    if session.scalar(select(Organization).where(Organization.name == values.name)):
        raise FormError({"name": "an organization with this name exists"})
    org = Organization(**values.model_dump())
    session.add(org)
    session.flush()
    return org


def create_staff(session: Session, data: dict, *, actor: str = "system") -> StaffAccount:
    values = validate(StaffInput, data)
    exists = session.scalar(select(StaffAccount).where(StaffAccount.email == values.email))
    if exists is not None:
        raise FormError({"email": "an account with this e-mail address exists"})
    if values.role in ("researcher", "care_provider") and values.organization_id is None:
        raise FormError(
            {"organization_id": "researchers and care providers belong to an organization"}
        )
    if (
        values.organization_id is not None
        and session.get(Organization, values.organization_id) is None
    ):
        raise FormError({"organization_id": "no such organization"})
    account = StaffAccount(
        email=values.email,
        display_name=values.display_name,
        role=values.role,
        organization_id=values.organization_id,
        password_hash=_hasher.hash(values.password) if values.password else None,
        created_at=now(),
    )
    session.add(account)
    session.flush()
    audit.append("staff.create", actor=actor, details={"staff": account.id, "role": account.role})
    return account


def authenticate(session: Session, email: str, password: str) -> StaffAccount:
    """The account for a correct e-mail and password; one vague error for everything else."""
    account = session.scalar(
        select(StaffAccount).where(func.lower(StaffAccount.email) == email.strip().lower())
    )
    stored = account.password_hash if account is not None and account.active else None
    try:
        _hasher.verify(stored or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        stored = None
    if stored is None or account is None:
        raise PermissionDenied("wrong e-mail address or password")
    if _hasher.check_needs_rehash(stored):
        account.password_hash = _hasher.hash(password)
    return account


def exists(session: Session, email: str) -> bool:
    """Whether an active account has this e-mail address (for the log-in limits' bookkeeping,
    never shown to the caller)."""
    account = session.scalar(
        select(StaffAccount).where(func.lower(StaffAccount.email) == email.strip().lower())
    )
    return account is not None and account.active


def set_password(
    session: Session, account: StaffAccount, password: str, *, actor: str
) -> StaffAccount:
    """A new password; every session of the account ends (whoever knew the old one is out)."""
    if len(password) < MIN_PASSWORD:
        raise FormError(
            {"password": FieldMessage("must be at least {min} characters", {"min": MIN_PASSWORD})}
        )
    if len(password) > 200:
        raise FormError({"password": "must be at most 200 characters"})
    account.password_hash = _hasher.hash(password)
    ended = logins.revoke_all(session, "staff", str(account.id))
    session.flush()
    audit.append(
        "staff.password", actor=actor, details={"staff": account.id, "sessions_ended": ended}
    )
    return account


class OwnAccount(InputError):
    """An administrator may not deactivate their own account (the last one would lock every
    administrator out); another administrator does it."""

    key = "own_account"
    params: dict[str, str] = {}  # noqa: RUF012 (read-only: the catalogue text has no fields)


def deactivate(session: Session, account: StaffAccount, *, actor: str) -> StaffAccount:
    """The account can no longer log in, and its sessions end at once."""
    if actor == f"staff:{account.id}":
        raise OwnAccount("you cannot deactivate your own account; ask another administrator")
    account.active = False
    ended = logins.revoke_all(session, "staff", str(account.id))
    session.flush()
    audit.append(
        "staff.deactivate", actor=actor, details={"staff": account.id, "sessions_ended": ended}
    )
    return account


def by_identity_provider(session: Session, email: str) -> StaffAccount:
    """The OIDC-only account (no password) whose e-mail address the identity provider vouches
    for. Accounts with a password keep using it, so an administrator decides per account
    which way it logs in; one vague error for everything else."""
    account = session.scalar(
        select(StaffAccount).where(func.lower(StaffAccount.email) == email.strip().lower())
    )
    if account is None or not account.active or account.password_hash is not None:
        raise PermissionDenied("no staff account logs in with this identity through the provider")
    return account


def get(session: Session, staff_id: int) -> StaffAccount:
    account = session.get(StaffAccount, staff_id)
    if account is None or not account.active:
        raise InputError("no such staff account")
    return account
