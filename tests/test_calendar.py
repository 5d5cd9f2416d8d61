"""Tests for finappd.calendar: holidays, half days, DST and session arithmetic, as tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from finappd.calendar import (
    EXCHANGES,
    closed_reason,
    easter,
    exchange_for,
    last_closed_session,
    latest_session,
    next_close,
    session_bounds,
    trading_days,
)
from finappd.calendar.holidays import early_closes, holidays


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("year", "expected"),
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5))],
)
def test_easter(year: int, expected: date) -> None:
    """The computus gives the known Easter Sundays."""
    assert easter(year) == expected


@pytest.mark.parametrize(
    ("symbol", "code"),
    [
        ("AAPL", "XNYS"),
        ("^GSPC", "XNYS"),
        ("VOD.L", "XLON"),
        ("7203.T", "XTKS"),
        ("BHP.AX", "XASX"),
        ("RY.TO", "XTSE"),
        ("SAP.DE", "XETR"),
        ("BTC-USD", "CRYPTO"),
        ("EURUSD=X", "FX"),
    ],
)
def test_exchange_for_reads_the_suffix(symbol: str, code: str) -> None:
    """A ticker's Yahoo suffix names its exchange; no suffix means New York."""
    assert exchange_for(symbol).code == code


@pytest.mark.parametrize(
    ("code", "day", "reason"),
    [
        ("XNYS", date(2025, 7, 4), "Independence Day"),
        ("XNYS", date(2026, 7, 3), "Independence Day"),  # Saturday the 4th → Friday
        ("XNYS", date(2025, 4, 18), "Good Friday"),
        ("XNYS", date(2025, 11, 27), "Thanksgiving Day"),
        ("XNYS", date(2025, 1, 9), "Carter mourning"),
        ("XNYS", date(2022, 12, 31), "weekend"),  # New Year on Saturday: no Friday holiday
        ("XNYS", date(2021, 12, 31), None),
        ("XNYS", date(2025, 3, 10), None),
        ("XNYS", date(2025, 3, 8), "weekend"),
        ("XLON", date(2025, 4, 21), "Easter Monday"),
        ("XLON", date(2025, 8, 25), "Summer bank holiday"),
        ("XLON", date(2021, 12, 28), "Christmas"),  # Christmas on Saturday → Mon + Tue
        ("XLON", date(2025, 7, 4), None),
        ("XTKS", date(2025, 1, 3), "Exchange holiday"),
        ("XTKS", date(2025, 5, 6), "Substitute holiday"),
        ("XTKS", date(2025, 9, 23), "Autumnal Equinox Day"),
        ("XTKS", date(2026, 9, 22), "Citizens' holiday"),
        ("XASX", date(2025, 1, 27), "Australia Day"),
        ("XASX", date(2025, 4, 25), "Anzac Day"),
        ("XASX", date(2025, 7, 4), None),
        ("XTSE", date(2025, 5, 19), "Victoria Day"),
        ("XTSE", date(2025, 8, 4), "Civic Holiday"),
        ("CRYPTO", date(2025, 3, 8), None),
        ("FX", date(2025, 3, 8), "weekend"),
        ("FX", date(2025, 12, 25), None),
    ],
)
def test_closed_reason(code: str, day: date, reason: str | None) -> None:
    """Holidays, weekends and observed dates per exchange, from the rule tables."""
    assert closed_reason(EXCHANGES[code], day) == reason


@pytest.mark.parametrize(
    ("code", "year", "expected"),
    [
        ("XNYS", 2025, {date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)}),
        ("XNYS", 2026, {date(2026, 11, 27), date(2026, 12, 24)}),  # July 3 is the holiday
        ("XNYS", 2021, {date(2021, 11, 26)}),  # Christmas Eve is the observed holiday
        ("XLON", 2025, {date(2025, 12, 24), date(2025, 12, 31)}),
        ("XTKS", 2025, set()),
    ],
)
def test_early_closes(code: str, year: int, expected: set[date]) -> None:
    """Half days: NYSE around July 4, Thanksgiving and Christmas; London on the eves."""
    assert set(early_closes(code, year)) == expected


@pytest.mark.parametrize(
    ("code", "day", "opens", "closes"),
    [
        # New York: EST before 2025-03-09, EDT after; the UTC close moves, the local one not.
        ("XNYS", date(2025, 3, 7), utc(2025, 3, 7, 14, 30), utc(2025, 3, 7, 21)),
        ("XNYS", date(2025, 3, 10), utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20)),
        ("XNYS", date(2025, 11, 28), utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18)),
        ("XNYS", date(2025, 7, 3), utc(2025, 7, 3, 13, 30), utc(2025, 7, 3, 17)),
        # London: GMT until 2025-03-30, BST after; New York and London shift weeks apart.
        ("XLON", date(2025, 3, 28), utc(2025, 3, 28, 8), utc(2025, 3, 28, 16, 30)),
        ("XLON", date(2025, 3, 31), utc(2025, 3, 31, 7), utc(2025, 3, 31, 15, 30)),
        ("XLON", date(2025, 12, 24), utc(2025, 12, 24, 8), utc(2025, 12, 24, 12, 30)),
        # Tokyo and Sydney close before UTC midnight of the same local date.
        ("XTKS", date(2025, 3, 10), utc(2025, 3, 10, 0), utc(2025, 3, 10, 6, 30)),
        ("XASX", date(2025, 3, 10), utc(2025, 3, 9, 23), utc(2025, 3, 10, 5)),
        ("XASX", date(2025, 6, 10), utc(2025, 6, 10, 0), utc(2025, 6, 10, 6)),
        ("CRYPTO", date(2025, 3, 8), utc(2025, 3, 8), utc(2025, 3, 9)),
        ("XNYS", date(2025, 3, 8), None, None),
    ],
)
def test_session_bounds(
    code: str, day: date, opens: datetime | None, closes: datetime | None
) -> None:
    """Sessions in UTC follow each exchange's DST and half days."""
    bounds = session_bounds(EXCHANGES[code], day)
    assert bounds == (None if opens is None else (opens, closes))


@pytest.mark.parametrize(
    ("code", "now", "latest", "closed"),
    [
        # Monday 10:00 New York: Monday's session is open, Friday's is the last closed one.
        ("XNYS", utc(2025, 3, 10, 14), date(2025, 3, 10), date(2025, 3, 7)),
        ("XNYS", utc(2025, 3, 10, 20, 30), date(2025, 3, 10), date(2025, 3, 10)),
        # Saturday: nothing new since Friday's close.
        ("XNYS", utc(2025, 3, 8, 15), date(2025, 3, 7), date(2025, 3, 7)),
        # Tuesday after Easter Monday in London: Thursday 17 April is the last close.
        ("XLON", utc(2025, 4, 22, 6), date(2025, 4, 17), date(2025, 4, 17)),
        # 00:30 UTC Monday is 09:30 Monday in Tokyo: the session is Monday's.
        ("XTKS", utc(2025, 3, 10, 0, 30), date(2025, 3, 10), date(2025, 3, 7)),
        ("XTKS", utc(2025, 3, 9, 23, 30), date(2025, 3, 7), date(2025, 3, 7)),
        # 05:30 UTC Monday is 16:30 Monday in Sydney: Monday has closed.
        ("XASX", utc(2025, 3, 10, 5, 30), date(2025, 3, 10), date(2025, 3, 10)),
        # 22:00 UTC Sunday is 09:00 Monday in Sydney: before the open.
        ("XASX", utc(2025, 3, 9, 22), date(2025, 3, 7), date(2025, 3, 7)),
        ("CRYPTO", utc(2025, 3, 9, 12), date(2025, 3, 9), date(2025, 3, 8)),
    ],
)
def test_latest_and_last_closed_session(
    code: str, now: datetime, latest: date, closed: date
) -> None:
    """The newest opened and the newest closed session as of ``now``, in local dates."""
    exchange = EXCHANGES[code]
    assert latest_session(exchange, now) == latest
    assert last_closed_session(exchange, now) == closed


@pytest.mark.parametrize(
    ("code", "after", "settle", "expected"),
    [
        ("XNYS", utc(2025, 3, 7, 22), timedelta(minutes=30), utc(2025, 3, 10, 20, 30)),
        ("XNYS", utc(2025, 11, 28, 12), timedelta(0), utc(2025, 11, 28, 18)),
        ("XNYS", utc(2025, 7, 3, 18), timedelta(0), utc(2025, 7, 7, 20)),
        ("XLON", utc(2025, 3, 28, 17), timedelta(0), utc(2025, 3, 31, 15, 30)),
        ("XTKS", utc(2025, 12, 30, 7), timedelta(0), utc(2026, 1, 5, 6, 30)),
    ],
)
def test_next_close(code: str, after: datetime, settle: timedelta, expected: datetime) -> None:
    """The next close + settle skips weekends and holidays and follows DST."""
    assert next_close(EXCHANGES[code], after, settle) == expected


def test_trading_days_and_month_end() -> None:
    """A month-end window over a weekend lists only the sessions."""
    days = trading_days(EXCHANGES["XNYS"], date(2025, 5, 29), date(2025, 6, 3))
    assert days == [date(2025, 5, 29), date(2025, 5, 30), date(2025, 6, 2), date(2025, 6, 3)]


def test_holiday_names_never_fall_on_weekends() -> None:
    """Every listed holiday is a weekday, so weekend and holiday never overlap."""
    for code in EXCHANGES:
        for year in range(2020, 2031):
            assert all(d.weekday() < 5 for d in holidays(code, year))
            assert all(isinstance(t, time) for t in early_closes(code, year).values())
