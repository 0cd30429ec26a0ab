"""The declarative base: one ``MetaData`` with a naming convention, so that constraint names
are stable across SQLite and PostgreSQL and Alembic can alter them later."""

from __future__ import annotations

__all__ = ["MAX_ID", "NAMING_CONVENTION", "Base", "utcnow"]

from datetime import datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from brygga import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# Ids are 64-bit signed integers (SQLite INTEGER, PostgreSQL BIGINT): a larger one cannot exist,
# and SQLite's driver raises OverflowError (a 500) if asked for one. Inputs are bounded by this.
MAX_ID = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return clock.now()
