"""End-to-end tests of FinnhubProvider against the simulated Finnhub API (finappd.sim.finnhub)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from finappd.config import Settings
from finappd.errors import SymbolNotFoundError
from finappd.providers.base import Verdict
from finappd.providers.finnhub import (
    FinnhubProvider,
    candle_window,
    classify_finnhub,
    exchange_tz,
    parse_candles,
)
from finappd.sim import SimConfig, SimServer, synthetic_bars
from finappd.sim.finnhub import NO_ACCESS, RATE_LIMITED, candle_response, quote_response
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import provider_factory, query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "finnhub",
    bars,
    tuple(f"T{i:02d}" for i in range(10)),
    "ZZZNOPE",
    ("NOPE", "NOPE"),
    key="premium-test-key",
)

NOW = datetime(2026, 1, 15, 23, 0, tzinfo=UTC).timestamp()
TICKERS = ["AAPL", "BRK-B", "VOD.L", "7203.T", *[f"T{i:02d}" for i in range(8)]]
MakeFinnhub = Callable[..., FinnhubProvider]


@pytest.fixture
async def make_finnhub() -> AsyncIterator[MakeFinnhub]:
    """Build Finnhub providers for a simulator; close their sessions afterwards."""
    async with provider_factory(FinnhubProvider, "finnhub", api_key="test-key", rates=[]) as make:

        def factory(sim: SimServer, **overrides: Any) -> FinnhubProvider:
            return make(base_url=f"{sim.url}/finnhub", **overrides)

        yield factory


def make_settings(tmp_path: Path, url: str, tickers: list[str], key: str, **flow: Any) -> Settings:
    """Settings for a daily_bars flow with ``provider = "finnhub"`` (and a Yahoo fallback)."""
    finnhub = {"base_url": f"{url}/finnhub", "api_key": key, "max_concurrency": 3}
    finnhub |= {"rates": ["30/second"], "backoff": "1ms", "backoff_max": "10ms"}
    yahoo = {"yahoo": {"base_url": url, "rates": []}}
    return one_flow(tmp_path / "f.sqlite3", "finnhub", finnhub, tickers, yahoo, **flow)


async def test_premium_flow_lands_local_dates_within_the_limit(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With candle access every ticker lands on exchange-local dates, 3 in flight at most."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS, "premium-test-key")
    summary = await run_eod(settings)
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert sim.stats.peak_in_flight <= 3
    for symbol in ("AAPL", "7203.T"):
        rows = query(tmp_path, "SELECT ts, close FROM bars WHERE symbol = ? ORDER BY ts", symbol)
        first, last = (date.fromisoformat(rows[i][0]) for i in (0, -1))
        assert rows == [(b.day.isoformat(), b.close) for b in synthetic_bars(symbol, first, last)]


async def test_free_key_is_plan_gated_and_falls_back(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A free key's candles are plan_gated; with fallback = ["yahoo"] every ticker lands there."""
    sim = await sim_server()
    assert sim.url is not None
    gated = await run_eod(make_settings(tmp_path, sim.url, TICKERS[:3], "test-key"))
    assert gated.failures == {"plan_gated": 3}
    settings = make_settings(tmp_path, sim.url, TICKERS[:3], "test-key", fallback=["yahoo"])
    summary = await run_eod(settings)
    assert (summary.status, summary.tickers_ok) == ("ok", 3)
    assert query(tmp_path, "SELECT DISTINCT provider FROM bars") == [("yahoo",)]


async def test_quote_matches_the_synthetic_close(
    sim_server: MakeServer, make_finnhub: MakeFinnhub
) -> None:
    """/quote gives the latest synthetic close; an unknown symbol's zeros are not found."""
    sim = await sim_server()
    provider = make_finnhub(sim)
    quote = await provider.quote("AAPL")
    today = datetime.now(ZoneInfo("America/New_York")).date()  # the exchange's date
    [*_, last] = synthetic_bars("AAPL", today - timedelta(days=7), today)
    assert quote.price == last.close
    assert quote.ts <= datetime.now(UTC)
    with pytest.raises(SymbolNotFoundError):
        await provider.quote("ZZZNOPE")


def test_the_simulators_bodies_classify_as_finnhubs() -> None:
    """The simulated quote, zero quote, candles and no_data get the provider's verdicts."""
    config = SimConfig()
    first, last = candle_window(date(2026, 1, 5), date(2026, 1, 9))
    week = {"symbol": "AAPL", "resolution": "D", "from": str(first), "to": str(last)}
    url = f"http://sim/finnhub/stock/candle?from={week['from']}&to={week['to']}"
    cases = [
        (quote_response({"symbol": "AAPL"}, config, NOW), Verdict.OK),
        (quote_response({"symbol": "ZZZ"}, config, NOW), Verdict.NOT_FOUND),
        (candle_response(week, config, NOW)[1], Verdict.OK),
        (candle_response({**week, "symbol": "ZZZ"}, config, NOW)[1], Verdict.NOT_FOUND),
    ]
    for body, verdict in cases:
        found = classify_finnhub(200, json.dumps(body), url)
        assert found is not None
        assert found.verdict is verdict
    gated = classify_finnhub(403, json.dumps({"error": NO_ACCESS}), url)
    assert gated is not None
    assert gated.verdict is Verdict.PLAN_GATED
    assert classify_finnhub(429, json.dumps({"error": RATE_LIMITED}), url) is None


def test_simulated_candles_start_at_local_midnight() -> None:
    """Simulated daily candles are stamped 00:00 exchange time and dated as the provider reads."""
    first, last = candle_window(date(2026, 1, 5), date(2026, 1, 9))
    query = {"symbol": "AAPL", "resolution": "D", "from": str(first), "to": str(last)}
    _, body = candle_response(query, SimConfig(), NOW)
    bars = parse_candles(body, "AAPL", date(2026, 1, 5), date(2026, 1, 9), exchange_tz("AAPL"))
    assert [b.ts for b in bars] == [date(2026, 1, 5) + timedelta(days=i) for i in range(5)]
    assert datetime.fromtimestamp(body["t"][0], UTC) == datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
