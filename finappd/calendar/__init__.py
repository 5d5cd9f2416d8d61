"""Trading calendars: which days an exchange trades, when its sessions open and close.

Pure functions of injected dates and tz-aware instants; nothing here reads a clock.
A daily bar's date is the exchange-local trading date (PROVIDERS.md §10.5), so every
question is asked in the exchange's own timezone.

Which exchange a ticker trades on is :mod:`finappd.calendar.exchanges` (ISO 10383 MICs,
provider names, Yahoo suffixes; never a silent New York). The sessions themselves come
from exchange_calendars (the field's standard: holidays, early closes and one-off
closures such as 2012-10-29/30, 2001-09-11..14 and the national days of mourning),
or from the explicit rules of :mod:`finappd.calendar.tables` for crypto (24/7), FX
(weekdays) and the exchanges no calendar knows (weekdays, logged
``calendar.unknown_exchange``).

The library weighs: it pulls pandas and numpy. Measured on the project's machine
(Python 3.11, exchange_calendars 4.13.2, pandas 3.0.6, two cores shared with other
jobs, so times are a range over runs): importing the daemon (``finappd.cli``,
``finappd.scheduler``, ``finappd.runtime``) takes 2.7-3.0 s and 78 MB RSS, as before,
and does not import pandas; ``import exchange_calendars`` then adds 0.9-3.3 s and
48 MB (126 MB RSS); one calendar-year builds in 0.1-1.6 s (XSHG 0.1, XPAR 0.4, XLON 0.7,
XTKS 1.0, XNYS 0.5-1.6), XTAE in 2-4 s and XKRX in 3-23 s (its lunar holidays are
recomputed over 1956-2050 at every build); nine calendars leave 131 MB RSS. Once built,
``session_bounds`` takes 3 µs and ``latest_session`` 16 µs. So the library is imported
only when a session table is first needed (a run of a crypto or non-incremental flow
never imports it), each table is built once per calendar and year and kept for the
process (:mod:`finappd.calendar.tables`), and :func:`prepare` builds a run's tables in
a worker thread before the run, so runs do not build them on the event loop (an older
year, as a gap scan may ask, is built on first use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from finappd.calendar.exchanges import (
    ALIASES,
    EXCHANGES,
    SUFFIXES,
    UNKNOWN,
    Exchange,
    exchange,
    exchange_for,
    provider_exchange,
)
from finappd.calendar.tables import year_table

__all__ = [
    "ALIASES",
    "EXCHANGES",
    "SUFFIXES",
    "UNKNOWN",
    "Exchange",
    "closed_reason",
    "describe",
    "exchange",
    "exchange_for",
    "is_trading_day",
    "last_closed_session",
    "latest_session",
    "next_close",
    "prepare",
    "previous_trading_day",
    "provider_exchange",
    "session_bounds",
    "shift_trading_days",
    "trading_days",
]

log = structlog.get_logger(__name__)


def closed_reason(exchange: Exchange, day: date) -> str | None:
    """Why ``exchange`` does not trade on ``day`` (``weekend`` or the holiday), else ``None``."""
    return year_table(exchange, day.year).closed.get(day)


def is_trading_day(exchange: Exchange, day: date) -> bool:
    """Whether ``exchange`` holds a session on ``day``."""
    return day in year_table(exchange, day.year).sessions


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
    return year_table(exchange, day.year).sessions.get(day)


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


def describe(tickers: Mapping[str, Exchange]) -> dict[str, Any]:
    """Tickers by exchange code, and each ticker no calendar knows with the rule it gets."""
    by_exchange: dict[str, list[str]] = {}
    for symbol, where in tickers.items():
        by_exchange.setdefault(where.code, []).append(symbol)
    return {
        "by_exchange": dict(sorted(by_exchange.items())),
        "no_calendar": {s: f"{e.code}: {e.rule}" for s, e in tickers.items() if e.calendar is None},
    }


def prepare(tickers: Iterable[tuple[str, Exchange]], now: datetime) -> None:
    """Build the session tables a run at ``now`` asks for; log, once per process, each
    ticker whose exchange no calendar knows (``calendar.unknown_exchange``) and each
    calendar-year past what its calendar recorded (``calendar.beyond_range``).

    Blocking (it may import and build calendars): the runtime runs it in a worker thread
    before each run that asks the calendar.
    """
    pairs = list(tickers)
    for symbol, where in pairs:
        if where.calendar is None and _first_time(("unknown", symbol, where.code)):
            log.warning(
                "calendar.unknown_exchange",
                symbol=symbol,
                exchange=where.code,
                timezone=where.tz_name,
                rule=where.rule,
            )
    years = sorted({(now + timedelta(days=d)).year for d in (-10, 0, 10)})
    for where in dict.fromkeys(e for _, e in pairs):
        for year in years:
            table = year_table(where, year)
            if not table.recorded and _first_time(("beyond", where.code, year)):
                log.warning(
                    "calendar.beyond_range",
                    exchange=where.code,
                    calendar=where.calendar,
                    year=year,
                    rule="regular hours on its trading weekdays",
                )


_LOGGED: set[tuple[str, str, str | int]] = set()


def _first_time(key: tuple[str, str, str | int]) -> bool:
    """Whether ``key`` is logged for the first time in this process (and mark it)."""
    if key in _LOGGED:
        return False
    _LOGGED.add(key)
    return True
