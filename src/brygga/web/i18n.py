"""The web's view of the message catalogues (``brygga.messages``) and its language choice.

The language comes from the ``lang`` cookie (set by ``/lang/{code}``), else Swedish.
"""

from __future__ import annotations

from datetime import date, datetime

from brygga.messages import LANGUAGES, catalogue, translate, translate_error

__all__ = ["LANGUAGES", "catalogue", "long_date", "translate", "translate_error"]


def long_date(day: date | datetime | None, lang: str) -> str:
    """A date as people write it: "5 december 2026" / "5 December 2026" (month names from
    the catalogue; never ISO dates or codes on a resident's page)."""
    if day is None:
        return ""
    month = translate(f"public_month_{day.month}", lang)
    return f"{day.day} {month} {day.year}"
