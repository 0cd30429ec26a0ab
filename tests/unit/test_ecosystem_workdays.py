"""Swedish public holidays and working days (the inquiries' response clocks)."""

from __future__ import annotations

from datetime import date

import pytest

from brygga.ecosystem.workdays import (
    add_working_days,
    easter_sunday,
    is_working_day,
    non_working_days,
    working_days_between,
)


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
     (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))],
)  # fmt: skip
def test_easter_sunday(year, easter):
    assert easter_sunday(year) == easter


def test_the_swedish_holidays_of_2026():
    days = non_working_days(2026)
    assert days[date(2026, 4, 3)] == "Långfredagen"
    assert days[date(2026, 4, 6)] == "Annandag påsk"
    assert days[date(2026, 5, 14)] == "Kristi himmelsfärdsdag"
    assert days[date(2026, 6, 19)] == "Midsommarafton"
    assert days[date(2026, 6, 20)] == "Midsommardagen"
    assert days[date(2026, 10, 31)] == "Alla helgons dag"
    assert len(days) == 16


def test_working_days_skip_weekends_and_holidays():
    assert not is_working_day(date(2026, 12, 24))  # Christmas Eve, a Thursday
    assert is_working_day(date(2026, 12, 23))
    # Sent Wednesday 23 December 2026 with five working days: 28, 29, 30 Dec, 4 and 5 Jan
    # (24-27 Dec, 31 Dec - 3 Jan and Epiphany off).
    assert add_working_days(date(2026, 12, 23), 5) == date(2027, 1, 5)
    # Maundy Thursday 2 April 2026 + 1: Tuesday 7 April (Good Friday, Easter, Easter Monday).
    assert add_working_days(date(2026, 4, 2), 1) == date(2026, 4, 7)
    assert add_working_days(date(2026, 3, 6), 5) == date(2026, 3, 13)  # an ordinary week
    assert working_days_between(date(2026, 12, 23), date(2027, 1, 5)) == 5
    assert working_days_between(date(2026, 3, 13), date(2026, 3, 6)) == 0
