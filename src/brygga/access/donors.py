"""Who has donated data: residents whose ``donate_data`` consent stands (security property 9).

Read at every use, never cached: a statistic or extract under a donation-based permit includes
exactly the people who are donors at the moment it is made, and an output made before a donor
withdrew is void (``checking``), so a withdrawal takes effect at once.
"""

from __future__ import annotations

__all__ = ["DONATION", "donor_ids", "still_donors"]

from collections.abc import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga.registry.models import Consent, Resident

DONATION = "donate_data"  # the consent kind (registry/consent.py: "may be used in research")


def donor_ids(session: Session) -> np.ndarray:
    """The region person_ids of every current donor, sorted (int64; internal use only)."""
    ids = session.scalars(
        select(Resident.person_id)
        .join(Consent, Consent.resident_id == Resident.id)
        .where(
            Consent.kind == DONATION,
            Consent.granted.is_(True),
            Resident.deleted_at.is_(None),
            Resident.registered_at.is_not(None),
            Resident.person_id.is_not(None),
        )
    ).all()
    return np.unique(np.asarray(ids, dtype=np.int64))


def still_donors(session: Session, person_ids: Iterable[int]) -> bool:
    """Whether every one of ``person_ids`` is still a donor."""
    wanted = np.unique(np.fromiter(person_ids, dtype=np.int64))
    return bool(np.isin(wanted, donor_ids(session)).all())
