"""The one clock (brygga/clock.py): aware UTC now, the Swedish day, frozen for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from brygga import audit, clock, identifiers
from brygga.cohort.criteria import Criteria
from brygga.db.base import utcnow
from brygga.errors import InputError


def test_now_is_aware_utc_and_today_is_the_swedish_day():
    assert clock.now().tzinfo is UTC
    # 23:30 UTC on New Year's Eve is already 00:30 on 1 January in Stockholm (CET, +1) ...
    with clock.frozen(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)):
        assert clock.today() == date(2027, 1, 1)
    # ... and 22:30 UTC on Midsummer Eve is 00:30 the next day in summer time (CEST, +2).
    with clock.frozen(datetime(2026, 6, 19, 22, 30, tzinfo=UTC)):
        assert clock.today() == date(2026, 6, 20)
    with clock.frozen(datetime(2026, 6, 19, 21, 30, tzinfo=UTC)):
        assert clock.today() == date(2026, 6, 19)


def test_frozen_converts_to_utc_nests_and_refuses_naive_times():
    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    with clock.frozen(at):
        assert clock.now() == at and clock.now().tzinfo is UTC and clock.now().hour == 11
        with clock.frozen(at + timedelta(days=1)):
            assert clock.today() == date(2026, 3, 2)
        assert clock.today() == date(2026, 3, 1)
    assert clock.now() != at  # the real time again
    with pytest.raises(ValueError, match="aware"), clock.frozen(datetime(2026, 3, 1, 12, 0)):
        pass


def test_the_domain_asks_the_clock(tmp_path, monkeypatch):
    """The column default, the audit log, the ethics-number year check and a criteria's index
    date all take the time from the one clock."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    at = datetime(2031, 12, 31, 23, 30, tzinfo=UTC)  # 1 January 2032 in Sweden
    with clock.frozen(at):
        assert utcnow() == at
        record = audit.append("clock.test", actor="test", details={})
        assert record["time"].startswith("2031-12-31T23:30:00")
        assert identifiers.ethics_number("2032-00001-01")  # this year in Sweden
        assert Criteria().effective_index_date() == date(2032, 1, 1)
    with clock.frozen(at - timedelta(hours=1)), pytest.raises(InputError, match="year"):
        identifiers.ethics_number("2032-00001-01")
