"""Tests of the simulated market-data API (finappd.sim) against a real local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

import finappd.sim
from finappd.sim import SimConfig, SimServer, SimStats, serve, synthetic_bars
from finappd.sim.config import Clocks
from finappd.sim.faults import Fault, FaultPlan
from finappd.sim.routes import Keys, Route, ServedApi, SimApi, path_param
from tests.conftest import MakeServer


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch seconds of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


def chart_path(symbol: str, period1: int, period2: int) -> str:
    """The chart URL path of a daily-bar request, symbol URL-encoded as Yahoo clients do."""
    encoded = quote(symbol, safe="")
    return f"/v8/finance/chart/{encoded}?period1={period1}&period2={period2}&interval=1d"


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session with explicit timeouts, closed after the test."""
    timeout = aiohttp.ClientTimeout(total=10, connect=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url`` and return the status and decoded JSON body."""
    async with session.get(url) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def test_public_surface_is_exactly_all() -> None:
    """The package exports exactly the documented public names."""
    assert sorted(finappd.sim.__all__) == sorted(
        ["SimConfig", "SimServer", "SimStats", "synthetic_bars", "serve"]
    )


async def test_chart_json_has_yahoos_shape(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """A daily request returns Yahoo's envelope, parallel arrays and the synthetic values."""
    sim = await sim_server()
    status, body = await get_json(
        client, f"{sim.url}{chart_path('XSP.TO', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    )
    assert status == 200
    assert set(body) == {"chart"}
    assert body["chart"]["error"] is None
    (result,) = body["chart"]["result"]
    meta = result["meta"]
    assert meta["symbol"] == "XSP.TO"
    assert meta["currency"] == "CAD"
    assert meta["exchangeTimezoneName"] == "America/Toronto"
    assert meta["timezone"] == "EST"
    assert meta["gmtoffset"] == -18000
    assert meta["dataGranularity"] == "1d"
    assert {"exchangeName", "instrumentType", "regularMarketPrice", "regularMarketTime"} <= set(
        meta
    )
    bars = synthetic_bars("XSP.TO", date(2024, 1, 1), date(2024, 1, 12))
    assert result["timestamp"] == [
        epoch(d.year, d.month, d.day, 14, 30) for d in (b.day for b in bars)
    ]
    (quote,) = result["indicators"]["quote"]
    assert quote == {
        "open": [b.open for b in bars],
        "high": [b.high for b in bars],
        "low": [b.low for b in bars],
        "close": [b.close for b in bars],
        "volume": [b.volume for b in bars],
    }
    assert result["indicators"]["adjclose"] == [{"adjclose": [b.adj_close for b in bars]}]
    assert meta["regularMarketPrice"] == bars[-1].close
    assert meta["regularMarketTime"] == result["timestamp"][-1]


@pytest.mark.parametrize("symbol", ["^GSPC", "BRK-B", "EURUSD=X"])
async def test_url_encoded_symbols_work(
    sim_server: MakeServer, client: aiohttp.ClientSession, symbol: str
) -> None:
    """Symbols with ``^``, ``-`` and ``=`` work URL-encoded in the path."""
    sim = await sim_server()
    status, body = await get_json(
        client, f"{sim.url}{chart_path(symbol, epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    )
    assert status == 200
    result = body["chart"]["result"][0]
    assert result["meta"]["symbol"] == symbol
    closes = [b.close for b in synthetic_bars(symbol, date(2024, 1, 1), date(2024, 1, 12))]
    assert result["indicators"]["quote"][0]["close"] == closes


@pytest.mark.parametrize("symbol", ["ZZZNOPE", "GONE"])
async def test_unknown_symbol_is_yahoos_404(
    sim_server: MakeServer, client: aiohttp.ClientSession, symbol: str
) -> None:
    """Configured-unknown and ``ZZZ`` symbols get Yahoo's 404 "may be delisted" body."""
    sim = await sim_server(SimConfig(unknown_symbols=frozenset({"GONE"})))
    status, body = await get_json(
        client, f"{sim.url}{chart_path(symbol, epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    )
    assert status == 404
    assert body == {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
    assert sim.stats.not_found == 1


async def test_null_symbol_has_a_null_last_bar(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """A null symbol's last bar is null in every array while earlier bars are numbers."""
    sim = await sim_server(SimConfig(null_symbols=frozenset({"FBIIX"})))
    _, body = await get_json(
        client, f"{sim.url}{chart_path('FBIIX', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    )
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    columns = [*quote.values(), result["indicators"]["adjclose"][0]["adjclose"]]
    assert len(columns) == 6
    for column in columns:
        assert len(column) == len(result["timestamp"])
        assert column[-1] is None
        assert None not in column[:-1]
    assert result["meta"]["regularMarketPrice"] == quote["close"][-2]


async def test_weekend_only_range_is_yahoos_empty_shape(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """A range with no trading day returns 200, meta, no timestamp and ``quote: [{}]``."""
    sim = await sim_server()
    status, body = await get_json(
        client, f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 6), epoch(2024, 1, 8))}"
    )
    assert status == 200
    result = body["chart"]["result"][0]
    assert "timestamp" not in result
    assert result["indicators"] == {"quote": [{}]}
    assert result["meta"]["symbol"] == "AAPL"
    assert result["meta"]["regularMarketTime"] == epoch(2024, 1, 5, 14, 30)


async def test_range_before_1990_is_a_400(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """A period1 before 1990 gets Yahoo's 400 "Data doesn't exist" body."""
    sim = await sim_server()
    status, body = await get_json(
        client, f"{sim.url}{chart_path('AAPL', epoch(1985, 1, 1), epoch(1995, 1, 1))}"
    )
    assert status == 400
    error = body["chart"]["error"]
    assert error["code"] == "Bad Request"
    assert error["description"] == (
        f"Data doesn't exist for startDate = {epoch(1985, 1, 1)}, endDate = {epoch(1995, 1, 1)}"
    )


async def test_max_concurrency_rejects_with_plain_429(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """Requests beyond the cap get a plain-text 429 with Retry-After; peak stays at the cap."""
    sim = await sim_server(SimConfig(latency=0.15, max_concurrency=3, retry_after=2.5))
    url = f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}"

    async def fetch() -> tuple[int, str, str | None, str]:
        async with client.get(url) as response:
            return (
                response.status,
                await response.text(),
                response.headers.get("Retry-After"),
                response.content_type,
            )

    results = await asyncio.gather(*(fetch() for _ in range(10)))
    rejected = [r for r in results if r[0] == 429]
    assert sum(r[0] == 200 for r in results) == 3
    assert len(rejected) == 7
    assert all(r[1:] == ("Too Many Requests", "3", "text/plain") for r in rejected)
    assert sim.stats.peak_in_flight == 3
    assert sim.stats.rejected_429 == 7
    assert sim.stats.in_flight == 0


async def test_polite_client_never_exceeds_the_cap(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """A client holding a semaphore of the cap gets only 200s and peak_in_flight proves it."""
    sim = await sim_server(SimConfig(latency=0.02, max_concurrency=4))
    semaphore = asyncio.Semaphore(4)

    async def fetch(i: int) -> int:
        async with (
            semaphore,
            client.get(
                f"{sim.url}{chart_path(f'T{i}', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
            ) as response,
        ):
            await response.read()
            return response.status

    statuses = await asyncio.gather(*(fetch(i) for i in range(40)))
    assert set(statuses) == {200}
    assert sim.stats.peak_in_flight == 4
    assert sim.stats.served == 40


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_window_is_enforced(client: aiohttp.ClientSession) -> None:
    """The (n+1)-th request in a window gets a 429 with Retry-After; a later window admits."""
    clock = FakeClock()
    async with SimServer(SimConfig(rate_limit=(3, 0.5)), clocks=Clocks(monotonic=clock)) as sim:
        url = f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
        statuses: list[int] = []
        for _ in range(5):
            async with client.get(url) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert await response.text() == "Too Many Requests"
                    assert response.headers["Retry-After"] == "1"
            clock.now += 0.01
        assert statuses == [200, 200, 200, 429, 429]
        clock.now += 0.5
        async with client.get(url) as response:
            assert response.status == 200
        assert sim.stats.max_in_window == 3
        assert sim.stats.by_status == {200: 4, 429: 2}


async def test_an_apis_own_window_answers_in_its_shape_and_is_counted(
    client: aiohttp.ClientSession,
) -> None:
    """Past ``provider_limits`` an API answers its own way (here Yahoo's plain 429, no
    Retry-After), counted in ``api_refused``; the window moves with the injected clock."""
    clock = FakeClock()
    config = SimConfig(provider_limits={"yahoo": (2, 60.0)})
    async with SimServer(config, clocks=Clocks(monotonic=clock)) as sim:
        url = f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
        answers = []
        for _ in range(3):
            async with client.get(url) as response:
                answers.append((response.status, response.headers.get("Retry-After")))
        assert answers == [(200, None), (200, None), (429, None)]
        assert (sim.stats.api_refused, sim.stats.rejected_429) == ({"yahoo": 1}, 1)
        clock.now += 60
        async with client.get(url) as response:
            assert response.status == 200
        sim.reset()
        assert sim.stats.api_refused == {}


async def test_stats_endpoint_and_reset(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """``/__sim/stats`` reports the counters, ``/__sim/reset`` zeroes them; neither is counted."""
    sim = await sim_server()
    await get_json(client, f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}")
    await get_json(client, f"{sim.url}{chart_path('ZZZX', epoch(2024, 1, 1), epoch(2024, 1, 13))}")
    status, stats = await get_json(client, f"{sim.url}/__sim/stats")
    assert status == 200
    assert stats == {
        "requests": 2,
        "served": 1,
        "in_flight": 0,
        "peak_in_flight": 1,
        "rejected_429": 0,
        "not_found": 1,
        "by_status": {"200": 1, "404": 1},
        "max_in_window": 0,
        "max_arrivals": {"1s": 2, "60s": 2, "3600s": 2},
        "api_refused": {},
    }
    async with client.post(f"{sim.url}/__sim/reset") as response:
        assert response.status == 200
    assert sim.stats == SimStats()
    assert "requests=0" in repr(sim)
    assert sim.url is not None
    assert sim.url in repr(sim)


async def test_config_changes_apply_to_a_running_server(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """Limits set on ``sim.config`` or via ``/__sim/config`` apply to the next requests."""
    sim = await sim_server()
    url = f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    sim.config.max_concurrency = 0
    async with client.get(url) as response:
        assert response.status == 429
    async with client.post(
        f"{sim.url}/__sim/config", json={"max_concurrency": None, "rate_limit": [1, 60]}
    ) as response:
        assert response.status == 200
    assert sim.config.rate_limit == (1, 60.0)
    statuses = []
    for _ in range(2):
        async with client.get(url) as response:
            statuses.append(response.status)
            if response.status == 429:
                assert int(response.headers["Retry-After"]) >= 59
    assert statuses == [200, 429]
    async with client.post(f"{sim.url}/__sim/config", json={"colour": "red"}) as response:
        assert response.status == 400


async def test_context_manager_and_stop_close_the_port(client: aiohttp.ClientSession) -> None:
    """``async with SimServer()`` serves on a free port and closes it on exit."""
    async with SimServer() as sim:
        url = sim.url
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        status, _ = await get_json(client, f"{url}/__sim/stats")
        assert status == 200
    assert sim.url is None
    with pytest.raises(aiohttp.ClientConnectionError):
        await get_json(client, f"{url}/__sim/stats")


async def test_serve_runs_until_stop_is_set(
    client: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    """``serve`` answers on the given port until its stop event is set."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(SimConfig(), "127.0.0.1", unused_tcp_port, stop))
    url = f"http://127.0.0.1:{unused_tcp_port}"
    for _ in range(100):
        try:
            status, _ = await get_json(client, f"{url}/__sim/stats")
            break
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.02)
    assert status == 200
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_arrivals_count_refused_requests_too(
    sim_server: MakeServer, client: aiohttp.ClientSession
) -> None:
    """max_arrivals counts every request received in a window, 429s included."""
    sim = await sim_server(SimConfig(rate_limit=(2, 60.0)))
    url = f"{sim.url}{chart_path('AAPL', epoch(2024, 1, 1), epoch(2024, 1, 13))}"
    for _ in range(5):
        async with client.get(url):
            pass
    assert sim.stats.max_in_window == 2
    assert sim.stats.max_arrivals == {"1s": 5, "60s": 5, "3600s": 5}


def plain(text: str, status: int = 200) -> web.Response:
    """A plain-text answer."""
    return web.Response(text=text, status=status)


#: An API of the route helper's test: every answer names the step that gave it.
TOY_API = SimApi(
    name="toy",
    base_path="/toy",
    routes=(
        Route("/toy/{symbol}", lambda r, c, now: plain("data"), symbol=path_param("symbol")),
        Route("/toy-open/{tail}", lambda r, c, now: plain("open"), guarded=False),
    ),
    rate_limited=lambda limit, strikes: plain(f"slow down {strikes}", 429),
    keys=Keys(
        read=lambda r: r.query.get("key", ""),
        refused=lambda: plain("refused", 401),
        missing=lambda: plain("no key", 401),
    ),
    refuse=lambda r: plain("wall", 403) if r.query.get("key") == "WALL" else None,
)


@pytest.mark.parametrize("key_first", [False, True])
async def test_the_route_helper_checks_faults_keys_and_the_window_in_order(
    client: aiohttp.ClientSession, key_first: bool
) -> None:
    """Faults come first, then the key (before or after the window, as the API declares),
    the API's window with its refusals in a row, then the handler; unguarded routes skip both."""
    api = replace(TOY_API, key_before_window=key_first)
    config = SimConfig(provider_limits={"toy": (4, 60.0)})
    stats = SimStats()
    app = web.Application()
    app.add_routes(ServedApi(api, lambda: config, stats, Clocks()).route_defs())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def get(path: str) -> tuple[int, str]:
        async with client.get(f"{url}{path}") as response:
            return response.status, await response.text()

    try:
        assert await get("/toy/A") == (401, "no key")
        assert await get("/toy/A?key=BADKEY") == (401, "refused")
        assert await get("/toy/A?key=WALL") == (403, "wall")
        # The refused keys took three of the window's four places unless checked first.
        served = [await get("/toy/A?key=k") for _ in range(3)]
        if key_first:
            assert (served, stats.api_refused) == ([(200, "data")] * 3, {})
        else:
            refused = [(429, "slow down 1"), (429, "slow down 2")]
            assert (served, stats.api_refused) == ([(200, "data"), *refused], {"toy": 2})
        assert await get("/toy-open/x") == (200, "open")
        config.faults = FaultPlan(by_symbol={"B": Fault("http_503")})
        assert await get("/toy/B") == (503, "503 Server Error")
    finally:
        await runner.cleanup()
