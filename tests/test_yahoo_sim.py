"""End-to-end tests of YahooProvider against the simulated Yahoo chart API (finappd.sim)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from finappd.errors import SymbolNotFoundError
from finappd.providers.yahoo import YahooProvider
from finappd.sim import SimConfig, SimServer
from tests.conftest import MakeServer
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import provider_factory

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "yahoo", bars, tuple(f"T{i:02d}" for i in range(10)), "ZZZNOPE", ("NOPE", "NOPE"), key=None
)

MakeYahoo = Callable[..., YahooProvider]
WEEK = (date(2024, 3, 4), date(2024, 3, 8))  # Monday..Friday, no holidays


@pytest.fixture
async def make_yahoo() -> AsyncIterator[MakeYahoo]:
    """Build Yahoo providers for a simulator URL; close their sessions afterwards."""
    async with provider_factory(
        YahooProvider, "yahoo", rate=None, backoff=timedelta(milliseconds=5)
    ) as make:

        def factory(sim: SimServer, **overrides: Any) -> YahooProvider:
            return make(base_url=sim.url, **overrides)

        yield factory


@pytest.mark.parametrize("symbol", ["AAPL", "^GSPC", "BRK-B", "7203.T", "BHP.AX", "XSP.TO"])
async def test_a_trading_week_gives_five_local_dates(
    sim_server: MakeServer, make_yahoo: MakeYahoo, symbol: str
) -> None:
    """A Monday-Friday range gives exactly those five exchange-local trading dates."""
    sim = await sim_server()
    bars = await make_yahoo(sim).daily_bars(symbol, *WEEK)
    assert [b.ts for b in bars] == [WEEK[0] + timedelta(days=i) for i in range(5)]
    assert all(b.symbol == symbol and b.close > 0 for b in bars)


async def test_unknown_symbol_is_not_found(sim_server: MakeServer, make_yahoo: MakeYahoo) -> None:
    """The simulator's 404 'Not Found' body raises SymbolNotFoundError for that symbol."""
    sim = await sim_server()
    with pytest.raises(SymbolNotFoundError) as info:
        await make_yahoo(sim).daily_bars("ZZZNOPE", *WEEK)
    assert (info.value.symbol, info.value.status) == ("ZZZNOPE", 404)


async def test_range_before_1990_is_empty(sim_server: MakeServer, make_yahoo: MakeYahoo) -> None:
    """The simulator's 400 "Data doesn't exist" gives no bars."""
    sim = await sim_server()
    assert await make_yahoo(sim).daily_bars("AAPL", date(1985, 1, 1), date(1985, 1, 31)) == []


async def test_null_last_bar_is_skipped(sim_server: MakeServer, make_yahoo: MakeYahoo) -> None:
    """A last bar that is null in every array is left out."""
    sim = await sim_server(SimConfig(null_symbols=frozenset({"FBIIX"})))
    bars = await make_yahoo(sim).daily_bars("FBIIX", *WEEK)
    assert [b.ts for b in bars] == [WEEK[0] + timedelta(days=i) for i in range(4)]


async def test_provider_over_server_limit_recovers_from_429s(
    sim_server: MakeServer, make_yahoo: MakeYahoo
) -> None:
    """Exceeding the server's concurrency gets 429s, honoured via Retry-After, then all succeed."""
    sim = await sim_server(SimConfig(max_concurrency=1, latency=0.05, retry_after=1))
    provider = make_yahoo(sim, max_concurrency=2, retries=5)
    started = time.monotonic()
    results = await asyncio.gather(*(provider.daily_bars(f"T{i}", *WEEK) for i in range(2)))
    assert all(len(bars) == 5 for bars in results)
    assert sim.stats.rejected_429 >= 1
    # The 5 ms backoff would retry at once: only the announced Retry-After takes a second.
    assert time.monotonic() - started >= 1.0
