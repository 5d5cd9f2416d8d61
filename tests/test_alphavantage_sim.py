"""End-to-end tests of AlphaVantageProvider against the simulated ``/query`` API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finappd.config import ProviderSettings, Settings
from finappd.providers import make_session
from finappd.providers.alphavantage import AlphaVantageProvider, classify_payload
from finappd.providers.base import Verdict
from finappd.sim import SimConfig, synthetic_bars
from finappd.sim.alphavantage import BAD_KEY, PER_DAY, PER_SECOND, query_response
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "alphavantage", bars, tuple(f"T{i:02d}" for i in range(10)), "ZZZNOPE", ("NOPE", "NOPE")
)

DAILY_IBM = {"function": "TIME_SERIES_DAILY", "symbol": "IBM"}
NOW = datetime(2026, 1, 15, 23, 0, tzinfo=UTC).timestamp()
TICKERS = ["IBM", "BRK-B", "VOD.L", *[f"T{i:02d}" for i in range(7)]]


def make_settings(tmp_path: Path, url: str, tickers: list[str], **provider: Any) -> Settings:
    """Settings for one daily_bars flow with ``provider = "alphavantage"`` against the sim."""
    options = {"base_url": f"{url}/alphavantage", "api_key": "test-key", "rates": []}
    options |= {"backoff": "1ms", "backoff_max": "5s", **provider}
    return one_flow(tmp_path / "f.sqlite3", "alphavantage", options, tickers)


async def test_flow_lands_every_ticker_one_at_a_time(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Every ticker lands with the simulator's prices and AV's default of one in flight."""
    sim = await sim_server(SimConfig(latency=0.005))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert (sim.stats.peak_in_flight, sim.stats.requests) == (1, len(TICKERS))
    rows = query(tmp_path, "SELECT ts, close FROM bars WHERE symbol = 'BRK-B' ORDER BY ts")
    first, last = (datetime.fromisoformat(rows[i][0]).date() for i in (0, -1))
    assert rows == [(b.day.isoformat(), b.close) for b in synthetic_bars("BRK-B", first, last)]


async def test_day_limit_answer_parks_the_provider(tmp_path: Path, sim_server: MakeServer) -> None:
    """The simulator's "25 requests per day" Information parks AV after one refused request."""
    sim = await sim_server(SimConfig(provider_limits={"alphavantage": (3, 86400.0)}))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS[:6]))
    assert (summary.tickers_ok, summary.failures) == (3, {"quota_exhausted": 3})
    assert sim.stats.requests == 4


async def test_quote_and_fx_from_the_simulator(sim_server: MakeServer) -> None:
    """GLOBAL_QUOTE and FX_DAILY from the simulator parse into a Quote and daily FxRates."""
    sim = await sim_server()
    options = {"base_url": f"{sim.url}/alphavantage", "api_key": "test-key", "rates": []}
    settings = ProviderSettings.model_validate(options)
    async with make_session() as session:
        provider = AlphaVantageProvider("alphavantage", settings, session)
        quote = await provider.quote("BRK-B")
        today = datetime.now(UTC).date()
        rates = await provider.fx_rates("EUR", ["USD"], today - timedelta(days=9), today)
    assert quote.symbol == "BRK-B"
    assert quote.price > 0
    assert quote.ts <= datetime.now(UTC)
    assert len(rates) >= 6
    assert all((r.base, r.quote) == ("EUR", "USD") and r.rate > 0 for r in rates)


@pytest.mark.parametrize(
    ("query", "verdict"),
    [
        (DAILY_IBM, Verdict.OK),
        ({"function": "TIME_SERIES_DAILY", "symbol": "ZZZ"}, Verdict.NOT_FOUND),
        ({**DAILY_IBM, "outputsize": "full"}, Verdict.PLAN_GATED),
        ({"function": "TIME_SERIES_DAILY_ADJUSTED", "symbol": "IBM"}, Verdict.PLAN_GATED),
        ({"function": "GLOBAL_QUOTE", "symbol": "BRK.B"}, Verdict.OK),
        ({"function": "GLOBAL_QUOTE", "symbol": "ZZZ"}, Verdict.NOT_FOUND),
        ({"function": "FX_DAILY", "from_symbol": "EUR", "to_symbol": "USD"}, Verdict.OK),
        ({"function": "FX_DAILY", "from_symbol": "EUR", "to_symbol": "ZZZ"}, Verdict.NOT_FOUND),
        ({"function": "NOPE"}, Verdict.BAD),
    ],
)  # fmt: skip
def test_the_simulators_bodies_classify_as_alpha_vantages(
    query: dict[str, str], verdict: Verdict
) -> None:
    """Every body the simulated /query sends gets the verdict the provider gives the real one."""
    body = query_response({**query, "apikey": "k"}, SimConfig(), NOW)
    assert classify_payload(body).verdict is verdict


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        ({"Information": PER_DAY}, Verdict.QUOTA_EXHAUSTED),
        ({"Information": PER_SECOND}, Verdict.RATE_LIMITED),
        ({"Error Message": BAD_KEY}, Verdict.AUTH),
    ],
)
def test_the_simulators_refusals_classify(body: dict[str, Any], verdict: Verdict) -> None:
    """The simulator's day/burst limit texts and refused-key error classify as AV's."""
    assert classify_payload(body).verdict is verdict


def test_simulated_compact_is_100_days_newest_first() -> None:
    """Compact output holds 100 trading days, newest first, every number a string."""
    body = query_response({**DAILY_IBM, "apikey": "k"}, SimConfig(), NOW)
    days = list(body["Time Series (Daily)"])
    assert len(days) == 100
    assert days == sorted(days, reverse=True)
    assert all(isinstance(v, str) for v in body["Time Series (Daily)"][days[0]].values())
