"""End-to-end tests of TwelveDataProvider against the simulated API (finappd.sim.twelvedata)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from finappd.config import Settings
from finappd.errors import SymbolNotFoundError
from finappd.providers.twelvedata import TwelveDataProvider
from finappd.runtime import Runtime
from finappd.sim import SimConfig, synthetic_bars
from finappd.sim.ecb import ecb_rate
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "twelvedata",
    bars,
    tuple(f"T{i:02d}" for i in range(10)),
    "ZZZNOPE",
    ("NOPE", "NOPE"),
    rides_out_short_windows=False,
)

TICKERS = ["AAPL", "BRK-B", "BTC-USD", "EURUSD=X", *[f"T{i:02d}" for i in range(8)]]


def make_settings(
    tmp_path: Path, url: str, tickers: list[str], fallback: tuple[str, ...] = (), **twelve: Any
) -> Settings:
    """Settings for one daily_bars flow with ``provider = "twelvedata"`` (and a fallback)."""
    provider: dict[str, Any] = {"base_url": f"{url}/twelvedata", "api_key": "test-key"}
    provider |= {"rates": [], "max_concurrency": 2, "backoff": "1ms", "backoff_max": "5s"}
    provider |= twelve
    yahoo = {"yahoo": {"base_url": url, "rates": []}}
    db = tmp_path / "f.sqlite3"
    return one_flow(db, "twelvedata", provider, tickers, yahoo, fallback=list(fallback))


async def test_flow_lands_stocks_crypto_and_fx_within_the_limit(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Stocks, a crypto and an FX pair land; BRK-B is the synthetic series; 2 in flight at most."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert sim.stats.peak_in_flight <= 2
    assert sim.stats.requests == len(TICKERS)  # one credit per ticker, no batch
    rows = query(tmp_path, "SELECT ts, close FROM bars WHERE symbol = ? ORDER BY ts", "BRK-B")
    first, last = (date.fromisoformat(rows[i][0]) for i in (0, -1))
    assert rows == [(b.day.isoformat(), b.close) for b in synthetic_bars("BRK-B", first, last)]
    fx = query(tmp_path, "SELECT ts, close, volume FROM bars WHERE symbol = 'EURUSD=X'")
    assert all(volume is None for _, _, volume in fx)
    for ts, close, _ in fx:
        assert close == pytest.approx(ecb_rate("USD", date.fromisoformat(ts)), abs=1e-5)


async def test_fx_rates_match_the_frankfurter_fixes(tmp_path: Path, sim_server: MakeServer) -> None:
    """fx_rates gives one row per weekday for each pair, at the simulated ECB fix."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url, ["AAPL"])) as runtime:
        provider = runtime.providers["twelvedata"]
        rates = await provider.fx_rates("EUR", ["USD", "JPY"], date(2024, 3, 4), date(2024, 3, 10))
    assert [(r.quote, r.day.day) for r in rates][:5] == [("USD", d) for d in range(4, 9)]
    assert len(rates) == 10
    assert rates[-1].rate == pytest.approx(ecb_rate("JPY", date(2024, 3, 8)), abs=1e-5)
    assert sim.stats.requests == 2


async def test_minute_credits_storm_pauses_the_provider(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Past the route's minute window one HTTP 200 code-429 body pauses the provider."""
    sim = await sim_server(SimConfig(provider_limits={"twelvedata": (3, 60.0)}))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS, max_concurrency=1, backoff_max="100ms")
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        provider = runtime.providers["twelvedata"]
    assert summary.tickers_ok == 3
    assert summary.failures == {"rate_limited": len(TICKERS) - 3}
    assert (sim.stats.requests, provider.http.rate_limited) == (4, 1)
    assert provider.http.pause.remaining() > 0


async def test_daily_credits_park_until_utc_midnight(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """The daily-credits body parks the provider until 00:00 UTC; the rest are not sent."""
    sim = await sim_server(SimConfig(provider_limits={"twelvedata": (2, 86400.0)}))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS, max_concurrency=1)
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        parked = runtime.providers["twelvedata"].http.refusals.parked_until
    assert summary.failures == {"quota_exhausted": len(TICKERS) - 2}
    assert sim.stats.requests == 3
    assert parked is not None
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time())
    assert abs((parked - midnight.replace(tzinfo=UTC)).total_seconds()) < 60


async def test_plan_gated_symbol_falls_back(tmp_path: Path, sim_server: MakeServer) -> None:
    """A plan-gated symbol is plan_gated alone, and lands from Yahoo with fallback."""
    sim = await sim_server()
    assert sim.url is not None
    alone = await run_eod(make_settings(tmp_path, sim.url, ["PREMX", "ZZZNOPE"]))
    assert alone.failures == {"plan_gated": 1, "not_found": 1}
    settings = make_settings(tmp_path, sim.url, ["PREMX", "AAPL"], fallback=("yahoo",))
    summary = await run_eod(settings)
    assert (summary.status, summary.tickers_ok) == ("ok", 2)
    providers = query(tmp_path, "SELECT DISTINCT symbol, provider FROM bars ORDER BY symbol")
    assert providers == [("AAPL", "twelvedata"), ("PREMX", "yahoo")]


async def test_quote_is_the_latest_synthetic_close(tmp_path: Path, sim_server: MakeServer) -> None:
    """/quote gives the last synthetic close and previous close; ZZZ symbols are not found."""
    sim = await sim_server()
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url, ["AAPL"])) as runtime:
        provider = runtime.providers["twelvedata"]
        assert isinstance(provider, TwelveDataProvider)
        quote = await provider.quote("AAPL")
        with pytest.raises(SymbolNotFoundError):
            await provider.quote("ZZZNOPE")
    today = datetime.now(ZoneInfo("America/New_York")).date()  # the exchange's date
    *_, previous, last = synthetic_bars("AAPL", today - timedelta(days=7), today)
    assert (quote.price, quote.previous_close) == (last.close, previous.close)
    assert quote.ts <= datetime.now(UTC)
