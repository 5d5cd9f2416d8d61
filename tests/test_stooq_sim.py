"""End-to-end tests of StooqProvider against the simulated Stooq CSV API (finappd.sim.stooq)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from finappd.config import Settings
from finappd.providers.base import Verdict
from finappd.providers.stooq import classify_body, parse_quote_csv
from finappd.sim import SimConfig, synthetic_bars
from finappd.sim.stooq import BOT_WALL, DAILY_LIMIT, KEY_PAGE, daily_csv, quote_csv
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "stooq",
    bars,
    tuple(f"T{i:02d}" for i in range(10)),
    "ZZZNOPE",
    ("NOPE", "NOPE"),
    rides_out_short_windows=False,
)

NOW = datetime(2026, 1, 15, 23, 0, tzinfo=UTC).timestamp()
TICKERS = ["AAPL", "MSFT", "BRK-B", "^GSPC", "VOD.L", "7203.T", *[f"T{i:02d}" for i in range(14)]]


def make_settings(tmp_path: Path, url: str, tickers: list[str], **provider: Any) -> Settings:
    """Settings for one daily_bars flow with ``provider = "stooq"`` against the simulator."""
    options = {"base_url": f"{url}/stooq", "api_key": "test-key", "max_concurrency": 2}
    options |= {"rates": ["1000/second"], "backoff": "1ms", "backoff_max": "10ms", **provider}
    return one_flow(tmp_path / "f.sqlite3", "stooq", options, tickers)


async def test_flow_lands_every_ticker_within_the_limit(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Every ticker lands with the simulator's prices, never more than 2 requests in flight."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert sim.stats.peak_in_flight <= 2
    assert sim.stats.requests == len(TICKERS)
    rows = query(tmp_path, "SELECT ts, close FROM bars WHERE symbol = 'AAPL' ORDER BY ts")
    first = date.fromisoformat(rows[0][0])
    expected = synthetic_bars("AAPL", first, first + timedelta(days=40))[: len(rows)]
    assert rows == [(bar.day.isoformat(), bar.close) for bar in expected]


async def test_daily_hits_limit_parks_the_provider(tmp_path: Path, sim_server: MakeServer) -> None:
    """Past the simulator's daily hits the rest is quota_exhausted without further requests."""
    sim = await sim_server(SimConfig(provider_limits={"stooq": (3, 86400.0)}))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS[:8], max_concurrency=1)
    summary = await run_eod(settings)
    assert (summary.tickers_ok, summary.failures) == (3, {"quota_exhausted": 5})
    assert sim.stats.requests == 4


async def test_refused_key_fails_the_run_with_one_request(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Through a flow: the refused key fails every ticker auth after one request, keyless."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, TICKERS[:5], api_key="BADKEY", max_concurrency=1)
    summary = await run_eod(settings)
    assert (summary.status, summary.failures) == ("failed", {"auth": 5})
    assert sim.stats.requests == 1
    messages = [row[0] for row in query(tmp_path, "SELECT message FROM fetch_errors")]
    assert messages
    assert all("BADKEY" not in message for message in messages)


@pytest.mark.parametrize(
    ("query", "verdict"),
    [
        ({"s": "aapl.us", "d1": "20260105", "d2": "20260109", "apikey": "k"}, Verdict.OK),
        ({"s": "^spx", "d1": "20260105", "d2": "20260109", "apikey": "k"}, Verdict.OK),
        ({"s": "zzz.us", "d1": "20260105", "d2": "20260109", "apikey": "k"}, Verdict.NOT_FOUND),
        ({"s": "aapl.us", "d1": "20260103", "d2": "20260104", "apikey": "k"}, Verdict.EMPTY),
    ],
)
def test_the_simulators_bodies_classify_as_stooqs(query: dict[str, str], verdict: Verdict) -> None:
    """Every body the simulated /q/d/l/ sends gets the verdict the provider gives the real one."""
    url = str(URL("http://sim/stooq/q/d/l/").with_query(query))
    assert classify_body(daily_csv(query, SimConfig(), NOW), url).verdict is verdict


def test_the_simulators_quote_limit_and_key_pages_classify() -> None:
    """The simulated quote CSV (known and N/D), the daily-limit text and the key pages classify."""
    known = quote_csv({"s": "aapl.us", "apikey": "k"}, SimConfig(), NOW)
    unknown = quote_csv({"s": "zzz.us", "apikey": "k"}, SimConfig(), NOW)
    assert classify_body(known, "http://sim/q/l/").verdict is Verdict.OK
    assert parse_quote_csv(known, "AAPL").ts.timestamp() <= NOW
    assert classify_body(unknown, "http://sim/q/l/").verdict is Verdict.NOT_FOUND
    assert classify_body(DAILY_LIMIT, "http://sim/").verdict is Verdict.QUOTA_EXHAUSTED
    for page in (KEY_PAGE, BOT_WALL):
        assert classify_body(page, "http://sim/q/d/l/").verdict is Verdict.AUTH


@pytest.mark.parametrize(
    ("key", "page"), [(None, KEY_PAGE), ("BADKEY", KEY_PAGE), ("BOTWALL", BOT_WALL)]
)
async def test_the_simulator_turns_keys_away_with_its_html_pages(
    sim_server: MakeServer, key: str | None, page: str
) -> None:
    """No key and the refused key get the API-key page, BOTWALL the bot wall: HTTP 200 HTML."""
    sim = await sim_server()
    params = {"s": "aapl.us", "i": "d"} | ({"apikey": key} if key else {})
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{sim.url}/stooq/q/d/l/", params=params) as response,
    ):
        assert (response.status, response.content_type) == (200, "text/html")
        assert await response.text() == page
