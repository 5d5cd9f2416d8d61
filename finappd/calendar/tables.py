"""One year of one exchange's sessions, from exchange_calendars or an explicit rule, cached.

A :class:`YearTable` holds every session of the year (open and close in UTC, early
closes and late opens applied) and the reason for every day without one (``weekend``,
the holiday's name, or ``holiday`` for a closure the calendar does not name, such as
2012-10-29 or a lunar holiday). It is built once per calendar and year
and kept for the process, so a run asks only dictionaries.

Where the sessions come from (:attr:`Exchange.calendar`):

* an exchange_calendars name: that calendar, imported on first use (the import and
  the build happen off the event loop, in :func:`finappd.calendar.prepare`);
* ``24/7`` (crypto) and ``24/5`` (FX): every day, or weekdays, as whole days in the
  exchange's timezone (UTC for both);
* ``None``, an exchange no calendar knows: weekdays as whole days in its timezone.
  A bar is then final only after local midnight, and a weekday holiday shows as a
  ``missing`` gap rather than being skipped: slower, never wrong about a day's data.

A year outside the range a calendar's maintainers recorded (Shanghai, Bombay and
Singapore stop at 2026, Tokyo starts in 1997) is the calendar's regular hours on its
trading weekdays (``recorded`` false; :func:`finappd.calendar.prepare` logs it
``calendar.beyond_range``). Nothing here logs: config validation builds tables too,
before logging is set up.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from finappd.calendar.exchanges import Exchange

__all__ = ["YearTable", "year_table"]

Session = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class YearTable:
    """The sessions of one year (UTC open, close) and why each other day has none.

    ``recorded`` is false when some days fell outside the range the calendar's
    maintainers recorded and so are the regular-hours rule.
    """

    sessions: Mapping[date, Session]
    closed: Mapping[date, str]
    recorded: bool = True


def year_table(exchange: Exchange, year: int) -> YearTable:
    """``exchange``'s sessions in ``year`` (built on first use, then cached)."""
    if exchange.calendar is None or exchange.calendar == "24/5":
        return _whole_days(exchange.tz_name, year, every_day=False)
    if exchange.calendar == "24/7":
        return _whole_days(exchange.tz_name, year, every_day=True)
    return _calendar_year(exchange.calendar, year)


def _days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


@lru_cache(maxsize=1024)
def _whole_days(tz_name: str, year: int, *, every_day: bool) -> YearTable:
    """Whole local days as sessions: every day, or Monday to Friday."""
    tz = ZoneInfo(tz_name)
    sessions: dict[date, Session] = {}
    closed: dict[date, str] = {}
    for day in _days(year):
        if every_day or day.weekday() < 5:
            opens = datetime.combine(day, time(0), tz)
            closes = datetime.combine(day + timedelta(days=1), time(0), tz)
            sessions[day] = (opens.astimezone(UTC), closes.astimezone(UTC))
        else:
            closed[day] = "weekend"
    return YearTable(sessions, closed)


_TABLES: dict[tuple[str, int], YearTable] = {}
#: One build at a time: a second caller waits for the table instead of building it again.
_BUILD = threading.Lock()


def _calendar_year(name: str, year: int) -> YearTable:
    table = _TABLES.get((name, year))
    if table is None:
        with _BUILD:
            table = _TABLES.get((name, year))
            if table is None:
                table = _TABLES[(name, year)] = _build(name, year)
    return table


def _calendar_class(name: str) -> Any:
    """The exchange_calendars class of calendar ``name`` (imports the library: pandas)."""
    module = importlib.import_module(f"exchange_calendars.exchange_calendar_{name.lower()}")
    return getattr(module, f"{name}ExchangeCalendar")


def _in_force(times: tuple[tuple[Any, time], ...], day: date) -> time:
    """The regular time of ``day`` from a calendar's ``(start, time)`` history."""
    current = times[0][1]
    for start, at in times[1:]:
        if start.date() <= day:
            current = at
    return current


def _build(name: str, year: int) -> YearTable:
    cls = _calendar_class(name)
    days = _days(year)
    low, high = cls.bound_min(), cls.bound_max()
    start = max(days[0], low.date()) if low is not None else days[0]
    end = min(days[-1], high.date()) if high is not None else days[-1]
    sessions: dict[date, Session] = {}
    closed: dict[date, str] = {}
    inside = [d for d in days if start <= d <= end]
    if len(inside) < len(days):
        _regular_hours(cls, [d for d in days if not start <= d <= end], sessions, closed)
    if inside:
        calendar = cls(start=start.isoformat(), end=end.isoformat())
        _from_calendar(calendar, inside, sessions, closed)
    return YearTable(sessions, closed, recorded=len(inside) == len(days))


def _regular_hours(
    cls: Any, days: list[date], sessions: dict[date, Session], closed: dict[date, str]
) -> None:
    """The calendar's regular open and close on each of ``days`` its weekmask trades."""
    # Its timezone, weekmask and times are constants: read them off an instance that was
    # never built (building one is what cannot be done outside the recorded range).
    blank = cls.__new__(cls)
    tz = ZoneInfo(str(blank.tz))
    for day in days:
        if blank.weekmask[day.weekday()] != "1":
            closed[day] = "weekend"
            continue
        opens = datetime.combine(day, _in_force(blank.open_times, day), tz)
        closes = datetime.combine(day, _in_force(blank.close_times, day), tz)
        sessions[day] = (opens.astimezone(UTC), closes.astimezone(UTC))


def _from_calendar(
    cal: Any, days: list[date], sessions: dict[date, Session], closed: dict[date, str]
) -> None:
    """Every session of ``cal`` and the reason for each other day of ``days``."""
    schedule = cal.schedule
    for label, opens, closes in zip(
        schedule.index, schedule["open"], schedule["close"], strict=True
    ):
        sessions[label.date()] = (
            opens.to_pydatetime().astimezone(UTC),
            closes.to_pydatetime().astimezone(UTC),
        )
    names: dict[date, str] = {}
    if cal.regular_holidays is not None:
        found = cal.regular_holidays.holidays(days[0], days[-1], return_name=True)
        for stamp, holiday in found.items():
            names.setdefault(_day(stamp), str(holiday))
    masks = [
        (None if a is None else _day(a), None if b is None else _day(b), mask)
        for a, b, mask in getattr(cal, "special_weekmasks", None) or []
    ]
    for day in days:
        if day in sessions:
            continue
        if _weekmask(cal.weekmask, masks, day)[day.weekday()] != "1":
            closed[day] = "weekend"
        elif day in names:
            closed[day] = names[day]
        else:
            closed[day] = "holiday"


def _day(stamp: Any) -> date:
    """The date of a pandas Timestamp or a numpy datetime64 (calendars hold either)."""
    return date.fromisoformat(str(stamp)[:10])


def _weekmask(regular: str, special: list[tuple[date | None, date | None, str]], day: date) -> str:
    """The weekmask in force on ``day`` (``1111100``: Monday to Friday)."""
    for first, last, mask in special:
        if (first is None or first <= day) and (last is None or day <= last):
            return mask
    return regular
