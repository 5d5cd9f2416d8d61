"""End-to-end tests of TiingoProvider against the simulated Tiingo API (finappd.sim.tiingo)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from finappd.config import Settings
from finappd.providers.tiingo import TiingoProvider
from finappd.records import Dividend, Split
from finappd.runtime import Runtime
from finappd.sim import SimConfig, synthetic_bars
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "tiingo",
    bars,
    tuple(f"T{i:02d}" for i in range(10)),
    "ZZZNOPE",
    ("NOPE", "NOPE"),
    rides_out_short_windows=False,
)

TICKERS = ["AAPL", "BRK-B", "BRK.B", *[f"T{i:02d}" for i in range(9)]]


def make_settings(tmp_path: Path, url: str, tickers: list[str], **tiingo: Any) -> Settings:
    """Settings for one daily_bars flow with ``provider = "tiingo"`` against the simulator."""
    provider = {"base_url": url, "api_key": "test-key", "max_concurrency": 2, "rates": []}
    provider |= {"backoff": "1ms", "backoff_max": "5s", **tiingo}
    yahoo = {"yahoo": {"base_url": url, "rates": []}}
    return one_flow(tmp_path / "f.sqlite3", "tiingo", provider, tickers, yahoo)


async def test_flow_lands_every_ticker_within_the_limit(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Every ticker lands with raw close and adjClose of the synthetic series, 2 in flight."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert sim.stats.peak_in_flight <= 2
    assert sim.stats.requests == len(TICKERS)
    rows = query(
        tmp_path, "SELECT ts, close, adj_close FROM bars WHERE symbol = ? ORDER BY ts", "BRK.B"
    )
    first, last = (date.fromisoformat(rows[i][0]) for i in (0, -1))
    expected = [
        (b.day.isoformat(), b.close, b.adj_close) for b in synthetic_bars("BRK-B", first, last)
    ]
    assert rows == expected
    assert query(tmp_path, "SELECT DISTINCT provider FROM bars") == [("tiingo",)]


async def test_hourly_allocation_storm_pauses_the_provider(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Past the route's hourly window one 429 pauses Tiingo: nothing more is sent this run."""
    sim = await sim_server(SimConfig(provider_limits={"tiingo": (3, 3600.0)}))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS, max_concurrency=1, backoff_max="10ms")
    summary = await run_eod(settings)
    assert summary.tickers_ok == 3
    assert summary.failures == {"rate_limited": len(TICKERS) - 3}
    assert (sim.stats.requests, sim.stats.rejected_429) == (4, 1)


async def test_daily_allocation_parks_until_reset(tmp_path: Path, sim_server: MakeServer) -> None:
    """The HTTP 200 daily-allocation text parks Tiingo; the rest are quota_exhausted, unsent."""
    sim = await sim_server(SimConfig(provider_limits={"tiingo": (2, 86400.0)}))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS, max_concurrency=1)
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        provider = runtime.providers["tiingo"]
    assert summary.failures == {"quota_exhausted": len(TICKERS) - 2}
    assert provider.http.refusals.parked_until is not None
    assert sim.stats.requests == 3


async def test_actions_from_the_simulator(tmp_path: Path, sim_server: MakeServer) -> None:
    """AAPL's simulated 4:1 split and quarterly dividends arrive as Split and Dividend records."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url, ["AAPL"])) as runtime:
        provider = runtime.providers["tiingo"]
        assert isinstance(provider, TiingoProvider)
        dividends, splits = await provider.actions("AAPL", date(2020, 8, 1), date(2020, 11, 30))
        concurrent = await asyncio.gather(
            *(provider.actions(f"T{i}", date(2024, 1, 1), date(2024, 3, 31)) for i in range(3))
        )
    assert splits == [Split("AAPL", date(2020, 8, 31), 4.0, 1.0)]
    assert [d.ex_date for d in dividends] == [date(2020, 8, 10), date(2020, 11, 10)]
    assert all(isinstance(d, Dividend) and d.amount > 0 for d in dividends)
    assert all(len(divs) == 0 and not s for divs, s in concurrent)  # Feb 10 2024 is a Saturday
