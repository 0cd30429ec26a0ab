"""The one clock: every question "what time / which day is it now?" in Brygga asks here.

``now()`` is an aware UTC datetime (stored timestamps, expiries, audit records); ``today()``
is the Swedish calendar day (Europe/Stockholm), which is what a resident, a study team or an
ethics number means by "today": between midnight and 01:00 or 02:00 Swedish time the UTC date
is still yesterday. Elapsed-time measurement (``time.perf_counter``) is not the clock's business.

Tests set the time with ``frozen(at)``, so code under test needs no ``today=`` parameters to be
repeatable around midnight, year ends and expiries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

__all__ = ["SWEDEN", "frozen", "now", "today"]

SWEDEN = ZoneInfo("Europe/Stockholm")

_frozen_at: datetime | None = None


def now() -> datetime:
    """The current time, aware, in UTC."""
    return _frozen_at if _frozen_at is not None else datetime.now(UTC)


def today() -> date:
    """The current calendar day in Sweden."""
    return now().astimezone(SWEDEN).date()


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Within the block, ``now()`` is ``at`` (which must be aware) and ``today()`` its Swedish
    day. For tests; nesting restores the outer time on exit.
    """
    global _frozen_at
    if at.tzinfo is None:
        raise ValueError("clock.frozen needs an aware datetime (a naive one has no instant)")
    outer, _frozen_at = _frozen_at, at.astimezone(UTC)
    try:
        yield _frozen_at
    finally:
        _frozen_at = outer
