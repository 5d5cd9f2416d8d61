"""Trading calendars: which days an exchange trades, when its sessions open and close.

Pure functions of injected dates and tz-aware instants; nothing here reads a clock.
A daily bar's date is the exchange-local trading date (PROVIDERS.md §10.5), so every
question is asked in the exchange's own timezone and DST is zoneinfo's business.

Why not ``exchange-calendars`` (PyPI, 4.13.2): measured in a scratch venv (Python
3.11), it pulls pandas 3.1, numpy 2.4, pyluach, korean-lunar-calendar, toolz, tzdata
and dateutil, ~165 MB installed (our whole venv is 165 MB), 0.25 s to import and
0.09 s for the first ``get_calendar("XNYS")``, 78 MB RSS after (``finappd.cli``
imports in 0.11 s at 36 MB). For six exchanges the rules fit in one small module
(``holidays.py``), each table with its source; its tests pin known years.

Exchanges: ``XNYS`` (NYSE and Nasdaq), ``XLON``, ``XTKS``, ``XASX``, ``XTSE``,
``XETR``, ``CRYPTO`` (24/7, UTC days) and ``FX`` (weekdays, UTC days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from finappd.calendar.holidays import early_closes, easter, holidays

__all__ = [
    "EXCHANGES",
    "Exchange",
    "closed_reason",
    "easter",
    "exchange_for",
    "is_trading_day",
    "last_closed_session",
    "latest_session",
    "next_close",
    "session_bounds",
    "trading_days",
]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One exchange's regular session: local timezone, open and close (``None``: 24 h)."""

    code: str
    tz_name: str
    opens: time
    closes: time | None
    weekends: bool = False

    @property
    def tz(self) -> ZoneInfo:
        """The exchange timezone."""
        return _zone(self.tz_name)


EXCHANGES: dict[str, Exchange] = {
    e.code: e
    for e in (
        Exchange("XNYS", "America/New_York", time(9, 30), time(16, 0)),
        Exchange("XLON", "Europe/London", time(8, 0), time(16, 30)),
        # TSE's afternoon session runs to 15:30 since 2024-11-05 (15:00 before).
        Exchange("XTKS", "Asia/Tokyo", time(9, 0), time(15, 30)),
        Exchange("XASX", "Australia/Sydney", time(10, 0), time(16, 0)),
        Exchange("XTSE", "America/Toronto", time(9, 30), time(16, 0)),
        Exchange("XETR", "Europe/Berlin", time(9, 0), time(17, 30)),
        Exchange("CRYPTO", "UTC", time(0, 0), None, weekends=True),
        Exchange("FX", "UTC", time(0, 0), None),
    )
}

# Yahoo-style suffixes, checked in order; anything else (and ``^`` indices) is XNYS.
_SUFFIXES = (
    (".TO", "XTSE"),
    (".AX", "XASX"),
    (".T", "XTKS"),
    (".L", "XLON"),
    (".DE", "XETR"),
    ("-USD", "CRYPTO"),
    ("=X", "FX"),
)


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def exchange_for(symbol: str, default: str = "XNYS") -> Exchange:
    """The exchange a ticker trades on, from its Yahoo suffix (``default`` for none)."""
    upper = symbol.upper()
    for suffix, code in _SUFFIXES:
        if upper.endswith(suffix):
            return EXCHANGES[code]
    return EXCHANGES[default]


def closed_reason(exchange: Exchange, day: date) -> str | None:
    """Why ``exchange`` does not trade on ``day`` (``weekend`` or the holiday), else ``None``."""
    if not exchange.weekends and day.weekday() >= 5:
        return "weekend"
    return holidays(exchange.code, day.year).get(day)


def is_trading_day(exchange: Exchange, day: date) -> bool:
    """Whether ``exchange`` holds a session on ``day``."""
    return closed_reason(exchange, day) is None


def trading_days(exchange: Exchange, start: date, end: date) -> list[date]:
    """The trading days in ``[start, end]``, oldest first."""
    days: list[date] = []
    day = start
    while day <= end:
        if is_trading_day(exchange, day):
            days.append(day)
        day += timedelta(days=1)
    return days


def previous_trading_day(exchange: Exchange, day: date) -> date:
    """The last trading day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_trading_day(exchange, day):
        day -= timedelta(days=1)
    return day


def shift_trading_days(exchange: Exchange, day: date, n: int) -> date:
    """``day`` moved back ``n`` trading days (``day`` itself counts if it trades)."""
    for _ in range(n):
        day = previous_trading_day(exchange, day)
    return day


def session_bounds(exchange: Exchange, day: date) -> tuple[datetime, datetime] | None:
    """The UTC open and close of ``day``'s session (early close applied), or ``None``."""
    if not is_trading_day(exchange, day):
        return None
    tz = exchange.tz
    opens = datetime.combine(day, exchange.opens, tz)
    closes_at = early_closes(exchange.code, day.year).get(day, exchange.closes)
    if closes_at is None:
        closes = datetime.combine(day + timedelta(days=1), time(0), tz)
    else:
        closes = datetime.combine(day, closes_at, tz)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def _local_today(exchange: Exchange, now: datetime) -> date:
    if now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: calendars only take tz-aware times")
    return now.astimezone(exchange.tz).date()


def latest_session(exchange: Exchange, now: datetime) -> date:
    """The newest trading day whose session has opened by ``now`` (a bar may exist for it)."""
    day = _local_today(exchange, now) + timedelta(days=1)
    while True:
        bounds = session_bounds(exchange, day)
        if bounds is not None and bounds[0] <= now:
            return day
        day -= timedelta(days=1)


def last_closed_session(
    exchange: Exchange, now: datetime, settle: timedelta = timedelta(0)
) -> date:
    """The newest trading day whose session closed at least ``settle`` before ``now``."""
    day = _local_today(exchange, now) + timedelta(days=1)
    while True:
        bounds = session_bounds(exchange, day)
        if bounds is not None and bounds[1] + settle <= now:
            return day
        day -= timedelta(days=1)


def next_close(exchange: Exchange, after: datetime, settle: timedelta = timedelta(0)) -> datetime:
    """The first session close + ``settle`` strictly after ``after`` (UTC)."""
    day = _local_today(exchange, after) - timedelta(days=1)
    while True:
        bounds = session_bounds(exchange, day)
        if bounds is not None and bounds[1] + settle > after:
            return bounds[1] + settle
        day += timedelta(days=1)
