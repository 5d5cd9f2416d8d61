"""End to end against the simulator: Yahoo's pence and cents land as pounds and rand, with currency,
instruments rows, and closes converted into ``base_currency`` by the auto-fetched FX pairs."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd.config import Settings
from finappd.flows.backfill import run_backfill
from finappd.runtime import Runtime
from finappd.sim.prices import bar_on, symbol_key
from tests.conftest import MakeServer

TICKERS = ["VOD.L", "NPN.JO", "7203.T", "MC.PA", "0700.HK", "AAPL"]


def settings_for(tmp_path: Path, url: str, **extra: Any) -> Settings:
    """A Yahoo daily_bars flow ``eod`` of TICKERS and a Frankfurter ``fx`` flow of EUR/USD only."""
    fast = {"rate": "10000/minute", "backoff": "1ms", "backoff_max": "10ms"}
    return Settings.model_validate(
        {
            "store": {"path": str(tmp_path / "f.sqlite3")},
            "base_currency": "USD",
            "providers": {
                "yahoo": {"base_url": url, **fast},
                "frankfurter": {"base_url": f"{url}/frankfurter/v1", **fast},
            },
            "flows": [
                {"name": "eod", "provider": "yahoo", "tickers": TICKERS, "every": "1h"},
                {
                    "name": "fx",
                    "kind": "fx",
                    "provider": "frankfurter",
                    "tickers": ["EUR/USD"],
                    "every": "1h",
                },
            ],
        }
        | extra
    )


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the flow's database through a read-only connection, as a reader would."""
    with sqlite3.connect(f"file:{tmp_path / 'f.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def sim_close(symbol: str, day: str) -> float:
    """The close the simulator quotes for ``symbol`` on ``day``, in Yahoo's unit."""
    return bar_on(symbol_key(symbol, 0), date.fromisoformat(day)).close


async def test_latest_close_is_in_major_units_with_currency(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """latest_close: VOD.L in GBP at the pence ÷ 100, NPN.JO in ZAR at cents ÷ 100, others as is."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(settings_for(tmp_path, sim.url)) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    assert summary.status == "ok"
    rows = query(tmp_path, "SELECT symbol, ts, close, currency FROM latest_close ORDER BY symbol")
    by_symbol = {symbol: (ts, close, currency) for symbol, ts, close, currency in rows}
    assert {s: c for s, (_, _, c) in by_symbol.items()} == {
        "VOD.L": "GBP",
        "NPN.JO": "ZAR",
        "7203.T": "JPY",
        "MC.PA": "EUR",
        "0700.HK": "HKD",
        "AAPL": "USD",
    }
    for symbol, (ts, close, _) in by_symbol.items():
        divisor = 100 if symbol in ("VOD.L", "NPN.JO") else 1
        assert close == pytest.approx(sim_close(symbol, ts) / divisor, rel=1e-12), symbol
    # Every bar of a minor-unit listing was divided, not just the newest.
    [(worst,)] = query(tmp_path, "SELECT MAX(high) FROM bars WHERE symbol = 'VOD.L'")
    assert worst < 10  # the simulator's pence are 10..500+: pounds stay single digits
    instruments = query(
        tmp_path,
        "SELECT symbol, type, exchange, exchange_timezone, currency, quoted_unit, provider, "
        "name FROM instruments ORDER BY symbol",
    )
    assert ("VOD.L", "equity", "XLON", "Europe/London", "GBP", "GBp", "yahoo") in [
        r[:7] for r in instruments
    ]
    assert ("NPN.JO", "equity", "XJSE", "Africa/Johannesburg", "ZAR", "ZAc", "yahoo") in [
        r[:7] for r in instruments
    ]
    assert ("0700.HK", "equity", "XHKG", "Asia/Hong_Kong", "HKD", "HKD", "yahoo") in [
        r[:7] for r in instruments
    ]
    assert all(r[7] for r in instruments)  # the name from meta.longName


async def test_fx_flow_fetches_the_pairs_instruments_need(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """The fx flow lists EUR/USD only, yet GBP, ZAR, JPY, HKD to USD arrive; all closes convert."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(settings_for(tmp_path, sim.url)) as runtime:
        await runtime.run_flow("eod", "manual")
        summary = await runtime.run_flow("fx", "manual")
    assert summary.status == "ok"
    assert summary.tickers_total == 5
    pairs = {r for r in query(tmp_path, "SELECT DISTINCT base, quote FROM fx_rates")}
    assert pairs == {(c, "USD") for c in ("EUR", "GBP", "ZAR", "JPY", "HKD")}
    rows = query(
        tmp_path,
        "SELECT symbol, close, currency, base_currency, fx_rate, close_in_base "
        "FROM latest_close_in_base ORDER BY symbol",
    )
    assert len(rows) == len(TICKERS)
    for symbol, close, currency, base, rate, in_base in rows:
        assert base == "USD"
        assert rate is not None, symbol
        assert in_base == pytest.approx(close * rate)
        if currency == "USD":
            assert rate == 1.0
    # Every daily close converts: weekends and holidays take the last published rate.
    [(missing,)] = query(tmp_path, "SELECT COUNT(*) FROM closes_in_base WHERE fx_rate IS NULL")
    assert missing == 0


async def test_a_backfill_stores_pounds_and_one_row_per_ticker(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Backfilled VOD.L history is in GBP, and instruments has VOD.L, never a chunk's name."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(settings_for(tmp_path, sim.url)) as runtime:
        provider = runtime.providers["yahoo"]
        setattr(provider, "max_range_days", 20)  # noqa: B010 - a ClassVar, narrowed per test
        summary = await run_backfill(
            flow="eod",
            kind="daily_bars",
            tickers=["VOD.L", "ZZZGONE"],
            start=date(2024, 1, 1),
            end=date(2024, 2, 29),
            providers=[provider],
            store=runtime.store,
            writer=runtime.writer,
            num_workers=2,
        )
    assert summary.status == "partial"
    rows = query(tmp_path, "SELECT ts, close, currency FROM bars WHERE symbol = 'VOD.L'")
    assert len(rows) > 30
    for ts, close, currency in rows:
        assert (close, currency) == (pytest.approx(sim_close("VOD.L", ts) / 100), "GBP")
    # Chunks are not runs of a ticker: nothing counts towards delisting.
    assert query(tmp_path, "SELECT symbol, not_found_runs FROM instruments") == [("VOD.L", 0)]


async def test_refetched_pence_are_no_revision(tmp_path: Path, sim_server: MakeServer) -> None:
    """A second run re-fetching VOD.L's revision window in pence logs no bar.revised: the
    stored pounds are compared in pounds."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(settings_for(tmp_path, sim.url)) as runtime:
        await runtime.run_flow("eod", "manual")
        before = sim.stats.requests
        with capture_logs() as logs:
            await runtime.run_flow("eod", "manual")
    assert sim.stats.requests > before  # the revision window was asked again
    assert [e for e in logs if e["event"] == "bar.revised"] == []
