"""Tests for incremental daily bars: ranges from the calendar, provisional bars, revisions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd.config import Settings
from finappd.flows.incremental import BarState, Incremental
from finappd.records import Bar
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from tests.conftest import MakeServer, one_flow

D = date.fromisoformat


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def plan(symbol: str, last: str | None, provisional: bool, now: datetime) -> Any:
    """``range_for`` of one ticker with one stored bar (or none), revision_days 3."""
    stored = {} if last is None else {symbol: (D(last), provisional)}
    incremental = Incremental(BarState(stored, {}), now, lookback_days=10, revision_days=3)
    return incremental.range_for(symbol)


@pytest.mark.parametrize(
    ("symbol", "last", "provisional", "now", "expected"),
    [
        # Saturday and Sunday after Friday's final bar: nothing can be new.
        ("AAPL", "2025-03-07", False, utc(2025, 3, 8, 15), None),
        ("AAPL", "2025-03-07", False, utc(2025, 3, 9, 23), None),
        # Monday after the close (EDT since Sunday): Monday plus three sessions back.
        ("AAPL", "2025-03-07", False, utc(2025, 3, 10, 20, 30), (D("2025-03-04"), D("2025-03-10"))),
        # Monday 09:00 New York, before the open: still nothing new.
        ("AAPL", "2025-03-07", False, utc(2025, 3, 10, 13), None),
        # Good Friday and the Easter weekend: Thursday's bar is the newest there can be.
        ("AAPL", "2025-04-17", False, utc(2025, 4, 18, 21), None),
        ("AAPL", "2025-04-17", False, utc(2025, 4, 21, 21), (D("2025-04-14"), D("2025-04-21"))),
        # A half day: the day after Thanksgiving has closed by 18:00 UTC.
        ("AAPL", "2025-11-26", False, utc(2025, 11, 28, 18, 5), (D("2025-11-21"), D("2025-11-28"))),
        # London in BST (from 2025-03-30): Monday's session opened at 07:00 UTC.
        ("VOD.L", "2025-03-28", False, utc(2025, 3, 31, 7, 30), (D("2025-03-25"), D("2025-03-31"))),
        ("VOD.L", "2025-03-28", False, utc(2025, 3, 31, 6, 30), None),
        # Tokyo: 00:30 UTC Monday is Monday 09:30 there; Sunday 23:30 UTC is before the open.
        (
            "7203.T",
            "2025-03-07",
            False,
            utc(2025, 3, 10, 0, 30),
            (D("2025-03-04"), D("2025-03-10")),
        ),
        ("7203.T", "2025-03-07", False, utc(2025, 3, 9, 23, 30), None),
        # Sydney: Sunday 23:30 UTC is Monday 10:30 there; the date is Monday's, not Sunday's.
        (
            "BHP.AX",
            "2025-03-07",
            False,
            utc(2025, 3, 9, 23, 30),
            (D("2025-03-04"), D("2025-03-10")),
        ),
        # A provisional bar is fetched again, during the session and after its close.
        ("AAPL", "2025-03-10", True, utc(2025, 3, 10, 18), (D("2025-03-05"), D("2025-03-10"))),
        ("AAPL", "2025-03-10", True, utc(2025, 3, 10, 21), (D("2025-03-05"), D("2025-03-10"))),
        # Crypto trades on Saturday; a new ticker gets the lookback window.
        ("BTC-USD", "2025-03-07", False, utc(2025, 3, 8, 12), (D("2025-03-04"), D("2025-03-08"))),
        ("AAPL", None, False, utc(2025, 3, 10, 21), (D("2025-02-28"), D("2025-03-10"))),
        # Month end over a weekend: Friday 31 January, Monday 3 February.
        ("AAPL", "2025-01-31", False, utc(2025, 2, 3, 21), (D("2025-01-28"), D("2025-02-03"))),
    ],
)
def test_range_for(
    symbol: str,
    last: str | None,
    provisional: bool,
    now: datetime,
    expected: tuple[date, date] | None,
) -> None:
    """Each ticker's request range follows its own exchange's calendar, DST and local date."""
    assert plan(symbol, last, provisional, now) == expected


def test_finish_marks_open_session_provisional_and_logs_revisions() -> None:
    """A bar of a session still open is provisional; a changed stored final close is logged."""
    closes = {("AAPL", D("2025-03-07")): (100.0, False), ("AAPL", D("2025-03-06")): (99.0, False)}
    now = utc(2025, 3, 10, 15)
    incremental = Incremental(BarState({}, closes), now, lookback_days=10, revision_days=3)
    bars = [
        Bar("AAPL", D("2025-03-06"), None, None, None, 99.0, None, None),
        Bar("AAPL", D("2025-03-07"), None, None, None, 101.0, None, None),
        Bar("AAPL", D("2025-03-10"), None, None, None, 102.0, None, None),
    ]
    with capture_logs() as logs:
        out = incremental.finish("AAPL", bars)
    assert [b.provisional for b in out] == [False, False, True]
    revised = [e for e in logs if e["event"] == "bar.revised"]
    assert revised == [
        {
            "event": "bar.revised",
            "log_level": "info",
            "symbol": "AAPL",
            "ts": "2025-03-07",
            "old_close": 100.0,
            "new_close": 101.0,
        }
    ]


def settings(tmp_path: Path, url: str, tickers: list[str]) -> Settings:
    """One Yahoo daily_bars flow against the simulator, revision window 3 days."""
    provider = {"base_url": url, "rate": "10000/minute", "backoff": "1ms"}
    db = tmp_path / "i.sqlite3"
    return one_flow(db, "yahoo", provider, tickers, lookback_days=10, revision_days=3)


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the flow's database, read-only."""
    with sqlite3.connect(f"file:{tmp_path / 'i.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


TICKERS = ["AAPL", "VOD.L", "7203.T", "BHP.AX"]


async def test_weekend_run_makes_zero_requests(tmp_path: Path, sim_server: MakeServer) -> None:
    """After Friday's final bars are stored, Saturday and Sunday runs send nothing."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    async with Runtime(settings(tmp_path, sim.url, TICKERS)) as runtime:
        first = await runtime.run_flow("eod", "manual", now=utc(2025, 3, 7, 22))
        assert (first.status, sim.stats.requests) == ("ok", len(TICKERS))
        for now in (utc(2025, 3, 8, 12), utc(2025, 3, 9, 12)):
            sim.reset()
            summary = await runtime.run_flow("eod", "manual", now=now)
            assert (summary.status, summary.tickers_ok, summary.rows_written) == ("ok", 4, 0)
            assert sim.stats.requests == 0
    newest = rows(tmp_path, "SELECT symbol, MAX(ts), provisional FROM bars GROUP BY symbol")
    assert sorted(newest) == [(s, "2025-03-07", 0) for s in sorted(TICKERS)]


async def test_provisional_bar_is_replaced_after_the_close(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Monday's bar fetched mid-session is provisional; the run after the close makes it final."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    async with Runtime(settings(tmp_path, sim.url, ["AAPL"])) as runtime:
        await runtime.run_flow("eod", "manual", now=utc(2025, 3, 7, 22))
        await runtime.run_flow("eod", "manual", now=utc(2025, 3, 10, 15))
        monday = "SELECT provisional, fetched_at FROM bars WHERE ts = '2025-03-10'"
        [(provisional, fetched_at)] = rows(tmp_path, monday)
        assert provisional == 1
        sim.reset()
        sim.config.seed = 7  # the provider's numbers for the window change too
        with capture_logs() as logs:
            await runtime.run_flow("eod", "manual", now=utc(2025, 3, 10, 20, 30))
        assert sim.stats.requests == 1
        [(provisional, refetched_at)] = rows(tmp_path, monday)
        assert (provisional, refetched_at > fetched_at) == (0, True)
        # Revised: the final bars inside the window (from 2025-03-05), not the provisional one.
        revised = sorted(e["ts"] for e in logs if e["event"] == "bar.revised")
        assert revised == ["2025-03-05", "2025-03-06", "2025-03-07"]
        sim.reset()
        await runtime.run_flow("eod", "manual", now=utc(2025, 3, 10, 23))
        assert sim.stats.requests == 0
