"""The registered volunteers whom matching may invite, read once per run into columns.

A scheduled run compares every volunteer with every recruiting study (200,000 x 300 in the
benchmark), so the volunteers are read with one Core select into NumPy arrays, and what
matching compares is encoded for vectorized tests:

* research areas as a bitmask (no bits: every area);
* municipality and travel distance as small indices, so a study's reach is a table of
  municipalities x distances;
* the health part of the self-report as an index into the distinct ``Health`` profiles
  (volunteers share few), so the rules run once per distinct profile and criteria;
* birth date as a YYYYMMDD integer and sex as a boolean, for the demographics.
"""

from __future__ import annotations

__all__ = ["NO_PERSON", "Volunteer", "Volunteers", "load"]

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Text, and_, cast, select
from sqlalchemy.orm import Session, aliased

from brygga.registry import catalogue
from brygga.registry.areas import AREAS
from brygga.registry.models import Consent, Profile, Resident
from brygga.studies.selfreport import Health, SelfReport

NO_PERSON = -1  # person_id of a volunteer without one (never eligible on the records)


@dataclass(frozen=True)
class Volunteer:
    """One volunteer as a plain object (for callers that look at a few)."""

    resident_id: int
    person_id: int | None
    municipality: str | None
    records_consent: bool
    profile: SelfReport
    areas: frozenset[str]
    healthy_volunteer: bool
    max_travel_km: int | None
    channel: str


@dataclass
class Volunteers:
    """Registered, not paused, not deleted volunteers who consent to contact, as columns."""

    resident_id: np.ndarray  # int64, ascending
    person_id: np.ndarray  # int64, NO_PERSON when unknown
    records_consent: np.ndarray  # bool: consent to matching on the health records
    healthy: np.ndarray  # bool: offers to take part as a healthy volunteer
    areas: np.ndarray  # int64 bitmask over ``area_keys``; 0: every area
    area_keys: list[str]
    municipality: np.ndarray  # int32 index into ``municipalities``
    municipalities: list[str | None]
    travel: np.ndarray  # int32 index into ``travels``
    travels: list[int | None]  # kilometres; None: any distance
    birth: np.ndarray  # int32 YYYYMMDD
    male: np.ndarray  # bool
    health: np.ndarray  # int32 index into ``profiles``
    profiles: list[Health]
    channel: list[str]

    def __len__(self) -> int:
        return len(self.resident_id)

    def area_mask(self, area: str) -> np.ndarray:
        """Volunteers open to ``area``: it is one of theirs, or they named none."""
        if area not in self.area_keys:
            return self.areas == 0
        bit = np.int64(1) << self.area_keys.index(area)
        return (self.areas == 0) | ((self.areas & bit) != 0)

    def row(self, i: int) -> Volunteer:
        pid = int(self.person_id[i])
        b = int(self.birth[i])
        health = self.profiles[self.health[i]]
        areas = int(self.areas[i])
        municipality = self.municipalities[self.municipality[i]]
        return Volunteer(
            resident_id=int(self.resident_id[i]),
            person_id=None if pid == NO_PERSON else pid,
            municipality=municipality,
            records_consent=bool(self.records_consent[i]),
            profile=SelfReport(
                birth_date=date(b // 10000, b // 100 % 100, b % 100),
                sex="male" if self.male[i] else "female",
                municipality=municipality,
                conditions=health.conditions,
                medicines=health.medicines,
                height_cm=health.height_cm,
                weight_kg=health.weight_kg,
                smoking=health.smoking,
            ),
            areas=frozenset(k for j, k in enumerate(self.area_keys) if areas >> j & 1),
            healthy_volunteer=bool(self.healthy[i]),
            max_travel_km=self.travels[self.travel[i]],
            channel=self.channel[i],
        )

    def __iter__(self) -> Iterator[Volunteer]:
        return (self.row(i) for i in range(len(self)))


class _Codes:
    """Small integer codes for repeated values (municipalities, distances, profiles)."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.values: list[Any] = []

    def __call__(self, value: Any) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code


def _json_list(raw: Any) -> tuple:
    """A JSON list column read as text (SQLite) or already decoded (PostgreSQL)."""
    items = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(items or ())


def load(session: Session, resident_ids: list[int] | None = None) -> Volunteers:
    """Read the volunteers (optionally only some) with one select."""
    # Consents joined by (resident, kind), which is unique: with ``resident_ids`` the query
    # then reads only those residents (an IN subquery would read every contact consent).
    contact, records = aliased(Consent), aliased(Consent)
    query = (
        select(Resident.id, Resident.person_id, Resident.personnummer,
               Resident.municipality_code, records.id.is_not(None),
               cast(Profile.conditions, Text), cast(Profile.medicines, Text),
               Profile.height_cm, Profile.weight_kg, Profile.smoking,
               cast(Profile.areas, Text), Profile.healthy_volunteer, Profile.max_travel_km,
               Profile.contact_channel)
        .join(Profile, Profile.resident_id == Resident.id)
        .join(contact, and_(contact.resident_id == Resident.id,
                            contact.kind == "contact", contact.granted))
        .outerjoin(records, and_(records.resident_id == Resident.id,
                                 records.kind == "match_records", records.granted))
        .where(
            Resident.registered_at.is_not(None),
            Resident.deleted_at.is_(None),
            Resident.paused_at.is_(None),
        )
        .order_by(Resident.id)
    )  # fmt: skip
    if resident_ids is not None:
        query = query.where(Resident.id.in_(resident_ids))
    # Core, not ORM: no per-row entity processing. Columns, not rows, from here on.
    rows = session.connection().execute(query).all()
    (rid, pid, pnr, mun, rec, cond, med, height, weight, smoking, areas, healthy, travel,
     channel) = zip(*rows, strict=True) if rows else ((),) * 14  # fmt: skip
    area_bits = _Codes()
    for key in AREAS:
        area_bits(key)
    area_masks: dict[Any, int] = {}
    for raw in set(areas):
        area_masks[raw] = sum(1 << area_bits(a) for a in set(_json_list(raw)))
    # The health part of each profile, as an index into the distinct ones.
    raw_health = _Codes()
    health = [raw_health(key) for key in zip(cond, med, height, weight, smoking, strict=True)]
    memo: dict[tuple, frozenset[str]] = {}
    distinct = _Codes()  # raw keys differ by list order where the profiles do not
    remap = np.fromiter(
        (
            distinct(Health(conditions=_codes(_json_list(c), catalogue.CONDITIONS, memo),
                            medicines=_codes(_json_list(m), catalogue.MEDICINES, memo),
                            height_cm=h, weight_kg=w, smoking=smoke))
            for c, m, h, w, smoke in raw_health.values
        ),
        np.int32,
        len(raw_health.values),
    )  # fmt: skip
    municipalities, travels = _Codes(), _Codes()
    n = len(rows)
    return Volunteers(
        resident_id=np.asarray(rid, dtype=np.int64),
        person_id=np.fromiter((NO_PERSON if x is None else x for x in pid), np.int64, n),
        records_consent=np.asarray(rec, dtype=bool),
        healthy=np.asarray([bool(x) for x in healthy], dtype=bool),
        areas=np.fromiter((area_masks[x] for x in areas), np.int64, n),
        area_keys=area_bits.values,
        municipality=np.fromiter(map(municipalities, mun), np.int32, n),
        municipalities=municipalities.values,
        travel=np.fromiter(map(travels, travel), np.int32, n),
        travels=travels.values,
        # YYYYMMDD and the sex digit (odd: male) of the personnummer
        birth=np.fromiter((int(x[0:8]) for x in pnr), np.int32, n),
        male=np.fromiter((x[11] in "13579" for x in pnr), bool, n),
        health=remap[np.asarray(health, dtype=np.intp)],
        profiles=distinct.values,
        channel=list(channel),
    )


def _codes(keys: tuple, entries: dict, memo: dict) -> frozenset[str]:
    """Catalogue keys -> the codes the rules compare (memoized per distinct list)."""
    out = memo.get((id(entries), keys))
    if out is None:
        out = memo[(id(entries), keys)] = frozenset(entries[k].code for k in keys)
    return out
