"""Synthetic identities: personnummer, names, addresses and contact details.

Written to ``<region>.identities.parquet`` beside the region, never into it: health tables carry
only pseudonymous ``person_id``s (DESIGN.md, principle 2).

Personnummer are valid (birth date, serial with the sex digit, Luhn check digit) and unique.
They may coincide with real people's numbers, as any valid number can; phone numbers are from the
range the Swedish Post and Telecom Authority (PTS) reserves for fiction, e-mail addresses use the
reserved domain example.com, and postal codes only have the right shape.
"""

from __future__ import annotations

__all__ = ["luhn_check_digit", "make_identities", "personnummer"]

import numpy as np
import pyarrow as pa
from faker.providers.address.sv_SE import Provider as Address
from faker.providers.person.sv_SE import Provider as Person

from brygga.errors import InputError
from brygga.records import schema
from brygga.synth.targets import RegionFacts

_FIRST_F = np.array(list(Person.first_names_female))
_FIRST_M = np.array(list(Person.first_names_male))
_LAST = np.array(list(Person.last_names))
_STREET_A = np.array(list(dict.fromkeys(Address.street_prefixes)))
_STREET_B = np.array(list(dict.fromkeys(Address.street_suffixes)))
# PTS reserves 070-1740605 to 070-1740699 for use in fiction.
_PHONE_FIRST, _PHONE_COUNT = 605, 95


def luhn_check_digit(digits: np.ndarray) -> np.ndarray:
    """Check digit for rows of 9 digits (YYMMDDNNN), the personnummer's Luhn variant."""
    weights = np.array([2, 1, 2, 1, 2, 1, 2, 1, 2])
    products = digits * weights
    total = (products // 10 + products % 10).sum(axis=1)
    return (10 - total % 10) % 10


def personnummer(birth_days: np.ndarray, male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique valid 12-digit personnummer 'YYYYMMDD-NNNC' for the given birth dates and sexes."""
    n = len(birth_days)
    order = np.lexsort((male, birth_days))
    key = birth_days[order].astype(np.int64) * 2 + male[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, n])
    if sizes.max(initial=0) > 499:
        raise InputError("too many people share a birth date and sex for unique personnummer")
    rank = np.arange(n) - np.repeat(starts, sizes)
    offset = np.repeat(rng.integers(0, 499, len(starts)), sizes)
    slot = np.empty(n, np.int64)
    slot[order] = (rank + offset) % 499 + 1  # serial 000 is not valid
    serial = 2 * slot + male.astype(np.int64)  # odd third digit for men, even for women
    dates = birth_days.astype("datetime64[D]")
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    yymmdd = (year % 100) * 10000 + month * 100 + day
    digits = np.zeros((n, 9), np.int64)
    for i in range(6):
        digits[:, i] = yymmdd // 10 ** (5 - i) % 10
    digits[:, 6] = serial // 100
    digits[:, 7] = serial // 10 % 10
    digits[:, 8] = serial % 10
    check = luhn_check_digit(digits)
    number = (year * 10000 + month * 100 + day) * 10000 + serial * 10 + check
    text = number.astype(str)
    return np.char.add(
        np.char.add(np.char.ljust(text, 8)[:, None].astype("U8")[:, 0], "-"),
        np.char.zfill((number % 10000).astype(str), 4),
    )


def _ascii(names: np.ndarray) -> np.ndarray:
    table = str.maketrans("åäöéüÅÄÖÉÜ", "aaoeuAAOEU")
    return np.array([s.translate(table).lower().replace(" ", "") for s in names])


def make_identities(
    person_id: np.ndarray,
    pnr: np.ndarray,
    male: np.ndarray,
    municipality: np.ndarray,
    facts: RegionFacts,
    rng: np.random.Generator,
) -> pa.Table:
    """Names, addresses and contact details for people with these personnummer."""
    n = len(person_id)
    given = np.where(
        male,
        _FIRST_M[rng.integers(0, len(_FIRST_M), n)],
        _FIRST_F[rng.integers(0, len(_FIRST_F), n)],
    )
    family = _LAST[rng.integers(0, len(_LAST), n)]
    street = np.char.add(
        _STREET_A[rng.integers(0, len(_STREET_A), n)], _STREET_B[rng.integers(0, len(_STREET_B), n)]
    )
    address = np.char.add(np.char.add(street, " "), rng.integers(1, 120, n).astype(str))
    codes = np.array([m.code for m in facts.municipalities])
    towns = np.array([m.name for m in facts.municipalities])
    first = 2 if facts.key == "skane" else 1
    area = (municipality * 7 + rng.integers(0, 7, n)) % 90 + 10
    postal = [f"{first}{a:02d} {b:02d}" for a, b in zip(area, rng.integers(0, 100, n), strict=True)]
    phone = np.char.add("070-1740", (_PHONE_FIRST + rng.integers(0, _PHONE_COUNT, n)).astype(str))
    local = np.char.add(np.char.add(_ascii(given), "."), _ascii(family))
    email = np.char.add(np.char.add(local, (person_id % 1000).astype(str)), "@example.com")
    table = pa.table(
        {
            "person_id": person_id.astype(np.int64),
            "personnummer": pnr,
            "given_name": given,
            "family_name": family,
            "street_address": address,
            "postal_code": postal,
            "post_town": towns[municipality],
            "municipality_code": codes[municipality],
            "phone": phone,
            "email": email,
        }
    )
    return table.cast(schema.IDENTITY.arrow_schema())
