"""End-to-end tests of PolygonProvider against the simulated Massive API (finappd.sim.polygon)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finappd.config import Settings
from finappd.providers.base import Verdict
from finappd.providers.polygon import PolygonProvider, bar_tz, classify_polygon, parse_aggs
from finappd.sim import SimConfig, SimServer, synthetic_bars
from finappd.sim.polygon import aggs_response, reference_response
from finappd.sim.prices import symbol_key
from tests.conftest import MakeServer, one_flow
from tests.test_provider_contract import Contract, bars
from tests.test_provider_support import provider_factory, query, run_eod

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "polygon", bars, tuple(f"T{i:02d}" for i in range(10)), "ZZZNOPE", ("NOPE", "NOPE")
)

TICKERS = ["AAPL", "BRK-B", "^GSPC", *[f"T{i:02d}" for i in range(9)]]
NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC).timestamp()  # 13:00 New York
MakePolygon = Callable[..., PolygonProvider]


@pytest.fixture
async def make_polygon() -> AsyncIterator[MakePolygon]:
    """Build Polygon providers for a simulator; close their sessions afterwards."""
    async with provider_factory(PolygonProvider, "polygon", api_key="test-key", rates=[]) as make:

        def factory(sim: SimServer, **overrides: Any) -> PolygonProvider:
            return make(base_url=f"{sim.url}/polygon", **overrides)

        yield factory


def make_settings(tmp_path: Path, url: str, tickers: list[str], **flow: Any) -> Settings:
    """Settings for a daily_bars flow with ``provider = "polygon"`` (and a Yahoo fallback)."""
    polygon = {"base_url": f"{url}/polygon", "api_key": flow.pop("key", "test-key")}
    polygon |= {"rates": ["100/second"], "backoff": "1ms", "backoff_max": "10ms"}
    yahoo = {"yahoo": {"base_url": url, "rates": []}}
    return one_flow(tmp_path / "f.sqlite3", "polygon", polygon, tickers, yahoo, **flow)


async def test_flow_lands_new_york_dates_one_at_a_time(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Every ticker lands with New York dates, one in flight, no 429 within the server's window."""
    sim = await sim_server(SimConfig(provider_limits={"polygon": (100, 1.0)}, latency=0.005))
    assert sim.url is not None
    summary = await run_eod(make_settings(tmp_path, sim.url, TICKERS))
    assert (summary.status, summary.tickers_ok) == ("ok", len(TICKERS))
    assert (sim.stats.peak_in_flight, sim.stats.rejected_429) == (1, 0)
    rows = query(tmp_path, "SELECT ts, close FROM bars WHERE symbol = ? ORDER BY ts", "BRK-B")
    first, last = (date.fromisoformat(rows[i][0]) for i in (0, -1))
    assert rows == [(b.day.isoformat(), b.close) for b in synthetic_bars("BRK-B", first, last)]


async def test_history_beyond_the_plan_falls_back(tmp_path: Path, sim_server: MakeServer) -> None:
    """A lookback past two years is plan_gated at Polygon and served by the Yahoo fallback."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, ["AAPL"], lookback_days=900, fallback=["yahoo"])
    summary = await run_eod(settings)
    assert summary.status == "ok"
    assert query(tmp_path, "SELECT DISTINCT provider FROM bars") == [("yahoo",)]


async def test_quote_and_actions(sim_server: MakeServer, make_polygon: MakePolygon) -> None:
    """/prev gives a past close; a payer's dividends come back quarterly, a non-payer's empty."""
    sim = await sim_server()
    provider = make_polygon(sim)
    quote = await provider.quote("AAPL")
    assert quote.ts < datetime.now(UTC)
    payer, other = (
        next(f"T{i}" for i in range(40) if symbol_key(f"T{i}") & 1 == odd) for odd in (0, 1)
    )
    dividends, splits = await provider.actions(payer, *YEAR)
    assert [d.ex_date.month for d in dividends] == [2, 5, 8, 11]
    assert splits == []
    assert await provider.actions(other, *YEAR) == ([], [])


YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def test_sim_paginates_with_a_cursor_and_no_key() -> None:
    """limit=2 over a week gives 2 bars and a next_url whose cursor serves the rest."""
    match = {"ticker": "AAPL", "multiplier": "1", "timespan": "day"}
    match |= {"start": "2026-01-05", "end": "2026-01-09"}
    status, page = aggs_response(match, {"limit": "2"}, SimConfig(), NOW, origin="http://h")
    assert (status, page["resultsCount"], page["status"]) == (200, 2, "DELAYED")
    cursor = page["next_url"].split("cursor=")[1].split("&")[0]
    assert page["next_url"].startswith("http://h/polygon/v2/aggs/ticker/AAPL/")
    assert "apiKey" not in page["next_url"]
    _, rest = aggs_response(match, {"limit": "2", "cursor": cursor}, SimConfig(), NOW)
    assert rest["resultsCount"] == 2
    assert "next_url" in rest


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2024-01-02", "2024-01-05", 403),  # more than two years back
        ("2026-01-12", "2026-01-15", 403),  # today before 20:00 New York
        ("2026-01-12", "2026-01-14", 200),
    ],
)
def test_sim_enforces_the_free_plan(start: str, end: str, status: int) -> None:
    """Free keys get 403 NOT_AUTHORIZED for old history and for today before end of day."""
    match = {"ticker": "AAPL", "multiplier": "1", "timespan": "day", "start": start, "end": end}
    got, body = aggs_response(match, {}, SimConfig(), NOW)
    assert got == status
    assert body["status"] == ("NOT_AUTHORIZED" if status == 403 else "DELAYED")


@pytest.mark.parametrize(
    ("ticker", "start", "end", "verdict"),
    [
        ("AAPL", "2026-01-05", "2026-01-09", Verdict.OK),
        ("ZZZ", "2026-01-05", "2026-01-09", Verdict.NOT_FOUND),
        ("AAPL", "2026-01-10", "2026-01-11", Verdict.EMPTY),
        ("AAPL", "2023-01-02", "2023-01-06", Verdict.PLAN_GATED),
        ("AAPL", "2026-01-12", "2026-01-15", Verdict.PLAN_GATED),
    ],
)
def test_the_simulators_aggregates_classify_as_polygons(
    ticker: str, start: str, end: str, verdict: Verdict
) -> None:
    """Every aggregates answer of the simulator gets the verdict the provider gives the real one."""
    match = {"ticker": ticker, "multiplier": "1", "timespan": "day", "start": start, "end": end}
    status, body = aggs_response(match, {}, SimConfig(), NOW)
    url = f"http://sim/polygon/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
    found = classify_polygon(status, json.dumps(body), url)
    assert found is not None
    assert found.verdict is verdict


def test_simulated_bars_start_at_new_york_midnight() -> None:
    """Simulated ``t`` is epoch ms at 00:00 New York and parses back to the same dates."""
    match = {"ticker": "AAPL", "multiplier": "1", "timespan": "day"}
    match |= {"start": "2026-01-05", "end": "2026-01-09"}
    _, body = aggs_response(match, {}, SimConfig(), NOW)
    bars = parse_aggs(body, "AAPL", date(2026, 1, 5), date(2026, 1, 9), bar_tz("AAPL"))
    assert [b.ts for b in bars] == [date(2026, 1, 5) + timedelta(days=i) for i in range(5)]
    assert body["results"][0]["t"] == datetime(2026, 1, 5, 5, 0, tzinfo=UTC).timestamp() * 1000
    empty = reference_response("splits", {"ticker": "AAPL"}, SimConfig(), NOW)
    found = classify_polygon(200, json.dumps(empty), "http://sim/polygon/v3/reference/splits")
    assert found is not None
    assert found.verdict is Verdict.EMPTY
