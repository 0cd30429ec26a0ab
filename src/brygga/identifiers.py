"""Validators for the identifiers Brygga accepts: personnummer, ethics and EU CT numbers.

Each validator returns the normalized form or raises :class:`InputError` naming the field and
the expected format. Messages never repeat the value (it may be a personnummer; security
property 1).
"""

from __future__ import annotations

__all__ = [
    "ETHICS",
    "ETHICS_FIRST_YEAR",
    "EU_CT",
    "EU_CT_FIRST_YEAR",
    "birth_date",
    "ethics_number",
    "eu_ct_number",
    "personnummer",
    "sex",
]

import re
from datetime import date

from personnummer import personnummer as _pnr

from brygga import clock
from brygga.errors import InputError

# The Swedish Ethical Review Authority (Etikprövningsmyndigheten): YYYY-NNNNN-NN, e.g.
# 2024-01234-01 (year, case number, part: 01 for the application, 02.. for amendments).
ETHICS = re.compile(r"(?P<year>20[0-9]{2})-(?P<case>[0-9]{5})-(?P<part>[0-9]{2})")
# EU Clinical Trials Regulation (CTIS): YYYY-NNNNNN-NN-NN, e.g. 2024-512345-12-00.
EU_CT = re.compile(
    r"(?P<year>20[0-9]{2})-(?P<number>5[0-9]{5})-(?P<check>[0-9]{2})-(?P<seq>[0-9]{2})"
)
# The Authority started on 2019-01-01; the CTR applied from 2022-01-31 (CTIS numbers from 2022,
# though a few transitioned trials carry 2023 numbers for 2021 applications).
ETHICS_FIRST_YEAR = 2019
EU_CT_FIRST_YEAR = 2022


def personnummer(value: str, field: str = "personnummer") -> str:
    """A valid personnummer (not a coordination number) as YYYYMMDD-NNNC."""
    text = (value or "").strip()
    if not _pnr.valid(text):
        raise InputError(
            f"{field}: not a valid personnummer (write YYYYMMDD-NNNN with a correct check digit)"
        )
    parsed = _pnr.Personnummer(text)
    if parsed.is_coordination_number():
        raise InputError(f"{field}: coordination numbers are not accepted here")
    return parsed.format(long_format=True)[:8] + "-" + parsed.format(long_format=True)[8:]


def birth_date(pnr: str) -> date:
    """Birth date of a normalized personnummer (YYYYMMDD-NNNC)."""
    return date(int(pnr[0:4]), int(pnr[4:6]), int(pnr[6:8]))


def sex(pnr: str) -> str:
    """'male' or 'female' from the personnummer's sex digit (odd: male)."""
    return "male" if int(pnr[11]) % 2 else "female"


def ethics_number(value: str, field: str = "ethics_number", today: date | None = None) -> str:
    """An Etikprövningsmyndigheten diarienummer, e.g. 2024-01234-01."""
    text = (value or "").strip()
    m = ETHICS.fullmatch(text)
    if m is None:
        raise InputError(
            f"{field}: write the ethics approval number as YYYY-NNNNN-NN, e.g. 2024-01234-01"
        )
    year = int(m["year"])
    if not ETHICS_FIRST_YEAR <= year <= (today or clock.today()).year:
        raise InputError(
            f"{field}: the year must be between {ETHICS_FIRST_YEAR} (when the Swedish Ethical "
            "Review Authority started) and this year"
        )
    if int(m["case"]) == 0 or int(m["part"]) == 0:
        raise InputError(f"{field}: case number and part cannot be zero")
    return text


def eu_ct_number(value: str, field: str = "eu_ct_number", today: date | None = None) -> str:
    """An EU CT number from CTIS, e.g. 2024-512345-12-00."""
    text = (value or "").strip()
    m = EU_CT.fullmatch(text)
    if m is None:
        raise InputError(
            f"{field}: write the EU CT number as YYYY-5NNNNN-NN-NN, e.g. 2024-512345-12-00"
        )
    year = int(m["year"])
    if not EU_CT_FIRST_YEAR <= year <= (today or clock.today()).year:
        raise InputError(
            f"{field}: the year must be between {EU_CT_FIRST_YEAR} (when CTIS started) and this year"
        )
    return text
