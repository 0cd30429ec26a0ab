"""Swedish working days: the response clocks of routed inquiries count them.

Public holidays follow the Swedish law on general holidays (lag (1989:253) om allmänna
helgdagar): New Year's Day, Epiphany, Good Friday, Easter Sunday and Monday, 1 May, Ascension
Day, Whit Sunday, National Day (6 June), Midsummer Day (the Saturday 20-26 June), All Saints'
Day (the Saturday 31 October - 6 November), Christmas Day and Boxing Day. Midsummer Eve,
Christmas Eve and New Year's Eve are not holidays by law but are non-working days under the
collective agreements of the public sector and nearly everyone else, so they do not count as
working days either. Saturdays and Sundays never do.

Easter is computed with the anonymous Gregorian algorithm (Meeus/Jones/Butcher). No package of
the shared environment provides Swedish holidays.
"""

from __future__ import annotations

__all__ = [
    "add_working_days",
    "easter_sunday",
    "is_working_day",
    "non_working_days",
    "working_days_between",
]

from datetime import date, timedelta
from functools import cache


def easter_sunday(year: int) -> date:
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (the algorithm's name)
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _saturday_between(first: date) -> date:
    """The Saturday in the seven days from ``first``."""
    return first + timedelta(days=(5 - first.weekday()) % 7)


@cache
def non_working_days(year: int) -> dict[date, str]:
    """Public holidays and the three eves of ``year`` that are not working days (Swedish)."""
    easter = easter_sunday(year)
    midsummer = _saturday_between(date(year, 6, 20))
    days = {
        date(year, 1, 1): "Nyårsdagen",
        date(year, 1, 6): "Trettondedag jul",
        easter - timedelta(days=2): "Långfredagen",
        easter: "Påskdagen",
        easter + timedelta(days=1): "Annandag påsk",
        date(year, 5, 1): "Första maj",
        easter + timedelta(days=39): "Kristi himmelsfärdsdag",
        easter + timedelta(days=49): "Pingstdagen",
        date(year, 6, 6): "Sveriges nationaldag",
        midsummer - timedelta(days=1): "Midsommarafton",
        midsummer: "Midsommardagen",
        _saturday_between(date(year, 10, 31)): "Alla helgons dag",
        date(year, 12, 24): "Julafton",
        date(year, 12, 25): "Juldagen",
        date(year, 12, 26): "Annandag jul",
        date(year, 12, 31): "Nyårsafton",
    }
    return days


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in non_working_days(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count: an
    inquiry sent on a Friday with a five-day promise is due the next Friday)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day):
            days -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count
