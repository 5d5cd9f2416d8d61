"""The simulator's answers have the shape of the answers recorded by others.

For each provider, the simulator is asked what a recorded answer answers (same endpoint, same
kind of symbol) and its body's *shape* is compared with the recorded body's: every key the
recorded answer has, at every depth, is there with the same JSON type (a number where the
API sends numbers, a string where it sends strings), and timestamps follow the recorded
convention (Yahoo's session open, Polygon's 00:00 New York for stocks and 00:00 UTC for
crypto and FX, Tiingo's midnight-UTC ISO dates, Twelve Data's and Alpha Vantage's date
strings, Stooq's Warsaw date and time columns). So the simulator cannot drift into our own
beliefs about an API: it is held to what the API was seen to say.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from finappd.sim import SimServer
from tests.conftest import MakeServer
from tests.recorded import Recorded, load

KEY = "test-key"
PREMIUM_KEY = "premium-test-key"  # the simulated Finnhub serves candles to premium keys only
NEW_YORK = ZoneInfo("America/New_York")
#: A finished nine-day window a month back: inside every free plan's history.
END = datetime.now(UTC).date() - timedelta(days=30)
START = END - timedelta(days=8)
#: Epoch seconds of the window, as the providers send them.
P1 = int(datetime.combine(START, time(), UTC).timestamp())
P2 = int(datetime.combine(END + timedelta(days=1), time(), UTC).timestamp())


def shape(value: Any) -> Any:
    """The JSON shape of ``value``: objects keep their keys, arrays the union of their items'
    shapes, scalars become their JSON type ("number", "string", "bool", "null")."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return shapes
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def missing(recorded: Any, simulated: Any, where: str = "$") -> list[str]:
    """Where ``simulated`` lacks a key of ``recorded`` or holds another type ([] if none)."""
    if isinstance(recorded, dict):
        if not isinstance(simulated, dict):
            return [f"{where}: object expected, got {simulated!r}"]
        out: list[str] = []
        for key, item in recorded.items():
            if key not in simulated:
                out.append(f"{where}.{key}: missing")
            elif item != "null" and simulated[key] != "null":  # null stands for any type
                out.extend(missing(item, simulated[key], f"{where}.{key}"))
        return out
    if isinstance(recorded, list):
        if not isinstance(simulated, list):
            return [f"{where}: array expected, got {simulated!r}"]
        if not recorded or not simulated:
            return []
        return [p for r in recorded[:1] for p in missing(r, simulated[0], f"{where}[]")]
    return [] if recorded == simulated else [f"{where}: {recorded} expected, got {simulated}"]


def recorded_body(provider: str, name: str) -> Any:
    """The decoded body of a recorded answer."""
    [answer] = [a for a in load(provider) if a.name == name]
    return json.loads(answer.body)


def recorded(provider: str, name: str) -> Recorded:
    """A recorded answer."""
    [answer] = [a for a in load(provider) if a.name == name]
    return answer


@pytest.fixture
async def sim(sim_server: MakeServer) -> SimServer:
    """A simulator with the default config."""
    return await sim_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session with explicit timeouts."""
    timeout = aiohttp.ClientTimeout(total=10, connect=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


async def fetch(
    http: aiohttp.ClientSession,
    sim: SimServer,
    path: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """GET ``path`` from the simulator: the status and the body text."""
    async with http.get(f"{sim.url}{path}", params=params, headers=headers) as response:
        return response.status, await response.text()


async def fetch_json(
    http: aiohttp.ClientSession,
    sim: SimServer,
    path: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """GET ``path`` from the simulator and decode its HTTP 200 JSON body."""
    status, text = await fetch(http, sim, path, params, headers)
    assert status == 200, text[:300]
    return json.loads(text)


def assert_same_shape(recorded_payload: Any, simulated_payload: Any) -> None:
    """Every key and type of the recorded payload is in the simulated one."""
    assert missing(shape(recorded_payload), shape(simulated_payload)) == []


# -- Yahoo -----------------------------------------------------------------------------------


async def test_yahoo_chart_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """A stock chart: meta, timestamp and the indicators' arrays as recorded; each stamp is
    the 09:30 New York open (recorded: 1577975400 = 2020-01-02 14:30 UTC)."""
    params = {"period1": str(P1), "period2": str(P2), "interval": "1d", "events": "div,splits"}
    body = await fetch_json(http, sim, "/v8/finance/chart/AAPL", params)
    assert_same_shape(recorded_body("yahoo", "chart_AAPL_2020-01-02"), body)
    stamps = body["chart"]["result"][0]["timestamp"]
    local = [datetime.fromtimestamp(s, NEW_YORK) for s in stamps]
    assert stamps
    assert all((t.hour, t.minute) == (9, 30) for t in local)


async def test_yahoo_crypto_chart_is_stamped_at_utc_midnight(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """BTC-USD days run 00:00..24:00 UTC, exchangeTimezoneName UTC, as recorded."""
    params = {"period1": str(P1), "period2": str(P2), "interval": "1d"}
    body = await fetch_json(http, sim, "/v8/finance/chart/BTC-USD", params)
    assert_same_shape(recorded_body("yahoo", "chart_BTC-USD_2020-01-01_2020-01-03"), body)
    result = body["chart"]["result"][0]
    assert result["meta"]["exchangeTimezoneName"] == "UTC"
    assert all(s % 86_400 == 0 for s in result["timestamp"])


# -- Polygon ---------------------------------------------------------------------------------

_BEARER = {"Authorization": f"Bearer {KEY}"}
_AGGS = {"adjusted": "true", "sort": "asc", "limit": "50000"}


async def _aggs(http: aiohttp.ClientSession, sim: SimServer, ticker: str) -> Any:
    path = f"/polygon/v2/aggs/ticker/{ticker}/range/1/day/{START}/{END}"
    return await fetch_json(http, sim, path, _AGGS, _BEARER)


async def test_polygon_stock_aggregates_start_at_new_york_midnight(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """AAPL's daily aggregates: the recorded keys; t at 00:00 New York in ms."""
    body = await _aggs(http, sim, "AAPL")
    assert_same_shape(recorded_body("polygon", "aggs_AAPL_2023-01-01_2023-01-10"), body)
    local = [datetime.fromtimestamp(r["t"] / 1000, NEW_YORK) for r in body["results"]]
    assert local
    assert all((t.hour, t.minute) == (0, 0) for t in local)


@pytest.mark.parametrize(
    ("ticker", "name"),
    [
        ("X:BTCUSD", "aggs_X-BTCUSD_2023-01-01_2023-01-10"),
        ("C:EURUSD", "aggs_C-EURUSD_2023-01-01_2023-01-10"),
    ],
)
async def test_polygon_crypto_and_fx_aggregates_start_at_utc_midnight(
    sim: SimServer, http: aiohttp.ClientSession, ticker: str, name: str
) -> None:
    """Crypto and FX daily aggregates: the recorded keys; t at 00:00 UTC (recorded:
    1672531200000 = 2023-01-01T00:00Z for X:BTCUSD)."""
    body = await _aggs(http, sim, ticker)
    assert_same_shape(recorded_body("polygon", name), body)
    stamps = [r["t"] for r in body["results"]]
    assert stamps
    assert all(t % 86_400_000 == 0 for t in stamps)


async def test_polygon_crypto_aggregates_cover_every_utc_day(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """X:BTCUSD has a bar for each UTC day of the range, weekends and the last day included."""
    body = await _aggs(http, sim, "X:BTCUSD")
    days = [datetime.fromtimestamp(r["t"] / 1000, UTC).date() for r in body["results"]]
    assert days == [START + timedelta(days=i) for i in range((END - START).days + 1)]


async def test_polygon_previous_close_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """/prev: the recorded keys (T, o, h, l, c, v, vw, n, t); a stock's bar stamped at the
    16:00 New York close (recorded: 1651003200000 = 2022-04-26T20:00Z)."""
    body = await fetch_json(http, sim, "/polygon/v2/aggs/ticker/AAPL/prev", None, _BEARER)
    assert_same_shape(recorded_body("polygon", "prev_AAPL"), body)
    local = datetime.fromtimestamp(body["results"][0]["t"] / 1000, NEW_YORK)
    assert (local.hour, local.minute) == (16, 0)


# -- Finnhub ---------------------------------------------------------------------------------

_FINNHUB = {"X-Finnhub-Token": PREMIUM_KEY}


async def test_finnhub_candles_have_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """Candles: parallel arrays and s "ok" as recorded; t at a midnight, of UTC (the
    convention since 2021, Finnhub-API#449) or of New York (the recorded 2019 answer)."""
    params = {"symbol": "AAPL", "resolution": "D", "from": str(P1), "to": str(P2)}
    body = await fetch_json(http, sim, "/finnhub/stock/candle", params, _FINNHUB)
    assert_same_shape(recorded_body("finnhub", "candle_AAPL_2019-09-24_2019-09-26"), body)
    for stamp in body["t"]:
        local = datetime.fromtimestamp(stamp, NEW_YORK)
        assert stamp % 86_400 == 0 or (local.hour, local.minute) == (0, 0)


async def test_finnhub_quote_has_the_recorded_keys(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """/quote: c, h, l, o, pc as numbers (the recorded answer, plus t, which it predates)."""
    body = await fetch_json(http, sim, "/finnhub/quote", {"symbol": "AAPL"}, _FINNHUB)
    assert_same_shape(recorded_body("finnhub", "quote_without_t"), body)


# -- Tiingo ----------------------------------------------------------------------------------

_TIINGO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00(\.000Z|\+00:00)$")


async def test_tiingo_prices_have_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """Daily prices: the recorded keys (raw, adj*, divCash, splitFactor) and each date the
    trading date at midnight UTC."""
    params = {
        "startDate": str(START),
        "endDate": str(END),
        "format": "json",
        "resampleFreq": "daily",
    }
    headers = {"Authorization": f"Token {KEY}"}
    body = await fetch_json(http, sim, "/tiingo/daily/aapl/prices", params, headers)
    assert_same_shape(recorded_body("tiingo", "daily_PG_2015-01-01_2015-01-05"), body)
    assert body
    assert all(_TIINGO_DATE.match(row["date"]) for row in body)


# -- Alpha Vantage ---------------------------------------------------------------------------


async def test_alphavantage_daily_series_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """TIME_SERIES_DAILY: Meta Data and the date-keyed series, every number a string."""
    params = {"function": "TIME_SERIES_DAILY", "symbol": "IBM", "apikey": KEY}
    body = await fetch_json(http, sim, "/alphavantage/query", params)
    want = recorded_body("alphavantage", "daily_AAPL_2020-08-31_2020-09-04")
    # The series is keyed by dates: compare one day's entry, not the keys themselves.
    assert_same_shape(want["Meta Data"], body["Meta Data"])
    days = body["Time Series (Daily)"]
    assert days
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", day) for day in days)
    assert_same_shape(next(iter(want["Time Series (Daily)"].values())), next(iter(days.values())))


async def test_alphavantage_global_quote_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """GLOBAL_QUOTE: the ten numbered string fields."""
    params = {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": KEY}
    body = await fetch_json(http, sim, "/alphavantage/query", params)
    assert_same_shape(recorded_body("alphavantage", "global_quote_MSFT"), body)


# -- Twelve Data -----------------------------------------------------------------------------

_TWELVE = {"Authorization": f"apikey {KEY}"}


async def test_twelvedata_time_series_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """time_series: meta (with exchange_timezone, mic_code), string values, status "ok";
    daily datetimes are bare dates."""
    params = {
        "symbol": "AAPL",
        "interval": "1day",
        "start_date": str(START),
        "end_date": str(END),
        "order": "asc",
        "outputsize": "5000",
        "timezone": "Exchange",
    }
    body = await fetch_json(http, sim, "/twelvedata/time_series", params, _TWELVE)
    assert_same_shape(recorded_body("twelvedata", "time_series_AAPL_2024-11-22"), body)
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", row["datetime"]) for row in body["values"])


async def test_twelvedata_quote_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """/quote: the recorded flat object (string prices, epoch timestamp, fifty_two_week)."""
    body = await fetch_json(http, sim, "/twelvedata/quote", {"symbol": "AAPL"}, _TWELVE)
    assert_same_shape(recorded_body("twelvedata", "quote_AAPL_2024-11-22"), body)


# -- CoinGecko -------------------------------------------------------------------------------


async def test_coingecko_simple_price_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """simple/price with include_last_updated_at: coin → {vs: number, last_updated_at}."""
    params = {"ids": "bitcoin", "vs_currencies": "usd", "include_last_updated_at": "true"}
    body = await fetch_json(http, sim, "/coingecko/simple/price", params)
    want = recorded_body("coingecko", "simple_price_bitcoin_usd")
    # Only what was asked for: the recorded answer also asked for market cap, volume, change.
    asked = {"bitcoin": {key: want["bitcoin"][key] for key in ("usd", "last_updated_at")}}
    assert_same_shape(asked, body)


# -- Frankfurter -----------------------------------------------------------------------------


#: Recorded one-date answers in today's ECB set (the 2019 and 2022 ones carry HRK, which the
#: ECB stopped publishing on 2023-01-01; the simulator serves today's set only).
FRANKFURTER_ONE_DATE = [
    "latest_EUR_2023-04-04",
    "latest_ZAR_2023-04-04",
    "latest_USD_CAD_EUR_SGD_2026-10-07",
    "latest_ZAR_USD_2023-04-04",
    "v1_2025-03-18_EUR_GBP",
]


@pytest.mark.parametrize("name", FRANKFURTER_ONE_DATE)
async def test_frankfurter_one_date_has_the_recorded_shape(
    sim: SimServer, http: aiohttp.ClientSession, name: str
) -> None:
    """A one-date v1 answer for the recorded base and quotes: amount, base, date and rates
    as recorded, the date a YYYY-MM-DD publication date."""
    want = recorded_body("frankfurter", name)
    params = {"base": want["base"], "symbols": ",".join(want["rates"])}
    body = await fetch_json(http, sim, "/frankfurter/v1/2024-01-03", params)
    assert_same_shape(want, body)
    assert body["base"] == want["base"]
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", body["date"])


async def test_frankfurter_range_has_the_recorded_shape_and_dates(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """The recorded range request, asked of the simulator: the same keys and types, the start
    snapped back from the 2024-01-01 holiday to 2023-12-29 and the same publication dates."""
    want = recorded_body("frankfurter", "range_USD_CAD_2024-01-01_2024-01-05")
    params = {"base": "USD", "symbols": "CAD"}
    body = await fetch_json(http, sim, "/frankfurter/v1/2024-01-01..2024-01-05", params)
    assert_same_shape(want, body)
    assert (body["start_date"], body["end_date"]) == (want["start_date"], want["end_date"])
    assert sorted(body["rates"]) == sorted(want["rates"])


# -- Stooq -----------------------------------------------------------------------------------


async def test_stooq_quote_has_the_recorded_columns(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """The latest-bar CSV: the recorded columns (less Name, asked only there), a
    YYYY-MM-DD date and an HH:MM:SS time."""
    params = {"s": "aapl.us", "f": "sd2t2ohlcv", "h": "", "e": "csv", "apikey": KEY}
    status, text = await fetch(http, sim, "/stooq/q/l/", params)
    assert status == 200, text[:300]
    want = next(csv.DictReader(io.StringIO(recorded("stooq", "quote_A.US_2022-01-14").body)))
    row = next(csv.DictReader(io.StringIO(text)))
    assert list(row) == [column for column in want if column != "Name"]
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", row["Date"])
    assert re.match(r"^\d{2}:\d{2}:\d{2}$", row["Time"])


@pytest.mark.parametrize(
    ("symbol", "name"),
    [
        ("aapl.us", "daily_aapl.us_1984-09-07_1984-09-20"),
        ("^spx", "daily_spx_index_2010-01-04_2010-01-19"),
        ("^dax", "daily_dax_index_2010-01-04_2010-01-19"),
        ("eurusd", "daily_eurusd_2010-01-04_2010-01-15"),
    ],
)
async def test_stooq_daily_has_the_recorded_columns(
    sim: SimServer, http: aiohttp.ClientSession, symbol: str, name: str
) -> None:
    """The daily CSV: the recorded columns for a stock, an index (with Volume) and an FX
    pair (without), YYYY-MM-DD dates ascending, numbers in every price column."""
    params = {
        "s": symbol,
        "i": "d",
        "d1": START.strftime("%Y%m%d"),
        "d2": END.strftime("%Y%m%d"),
        "apikey": KEY,
    }
    status, text = await fetch(http, sim, "/stooq/q/d/l/", params)
    assert status == 200, text[:300]
    want = next(csv.reader(io.StringIO(recorded("stooq", name).body)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, text[:300]
    assert list(rows[0]) == want
    days = [row["Date"] for row in rows]
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", day) for day in days)
    assert days == sorted(days)
    assert all(float(row[column]) >= 0 for row in rows for column in want[1:])


# -- Error answers ---------------------------------------------------------------------------


async def _error(
    http: aiohttp.ClientSession,
    sim: SimServer,
    path: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    status, text = await fetch(http, sim, path, params, headers)
    return status, json.loads(text)


async def test_yahoo_range_before_the_first_trade_has_the_recorded_error(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """A range before the first trade: HTTP 400, chart.error code/description, result null."""
    params = {"period1": "0", "period2": "86400", "interval": "1d"}
    status, body = await _error(http, sim, "/v8/finance/chart/AAPL", params)
    want = recorded("yahoo", "chart_BEKE_400_before_first_trade")
    assert status == want.status
    assert_same_shape(json.loads(want.body), body)
    assert body["chart"]["error"]["description"].startswith("Data doesn't exist")


async def test_finnhub_free_key_candles_have_the_recorded_refusal(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """Candles on a free key: HTTP 403 {"error": "You don't have access to this resource."}."""
    params = {"symbol": "AAPL", "resolution": "D", "from": str(P1), "to": str(P2)}
    status, body = await _error(
        http, sim, "/finnhub/stock/candle", params, {"X-Finnhub-Token": KEY}
    )
    want = recorded("finnhub", "candle_403_no_access")
    assert (status, body) == (want.status, json.loads(want.body))


async def test_alphavantage_unknown_symbol_has_the_recorded_error(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """An unknown symbol: HTTP 200 with only an 'Error Message' string."""
    params = {"function": "TIME_SERIES_DAILY", "symbol": "ZZZZ", "apikey": KEY}
    status, body = await _error(http, sim, "/alphavantage/query", params)
    want = recorded("alphavantage", "error_invalid_api_call")
    assert status == want.status
    assert shape(body) == shape(json.loads(want.body))
    assert body["Error Message"].startswith("Invalid API call.")


async def test_twelvedata_unknown_symbol_has_the_recorded_error(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """An unknown symbol: {code, message "**symbol** not found: …", status "error"}."""
    params = {"symbol": "ZZZZ", "interval": "1day", "start_date": str(START)}
    _, body = await _error(http, sim, "/twelvedata/time_series", params, _TWELVE)
    want = json.loads(recorded("twelvedata", "error_400_symbol_not_found").body)
    assert shape(body) == shape(want)
    assert body["status"] == "error"
    assert body["message"].startswith("**symbol** not found: ZZZZ.")


async def test_coingecko_history_beyond_365_days_has_the_recorded_error(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """From more than 365 days back: HTTP 401, error.status.{timestamp, error_code 10012,
    error_message}."""
    old = int(datetime.now(UTC).timestamp()) - 400 * 86_400
    params = {"vs_currency": "usd", "from": str(old), "to": str(old + 86_400)}
    status, body = await _error(http, sim, "/coingecko/coins/bitcoin/market_chart/range", params)
    want = recorded("coingecko", "error_10012_beyond_365_days")
    assert status == want.status
    assert_same_shape(json.loads(want.body), body)
    assert body["error"]["status"]["error_code"] == 10012


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"base": "EUR", "symbols": "AED"}, "error_not_found"),
        ({"base": "USD", "symbols": "TWD"}, "error_404_unknown_quote_TWD"),
    ],
)
async def test_frankfurter_unknown_currency_has_the_recorded_error(
    sim: SimServer, http: aiohttp.ClientSession, params: dict[str, str], name: str
) -> None:
    """A currency the ECB does not publish: HTTP 404 {"message": "not found"}."""
    status, body = await _error(http, sim, "/frankfurter/v1/2024-10-02", params)
    want = recorded("frankfurter", name)
    assert (status, body) == (want.status, json.loads(want.body))
