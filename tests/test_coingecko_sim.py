"""End-to-end tests of CoinGeckoProvider against the simulated API (finappd.sim.coingecko)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from finappd.config import Settings
from finappd.runtime import Runtime
from finappd.sim import SimConfig, synthetic_bars
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "coingecko",
    bars,
    ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"),
    "zzzcoin/usd",
    ("nope/usd", "nope"),
)

TICKERS = ["BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD", "bitcoin/eur", "PEPE-USD"]


def make_settings(
    tmp_path: Path,
    url: str,
    tickers: list[str],
    fallback: tuple[str, ...] = (),
    lookback_days: int = 10,
    **gecko: Any,
) -> Settings:
    """Settings for one daily_bars flow of crypto tickers with ``provider = "coingecko"``."""
    provider: dict[str, Any] = {"base_url": f"{url}/coingecko", "api_key": "test-key"}
    provider |= {"rates": [], "max_concurrency": 2, "backoff": "1ms", "backoff_max": "5s"}
    provider |= gecko
    return one_flow(
        tmp_path / "f.sqlite3",
        "coingecko",
        provider,
        tickers,
        {"yahoo": {"base_url": url, "rates": []}},
        fallback=list(fallback),
        lookback_days=lookback_days,
        timezone="UTC",  # CoinGecko's days are UTC days
    )


async def test_flow_lands_close_only_utc_days(tmp_path: Path, sim_server: MakeServer) -> None:
    """Declared coins land close-only bars up to yesterday (UTC) equal to the synthetic closes."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert summary.tickers_ok == len(TICKERS) - 1
    assert summary.failures == {"not_found": 1}  # PEPE-USD: no coin id declared, not sent
    assert sim.stats.requests == len(TICKERS) - 1
    assert sim.stats.peak_in_flight <= 2
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    rows = query(
        tmp_path,
        "SELECT ts, open, high, low, close, adj_close FROM bars WHERE symbol = ? ORDER BY ts",
        "BTC-USD",
    )
    first = date.fromisoformat(rows[0][0])
    assert rows[-1][0] == yesterday.isoformat()
    expected = synthetic_bars("BTC-USD", first, yesterday)
    assert rows == [(b.day.isoformat(), None, None, None, b.close, None) for b in expected]


async def test_quote_is_the_current_price(tmp_path: Path, sim_server: MakeServer) -> None:
    """simple/price gives a USD quote stamped within the last minute; keyless works too."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url, ["BTC-USD"], api_key=None)) as runtime:
        quote = await runtime.providers["coingecko"].quote("ETH-USD")
    now = datetime.now(UTC)
    assert (quote.symbol, quote.currency) == ("ETH-USD", "USD")
    assert now - timedelta(seconds=61) <= quote.ts <= now
    assert quote.price > 0


async def test_history_beyond_365_days_is_plan_gated_and_falls_back(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A 400-day lookback gets error 10012 (plan_gated); with fallback Yahoo serves it."""
    sim = await sim_server()
    assert sim.url is not None
    gated = make_settings(tmp_path, sim.url, ["BTC-USD"], lookback_days=400)
    async with Runtime(gated) as runtime:
        alone = await runtime.run_flow("eod", "manual")
        assert runtime.providers["coingecko"].http.refusals.disabled is None
    assert alone.failures == {"plan_gated": 1}
    settings = make_settings(tmp_path, sim.url, ["BTC-USD"], ("yahoo",), lookback_days=400)
    summary = await run_eod(settings)
    assert (summary.status, summary.tickers_ok) == ("ok", 1)
    assert query(tmp_path, "SELECT DISTINCT provider FROM bars") == [("yahoo",)]


async def test_pro_key_on_the_demo_host_is_error_10010(sim_server: MakeServer) -> None:
    """The simulated Demo host answers a Pro key header with 401 error 10010, as CoinGecko does."""
    sim = await sim_server()
    url = f"{sim.url}/coingecko/simple/price?ids=bitcoin&vs_currencies=usd"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"x-cg-pro-api-key": "test-key"}) as response,
    ):
        body = await response.json()
    assert response.status == 401
    assert body["error"]["status"]["error_code"] == 10010
