"""Rule-based holiday and early-close tables per exchange, one function of the year each.

Why rules and not the ``exchange-calendars`` package: see ``finappd/calendar/__init__.py``.
Each table is the exchange's published rule set, with the one-off closures listed by
date; the source of each is named in its function. Rules are those in force from 2020
on; years before that get today's rules (good enough for a gap report, not a
historical reference), and one-off closures outside the lists are not known.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from functools import lru_cache

__all__ = ["early_closes", "easter", "holidays"]

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian computus, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` of the month (``n = -1``: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _nearest_weekday(day: date) -> date:
    """US federal observance: Saturday → Friday before, Sunday → Monday after."""
    if day.weekday() == SAT:
        return day - timedelta(days=1)
    if day.weekday() == SUN:
        return day + timedelta(days=1)
    return day


def _next_monday_if_weekend(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= SAT else day


def _christmas_pair(year: int) -> list[date]:
    """Christmas and Boxing Day with UK/Canada/Australia substitute days."""
    christmas = date(year, 12, 25)
    if christmas.weekday() == FRI:  # Boxing Day on Saturday → Monday 28th
        return [christmas, date(year, 12, 28)]
    if christmas.weekday() == SAT:  # both move: Monday 27th and Tuesday 28th
        return [date(year, 12, 27), date(year, 12, 28)]
    if christmas.weekday() == SUN:  # Boxing Day Monday 26th, Christmas Tuesday 27th
        return [date(year, 12, 26), date(year, 12, 27)]
    return [christmas, date(year, 12, 26)]


def _xnys(year: int) -> dict[date, str]:
    """NYSE (and Nasdaq): NYSE Rule 7.2, nyse.com/markets/hours-calendars."""
    days = {
        nth_weekday(year, 1, MON, 3): "Martin Luther King Jr. Day",
        nth_weekday(year, 2, MON, 3): "Washington's Birthday",
        easter(year) - timedelta(days=2): "Good Friday",
        nth_weekday(year, 5, MON, -1): "Memorial Day",
        _nearest_weekday(date(year, 7, 4)): "Independence Day",
        nth_weekday(year, 9, MON, 1): "Labor Day",
        nth_weekday(year, 11, THU, 4): "Thanksgiving Day",
        _nearest_weekday(date(year, 12, 25)): "Christmas Day",
    }
    # New Year's Day on a Saturday is not observed on the Friday before (NYSE rule).
    new_year = date(year, 1, 1)
    if new_year.weekday() != SAT:
        days[_next_monday_if_weekend(new_year)] = "New Year's Day"
    if year >= 2022:
        days[_nearest_weekday(date(year, 6, 19))] = "Juneteenth"
    specials = {date(2018, 12, 5): "Bush mourning", date(2025, 1, 9): "Carter mourning"}
    days.update({d: n for d, n in specials.items() if d.year == year})
    return days


def _xnys_early(year: int) -> dict[date, time]:
    """NYSE 13:00 closes: July 3 (Mon-Thu), the day after Thanksgiving, Christmas Eve (Mon-Thu)."""
    one_pm = time(13, 0)
    days = {nth_weekday(year, 11, THU, 4) + timedelta(days=1): one_pm}
    for day in (date(year, 7, 3), date(year, 12, 24)):
        if day.weekday() <= THU:
            days[day] = one_pm
    return days


def _xlon(year: int) -> dict[date, str]:
    """London Stock Exchange: England & Wales bank holidays, gov.uk/bank-holidays."""
    days = {
        _next_monday_if_weekend(date(year, 1, 1)): "New Year's Day",
        easter(year) - timedelta(days=2): "Good Friday",
        easter(year) + timedelta(days=1): "Easter Monday",
        nth_weekday(year, 5, MON, 1): "Early May bank holiday",
        nth_weekday(year, 5, MON, -1): "Spring bank holiday",
        nth_weekday(year, 8, MON, -1): "Summer bank holiday",
    }
    days.update(dict.fromkeys(_christmas_pair(year), "Christmas"))
    moved = {
        2020: ({nth_weekday(2020, 5, MON, 1)}, {date(2020, 5, 8): "VE Day"}),
        2022: (
            {nth_weekday(2022, 5, MON, -1)},
            {
                date(2022, 6, 2): "Spring bank holiday",
                date(2022, 6, 3): "Platinum Jubilee",
                date(2022, 9, 19): "State Funeral",
            },
        ),
        2023: (set(), {date(2023, 5, 8): "Coronation"}),
    }
    if year in moved:
        dropped, added = moved[year]
        for day in dropped:
            del days[day]
        days.update(added)
    return days


def _xlon_early(year: int) -> dict[date, time]:
    """LSE 12:30 closes on Christmas Eve and New Year's Eve when they are weekdays."""
    return {d: time(12, 30) for d in (date(year, 12, 24), date(year, 12, 31)) if d.weekday() <= FRI}


def _equinoxes(year: int) -> tuple[date, date]:
    """Japan's vernal and autumnal equinox days (the NAOJ formula, valid 1980-2099)."""
    shift = 0.242194 * (year - 1980) - (year - 1980) // 4
    return date(year, 3, int(20.8431 + shift)), date(year, 9, int(23.2488 + shift))


def _xtks(year: int) -> dict[date, str]:
    """Tokyo Stock Exchange: jpx.co.jp market holidays = national holidays + Dec 31-Jan 3."""
    vernal, autumnal = _equinoxes(year)
    national = {
        date(year, 1, 1): "New Year's Day",
        nth_weekday(year, 1, MON, 2): "Coming of Age Day",
        date(year, 2, 11): "National Foundation Day",
        date(year, 2, 23): "Emperor's Birthday",
        vernal: "Vernal Equinox Day",
        date(year, 4, 29): "Showa Day",
        date(year, 5, 3): "Constitution Memorial Day",
        date(year, 5, 4): "Greenery Day",
        date(year, 5, 5): "Children's Day",
        nth_weekday(year, 7, MON, 3): "Marine Day",
        date(year, 8, 11): "Mountain Day",
        nth_weekday(year, 9, MON, 3): "Respect for the Aged Day",
        autumnal: "Autumnal Equinox Day",
        nth_weekday(year, 10, MON, 2): "Sports Day",
        date(year, 11, 3): "Culture Day",
        date(year, 11, 23): "Labor Thanksgiving Day",
    }
    olympics = {  # the 2020/2021 Olympic moves of Marine, Sports and Mountain Day
        2020: [date(2020, 7, 23), date(2020, 7, 24), date(2020, 8, 10)],
        2021: [date(2021, 7, 22), date(2021, 7, 23), date(2021, 8, 9)],
    }
    if year in olympics:
        for name, day in zip(
            ("Marine Day", "Sports Day", "Mountain Day"), olympics[year], strict=True
        ):
            national = {d: n for d, n in national.items() if n != name}
            national[day] = name
    days = dict(national)
    for day in sorted(national):  # a Sunday holiday moves to the next non-holiday day
        if day.weekday() == SUN:
            substitute = day + timedelta(days=1)
            while substitute in national:
                substitute += timedelta(days=1)
            days[substitute] = "Substitute holiday"
    for day in sorted(national):  # a day between two holidays is a holiday too
        between = day + timedelta(days=1)
        if between not in days and between + timedelta(days=1) in national:
            days[between] = "Citizens' holiday"
    for day in (date(year, 1, 2), date(year, 1, 3), date(year, 12, 31)):
        days.setdefault(day, "Exchange holiday")
    return days


def _xasx(year: int) -> dict[date, str]:
    """ASX: asx.com.au trading calendar (NSW holidays the exchange closes for)."""
    days = {
        _next_monday_if_weekend(date(year, 1, 1)): "New Year's Day",
        _next_monday_if_weekend(date(year, 1, 26)): "Australia Day",
        easter(year) - timedelta(days=2): "Good Friday",
        easter(year) + timedelta(days=1): "Easter Monday",
        date(year, 4, 25): "Anzac Day",  # not moved when it falls at a weekend
        nth_weekday(year, 6, MON, 2): "King's Birthday",
    }
    days.update(dict.fromkeys(_christmas_pair(year), "Christmas"))
    return days


def _xasx_early(year: int) -> dict[date, time]:
    """ASX 14:10 closes on Christmas Eve and New Year's Eve when they are weekdays."""
    return {d: time(14, 10) for d in (date(year, 12, 24), date(year, 12, 31)) if d.weekday() <= FRI}


def _victoria_day(year: int) -> date:
    """The last Monday before May 25."""
    day = date(year, 5, 24)
    return day - timedelta(days=day.weekday())


def _xtse(year: int) -> dict[date, str]:
    """Toronto Stock Exchange: tmx.com market hours and holidays."""
    days = {
        _next_monday_if_weekend(date(year, 1, 1)): "New Year's Day",
        nth_weekday(year, 2, MON, 3): "Family Day",
        easter(year) - timedelta(days=2): "Good Friday",
        _victoria_day(year): "Victoria Day",
        _next_monday_if_weekend(date(year, 7, 1)): "Canada Day",
        nth_weekday(year, 8, MON, 1): "Civic Holiday",
        nth_weekday(year, 9, MON, 1): "Labour Day",
        nth_weekday(year, 10, MON, 2): "Thanksgiving Day",
    }
    days.update(dict.fromkeys(_christmas_pair(year), "Christmas"))
    return days


def _xtse_early(year: int) -> dict[date, time]:
    """TSX 13:00 close on Christmas Eve when it is a weekday."""
    eve = date(year, 12, 24)
    return {eve: time(13, 0)} if eve.weekday() <= FRI else {}


def _xetr(year: int) -> dict[date, str]:
    """Xetra (Frankfurt): deutsche-boerse.com trading calendar."""
    return {
        date(year, 1, 1): "New Year's Day",
        easter(year) - timedelta(days=2): "Good Friday",
        easter(year) + timedelta(days=1): "Easter Monday",
        date(year, 5, 1): "Labour Day",
        date(year, 12, 24): "Christmas Eve",
        date(year, 12, 25): "Christmas Day",
        date(year, 12, 26): "Boxing Day",
        date(year, 12, 31): "New Year's Eve",
    }


_HOLIDAYS = {"XNYS": _xnys, "XLON": _xlon, "XTKS": _xtks, "XASX": _xasx, "XTSE": _xtse}
_HOLIDAYS["XETR"] = _xetr
_EARLY = {"XNYS": _xnys_early, "XLON": _xlon_early, "XASX": _xasx_early, "XTSE": _xtse_early}


@lru_cache(maxsize=256)
def holidays(exchange: str, year: int) -> dict[date, str]:
    """Weekday closures of ``exchange`` in ``year`` (name by date); none for 24/7 or FX."""
    rule = _HOLIDAYS.get(exchange)
    if rule is None:
        return {}
    return {d: n for d, n in rule(year).items() if d.year == year and d.weekday() < SAT}


@lru_cache(maxsize=256)
def early_closes(exchange: str, year: int) -> dict[date, time]:
    """Local closing time of each half day of ``exchange`` in ``year`` that is a trading day."""
    rule = _EARLY.get(exchange)
    if rule is None:
        return {}
    closed = holidays(exchange, year)
    return {d: t for d, t in rule(year).items() if d not in closed and d.weekday() < SAT}
