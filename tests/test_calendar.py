"""Tests for finappd.calendar's sessions: holidays, half days, history, DST, session arithmetic.

Each expected time is the exchange's published local time converted to UTC by hand.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from finappd.calendar import (
    EXCHANGES,
    closed_reason,
    exchange_for,
    last_closed_session,
    latest_session,
    next_close,
    prepare,
    session_bounds,
    trading_days,
)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def D(text: str) -> date:
    """A date from ISO text."""
    return date.fromisoformat(text)


#: (exchange, date, UTC open "HH:MM" or None when closed, UTC close "HH:MM"); a session
#: opening the evening before (Sydney, Auckland) has its open as "-HH:MM".
SESSIONS = [
    # United States: a regular day, the three half days, holidays.
    ("XNYS", "2025-03-10", "13:30", "20:00"),  # 09:30-16:00 EDT
    ("XNYS", "2025-03-07", "14:30", "21:00"),  # EST, before the DST change
    ("XNYS", "2025-07-03", "13:30", "17:00"),  # half day, 13:00 EDT
    ("XNYS", "2025-11-28", "14:30", "18:00"),  # day after Thanksgiving, 13:00 EST
    ("XNYS", "2025-12-24", "14:30", "18:00"),
    ("XNYS", "2025-07-04", None, None),
    ("XNAS", "2025-03-10", "13:30", "20:00"),
    ("XNAS", "2025-11-27", None, None),  # Thanksgiving
    # Canada, Brazil, Mexico
    ("XTSE", "2025-03-10", "13:30", "20:00"),
    ("XTSE", "2025-05-19", None, None),  # Victoria Day
    ("XTSE", "2025-12-24", "14:30", "18:00"),  # half day, 13:00 EST
    ("BVMF", "2025-03-04", None, None),  # Carnival Tuesday
    ("BVMF", "2025-03-10", "13:00", "21:00"),
    ("XMEX", "2025-03-17", None, None),  # Benito Juarez's birthday, observed
    ("XMEX", "2025-03-10", "14:30", "21:00"),  # 08:30-15:00 CST
    # Europe
    ("XLON", "2025-03-28", "08:00", "16:30"),  # GMT
    ("XLON", "2025-03-31", "07:00", "15:30"),  # BST
    ("XLON", "2025-12-24", "08:00", "12:30"),  # half day
    ("XLON", "2025-04-21", None, None),  # Easter Monday
    ("XPAR", "2025-03-10", "08:00", "16:30"),  # 09:00-17:30 CET
    ("XPAR", "2025-05-01", None, None),
    ("XPAR", "2025-12-24", "08:00", "13:05"),  # half day, 14:05 CET
    ("XAMS", "2025-04-21", None, None),
    ("XAMS", "2025-03-10", "08:00", "16:30"),
    ("XBRU", "2025-03-10", "08:00", "16:30"),
    ("XBRU", "2025-12-26", None, None),
    ("XLIS", "2025-06-10", "07:00", "15:30"),  # 08:00-16:30 WEST
    ("XMIL", "2025-08-15", None, None),  # Ferragosto
    ("XMIL", "2025-12-24", None, None),
    ("XSWX", "2025-08-01", None, None),  # Swiss National Day
    ("XSWX", "2025-03-10", "08:00", "16:30"),
    ("XMAD", "2025-12-24", "08:00", "13:00"),  # half day, 14:00 CET
    ("XMAD", "2025-03-10", "08:00", "16:30"),
    ("XSTO", "2025-06-06", None, None),  # National Day
    ("XSTO", "2025-06-20", None, None),  # Midsummer Eve
    ("XHEL", "2024-12-06", None, None),  # Independence Day
    ("XCSE", "2025-06-05", None, None),  # Constitution Day
    ("XOSL", "2024-05-17", None, None),  # Constitution Day
    ("XOSL", "2025-03-10", "08:00", "15:20"),  # 09:00-16:20 CET
    ("XETR", "2025-03-10", "08:00", "16:30"),
    ("XETR", "2025-12-24", None, None),
    ("XETR", "2025-12-31", None, None),
    # Asia, Middle East, Africa, Oceania
    ("XHKG", "2025-03-10", "01:30", "08:00"),  # 09:30-16:00 HKT
    ("XHKG", "2025-01-28", "01:30", "04:00"),  # Lunar New Year's Eve, half day
    ("XHKG", "2025-01-29", None, None),  # Lunar New Year
    ("XSHG", "2025-03-10", "01:30", "07:00"),  # 09:30-15:00 CST
    ("XSHG", "2025-10-01", None, None),  # National Day
    ("XSHE", "2025-10-01", None, None),  # Shenzhen keeps Shanghai's calendar
    ("XSHE", "2025-03-10", "01:30", "07:00"),
    ("XNSE", "2025-03-14", None, None),  # Holi
    ("XNSE", "2025-03-10", "03:45", "10:00"),  # 09:15-15:30 IST
    ("XBOM", "2025-03-14", None, None),
    ("XKRX", "2025-03-10", "00:00", "06:30"),  # 09:00-15:30 KST
    ("XKRX", "2025-01-02", "01:00", "06:30"),  # the year's first session opens at 10:00
    ("XKRX", "2025-01-28", None, None),  # Seollal
    ("XTAI", "2025-03-10", "01:00", "05:30"),  # 09:00-13:30
    ("XTAI", "2025-02-28", None, None),  # Peace Memorial Day
    ("XTKS", "2025-03-10", "00:00", "06:30"),  # 09:00-15:30 JST since 2024-11-05
    ("XTKS", "2024-03-11", "00:00", "06:00"),  # 15:00 before
    ("XTKS", "2025-01-03", None, None),
    ("XASX", "2025-03-10", "-23:00", "05:00"),  # 10:00-16:00 AEDT
    ("XASX", "2025-06-10", "00:00", "06:00"),  # AEST
    ("XASX", "2025-12-24", "-23:00", "03:10"),  # half day, 14:10 AEDT
    ("XASX", "2025-04-25", None, None),  # Anzac Day
    ("XNZE", "2025-02-06", None, None),  # Waitangi Day
    ("XNZE", "2025-03-10", "-21:00", "03:45"),  # 10:00-16:45 NZDT
    ("XJSE", "2025-03-21", None, None),  # Human Rights Day
    ("XJSE", "2025-03-10", "07:00", "15:00"),  # 09:00-17:00 SAST
    ("XTAE", "2025-03-09", "07:59", "13:40"),  # Sunday: Sunday-Thursday until 2026
    ("XTAE", "2025-03-14", None, None),  # Friday was the weekend
    ("XTAE", "2026-03-06", "07:59", "11:50"),  # Friday: Monday-Friday since January 2026
    ("XTAE", "2025-10-02", None, None),  # Yom Kippur
    ("XSAU", "2025-03-09", "07:00", "12:00"),  # Sunday session
    ("XSES", "2025-03-10", "01:00", "09:00"),
    # Not exchanges: whole days.
    ("CRYPTO", "2025-03-08", "00:00", "24:00"),
    ("FX", "2025-03-08", None, None),
    ("FX", "2025-12-25", "00:00", "24:00"),
]


def _instant(day: date, text: str) -> datetime:
    """``HH:MM`` on ``day`` in UTC (``-HH:MM`` the day before, ``24:00`` the next midnight)."""
    before = text.startswith("-")
    hh, mm = (int(x) for x in text.lstrip("-").split(":"))
    base = datetime.combine(day, datetime.min.time(), UTC) - timedelta(days=int(before))
    return base + timedelta(hours=hh, minutes=mm)


@pytest.mark.parametrize(("code", "day", "opens", "closes"), SESSIONS)
def test_sessions(code: str, day: str, opens: str | None, closes: str | None) -> None:
    """Each exchange's session in UTC on the day: regular, half day, holiday, DST."""
    expected = None
    if opens is not None and closes is not None:
        expected = (_instant(D(day), opens), _instant(D(day), closes))
    assert session_bounds(EXCHANGES[code], D(day)) == expected


def test_sessions_cover_twenty_exchanges() -> None:
    """The table pins sessions of at least twenty exchanges (crypto and FX not counted)."""
    assert len({code for code, *_ in SESSIONS} - {"CRYPTO", "FX"}) >= 20


@pytest.mark.parametrize(
    ("code", "closed", "open_after"),
    [
        # Hurricane Sandy: New York closed two days.
        ("XNYS", ["2012-10-29", "2012-10-30"], "2012-10-31"),
        # 11 September 2001: closed from the Tuesday, reopened Monday the 17th.
        ("XNYS", ["2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14"], "2001-09-17"),
        ("XNAS", ["2001-09-11", "2001-09-14"], "2001-09-17"),
        # National days of mourning: Reagan, Ford, G. H. W. Bush, Carter.
        ("XNYS", ["2004-06-11"], "2004-06-14"),
        ("XNYS", ["2007-01-02"], "2007-01-03"),
        ("XNYS", ["2018-12-05"], "2018-12-06"),
        ("XNYS", ["2025-01-09"], "2025-01-10"),
        # The state funeral of Queen Elizabeth II; the coronation of Charles III.
        ("XLON", ["2022-09-19"], "2022-09-20"),
        ("XLON", ["2023-05-08"], "2023-05-09"),
        # Japan's imperial transition: ten days closed around 1 May 2019.
        ("XTKS", ["2019-04-30", "2019-05-01", "2019-05-02"], "2019-05-07"),
    ],
)
def test_historical_closures(code: str, closed: list[str], open_after: str) -> None:
    """One-off closures are there as they happened, and the exchange reopens after them."""
    exchange = EXCHANGES[code]
    for day in closed:
        assert session_bounds(exchange, D(day)) is None, day
        assert closed_reason(exchange, D(day)) == "holiday"
    assert session_bounds(exchange, D(open_after)) is not None


@pytest.mark.parametrize(
    ("code", "day", "reason"),
    [
        ("XNYS", "2025-07-04", "July 4th"),
        ("XNYS", "2026-07-03", "July 4th"),  # Saturday the 4th → Friday
        ("XNYS", "2025-04-18", "Good Friday"),
        ("XNYS", "2022-12-31", "weekend"),  # New Year on Saturday: no Friday holiday
        ("XNYS", "2021-12-31", None),
        ("XNYS", "2025-03-08", "weekend"),
        ("XLON", "2025-04-21", "Easter Monday"),
        ("XLON", "2021-12-28", "Weekend Boxing Day"),  # Christmas on Saturday → Mon + Tue
        ("XTSE", "2025-05-19", "Victoria Day"),
        ("XTAE", "2025-03-14", "weekend"),  # Friday, Sunday-Thursday then
        ("XTAE", "2026-03-08", "weekend"),  # Sunday, Monday-Friday now
        ("CRYPTO", "2025-03-08", None),
        ("FX", "2025-03-08", "weekend"),
        ("FX", "2025-12-25", None),
    ],
)
def test_closed_reason(code: str, day: str, reason: str | None) -> None:
    """Weekends by each exchange's own weekmask, holidays by the calendar's names."""
    assert closed_reason(EXCHANGES[code], D(day)) == reason


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
        # Sandy: on Wednesday morning the last closed session is Friday the 26th.
        ("XNYS", utc(2012, 10, 31, 12), date(2012, 10, 26), date(2012, 10, 26)),
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
        ("XPAR", utc(2025, 12, 24, 12), timedelta(0), utc(2025, 12, 24, 13, 5)),
    ],
)
def test_next_close(code: str, after: datetime, settle: timedelta, expected: datetime) -> None:
    """The next close + settle skips weekends and holidays, follows DST and half days."""
    assert next_close(EXCHANGES[code], after, settle) == expected


def test_trading_days_and_month_end() -> None:
    """A month-end window over a weekend lists only the sessions."""
    days = trading_days(EXCHANGES["XNYS"], date(2025, 5, 29), date(2025, 6, 3))
    assert days == [date(2025, 5, 29), date(2025, 5, 30), date(2025, 6, 2), date(2025, 6, 3)]


def test_an_exchange_no_calendar_knows_trades_whole_weekdays_in_its_timezone() -> None:
    """Ho Chi Minh City (no calendar) and an unplaced ticker get the explicit weekday rule."""
    hose = exchange_for("VNM.VN")
    assert (hose.code, hose.calendar, hose.tz_name) == ("XSTC", None, "Asia/Ho_Chi_Minh")
    assert session_bounds(hose, D("2025-03-10")) == (utc(2025, 3, 9, 17), utc(2025, 3, 10, 17))
    assert closed_reason(hose, D("2025-03-08")) == "weekend"
    unknown = exchange_for("FOO.XY")
    assert (unknown.code, unknown.tz_name) == ("UNKNOWN", "UTC")
    assert session_bounds(unknown, D("2025-03-10")) == (utc(2025, 3, 10), utc(2025, 3, 11))


def test_a_year_past_the_recorded_range_is_regular_hours_on_weekdays() -> None:
    """Shanghai's holidays are recorded to 2026: 2027 is its regular hours, logged by prepare."""
    monday = session_bounds(EXCHANGES["XSHG"], D("2027-03-08"))
    assert monday == (utc(2027, 3, 8, 1, 30), utc(2027, 3, 8, 7))
    assert closed_reason(EXCHANGES["XSHG"], D("2027-03-06")) == "weekend"
    with capture_logs() as logs:
        prepare([("600519.SS", EXCHANGES["XSHG"]), ("AAPL", EXCHANGES["XNYS"])], utc(2027, 3, 8))
    beyond = [e for e in logs if e["event"] == "calendar.beyond_range"]
    assert [(e["exchange"], e["year"]) for e in beyond] == [("XSHG", 2027)]


def test_prepare_logs_each_ticker_no_calendar_knows() -> None:
    """``calendar.unknown_exchange`` names the ticker, its exchange and the rule it gets."""
    tickers = [(t, exchange_for(t)) for t in ("AAPL", "FOO.XY", "SAP.BE")]
    with capture_logs() as logs:
        prepare(tickers, utc(2025, 3, 10))
    unknown = [e for e in logs if e["event"] == "calendar.unknown_exchange"]
    assert [(e["symbol"], e["exchange"], e["timezone"]) for e in unknown] == [
        ("FOO.XY", "UNKNOWN", "UTC"),
        ("SAP.BE", "XBER", "Europe/Berlin"),
    ]
    assert all("weekdays" in e["rule"] for e in unknown)


def test_the_daemon_imports_without_the_calendar_library() -> None:
    """exchange_calendars (and pandas) load on the first session asked, not at import."""
    code = (
        "import sys, finappd.cli, finappd.scheduler, finappd.runtime, finappd.calendar\n"
        "assert 'exchange_calendars' not in sys.modules and 'pandas' not in sys.modules\n"
        "from datetime import date\n"
        "from finappd.calendar import EXCHANGES, session_bounds\n"
        "session_bounds(EXCHANGES['CRYPTO'], date(2025, 3, 8))\n"
        "assert 'pandas' not in sys.modules, 'crypto needs no calendar library'\n"
        "session_bounds(EXCHANGES['XPAR'], date(2025, 3, 10))\n"
        "assert 'exchange_calendars' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
