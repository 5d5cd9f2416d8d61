"""Tests for finappd.providers.finnhub: symbols, timezones, every error shape, polite calls."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aioresponses import aioresponses

from finappd.errors import AuthError, PlanGatedError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS, FinnhubProvider
from finappd.providers.base import Capability, Verdict
from finappd.providers.finnhub import (
    candle_window,
    classify_finnhub,
    exchange_tz,
    finnhub_symbol,
    parse_candles,
    parse_quote,
)
from finappd.records import Bar, Quote
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/finnhub"
QUOTE_URL = re.compile(r"^http://127\.0\.0\.1:9/finnhub/quote\?.*$")
CANDLE_URL = re.compile(r"^http://127\.0\.0\.1:9/finnhub/stock/candle\?.*$")
QUOTE = {"c": 261.74, "d": 1.69, "dp": 0.65, "h": 263.31, "l": 260.68, "o": 261.07, "pc": 259.45}
QUOTE["t"] = 1582641000
ZEROS = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
CANDLES: dict[str, Any] = {
    "s": "ok",
    "t": [1672722000, 1672808400],
    "o": [130.28, 126.89],
    "h": [130.9, 128.66],
    "l": [124.17, 125.08],
    "c": [125.07, 126.36],
    "v": [112117500, 89113600],
}
NO_ACCESS = json.dumps({"error": "You don't have access to this resource."})
LIMIT = json.dumps({"error": "API limit reached. Please try again later. Remaining Limit: 0"})
SIGN_UP = "API limit reached. Please sign up for a free account at https://finnhub.io/register"
WEEK_URL = f"{BASE}/stock/candle?symbol=AAPL&resolution=D&from=1735948800&to=1736553600"
WEEKEND_URL = f"{BASE}/stock/candle?symbol=AAPL&resolution=D&from=1735862400&to=1736121600"
MakeFinnhub = Callable[..., FinnhubProvider]


@pytest.fixture
async def make_finnhub() -> AsyncIterator[MakeFinnhub]:
    """Build Finnhub providers pointed at BASE with tiny backoff; close their sessions after."""
    async with provider_factory(
        FinnhubProvider, "finnhub", retries=2, base_url=BASE, api_key="test-key", rates=[]
    ) as factory:
        yield factory


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [("AAPL", "AAPL"), ("BRK-B", "BRK.B"), ("VOD.L", "VOD.L"), ("BRK.B", "BRK.B")],
)
def test_share_classes_take_a_dot(ticker: str, expected: str) -> None:
    """Only the share-class dash becomes a dot; suffixed symbols are kept."""
    assert finnhub_symbol(ticker) == expected


@pytest.mark.parametrize(
    ("symbol", "zone"),
    [("AAPL", "America/New_York"), ("VOD.L", "Europe/London"), ("7203.T", "Asia/Tokyo")],
)
def test_exchange_timezone_comes_from_the_suffix(symbol: str, zone: str) -> None:
    """The bar timezone is the exchange's, New York without a suffix."""
    assert exchange_tz(symbol) == ZoneInfo(zone)


def test_candle_window_covers_every_timezone() -> None:
    """from/to start a day early and end a day late in UTC, so far-east opens are included."""
    first, last = candle_window(date(2025, 1, 6), date(2025, 1, 10))
    assert datetime.fromtimestamp(first, UTC) == datetime(2025, 1, 5, tzinfo=UTC)
    assert datetime.fromtimestamp(last, UTC) == datetime(2025, 1, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "body", "url", "verdict"),
    [
        (200, json.dumps(QUOTE), BASE, Verdict.OK),
        (200, json.dumps(ZEROS), BASE, Verdict.NOT_FOUND),
        (200, json.dumps(CANDLES), WEEK_URL, Verdict.OK),
        (200, '{"s":"no_data"}', WEEK_URL, Verdict.NOT_FOUND),
        (404, '{"s":"no_data"}', WEEK_URL, Verdict.NOT_FOUND),
        (200, '{"s":"no_data"}', WEEKEND_URL, Verdict.EMPTY),
        (403, NO_ACCESS, WEEK_URL, Verdict.PLAN_GATED),
        (401, NO_ACCESS, WEEK_URL, Verdict.PLAN_GATED),
        (429, SIGN_UP, BASE, Verdict.AUTH),
        (200, "<html>Bad gateway</html>", BASE, Verdict.TRANSIENT),
        (200, "", BASE, Verdict.TRANSIENT),
        (200, '{"error":"Symbol not supported"}', BASE, Verdict.BAD),
    ],
)
def test_every_body_shape_is_classified(status: int, body: str, url: str, verdict: Verdict) -> None:
    """Each Finnhub answer of PROVIDERS.md section 4 gets its verdict from the body rules."""
    found = classify_finnhub(status, body, url)
    assert found is not None
    assert found.verdict is verdict


@pytest.mark.parametrize(("status", "body"), [(429, LIMIT), (401, '{"error":"Invalid API key"}')])
def test_plain_statuses_are_left_to_the_base(status: int, body: str) -> None:
    """A plain 429 and an invalid-key 401 fall through to the status rules (retry, auth)."""
    assert classify_finnhub(status, body, BASE) is None


def test_quote_fixture_parses_with_utc_time() -> None:
    """The quote fixture gives price, previous close and its epoch-seconds time in UTC."""
    assert parse_quote(QUOTE, "AAPL") == Quote(
        "AAPL", datetime(2020, 2, 25, 14, 30, tzinfo=UTC), 261.74, None, 259.45
    )


def test_candles_are_dated_in_new_york() -> None:
    """Daily candles stamped 05:00 UTC are the New York dates, not shifted."""
    bars = parse_candles(
        CANDLES, "AAPL", date(2023, 1, 1), date(2023, 1, 31), ZoneInfo("America/New_York")
    )
    assert bars == [
        Bar("AAPL", date(2023, 1, 3), 130.28, 130.9, 124.17, 125.07, None, 112117500.0),
        Bar("AAPL", date(2023, 1, 4), 126.89, 128.66, 125.08, 126.36, None, 89113600.0),
    ]


def test_tokyo_candles_take_the_tokyo_date() -> None:
    """A candle at 00:00 JST (15:00 UTC the day before) is the Tokyo date."""
    stamp = int(datetime(2024, 3, 4, 15, 0, tzinfo=UTC).timestamp())
    payload = {"s": "ok", "t": [stamp], "o": [1], "h": [1], "l": [1], "c": [2], "v": [3]}
    [bar] = parse_candles(payload, "7203.T", date(2024, 3, 5), date(2024, 3, 5), exchange_tz("X.T"))
    assert bar.ts == date(2024, 3, 5)


def test_declares_kind_capabilities_limits_and_key() -> None:
    """Finnhub is registered, needs a key, and keeps 30/second and 60/minute windows."""
    assert PROVIDER_KINDS["finnhub"] is FinnhubProvider
    assert FinnhubProvider.capabilities == {Capability.QUOTE, Capability.DAILY_BARS}
    assert [str(r) for r in FinnhubProvider.default_limits.windows()] == ["30/second", "60/minute"]
    assert FinnhubProvider.requires_key


async def test_key_travels_in_the_header_only(
    make_finnhub: MakeFinnhub, mocked: aioresponses
) -> None:
    """The quote request sends X-Finnhub-Token and no token in the URL."""
    mocked.get(QUOTE_URL, payload=QUOTE)
    quote = await make_finnhub().quote("BRK-B")
    assert quote.price == 261.74
    [((_, url), [call])] = list(mocked.requests.items())
    assert dict(url.query) == {"symbol": "BRK.B"}
    assert call.kwargs["headers"]["X-Finnhub-Token"] == "test-key"


async def test_all_zero_quote_is_not_found(make_finnhub: MakeFinnhub, mocked: aioresponses) -> None:
    """The all-zeros answer raises SymbolNotFoundError instead of a price of 0."""
    mocked.get(QUOTE_URL, payload=ZEROS)
    with pytest.raises(SymbolNotFoundError):
        await make_finnhub().quote("ZZZ")


async def test_free_key_candles_are_plan_gated(
    make_finnhub: MakeFinnhub, mocked: aioresponses
) -> None:
    """The 403 "You don't have access" raises PlanGatedError without disabling the provider."""
    mocked.get(CANDLE_URL, status=403, body=NO_ACCESS)
    mocked.get(QUOTE_URL, payload=QUOTE)
    provider = make_finnhub()
    with pytest.raises(PlanGatedError):
        await provider.daily_bars("AAPL", date(2023, 1, 2), date(2023, 1, 6))
    assert (await provider.quote("AAPL")).price == 261.74


async def test_429_is_retried_after_retry_after(
    make_finnhub: MakeFinnhub, mocked: aioresponses
) -> None:
    """A 429 pauses the provider and the retry gets the candles."""
    mocked.get(CANDLE_URL, status=429, body=LIMIT, headers={"Retry-After": "0"})
    mocked.get(CANDLE_URL, payload=CANDLES)
    provider = make_finnhub()
    bars = await provider.daily_bars("AAPL", date(2023, 1, 3), date(2023, 1, 4))
    assert (len(bars), provider.http.requests, provider.http.rate_limited) == (2, 2, 1)


async def test_missing_key_429_is_auth(make_finnhub: MakeFinnhub, mocked: aioresponses) -> None:
    """The 429 "please sign up" answer is an AuthError, not a retry loop."""
    mocked.get(QUOTE_URL, status=429, body=SIGN_UP, repeat=True)
    provider = make_finnhub()
    with pytest.raises(AuthError):
        await provider.quote("AAPL")
    assert provider.http.requests == 1


async def test_no_data_over_a_weekend_is_empty(
    make_finnhub: MakeFinnhub, mocked: aioresponses
) -> None:
    """{"s":"no_data"} for a weekend is no bars; for a full week it is not found."""
    mocked.get(CANDLE_URL, payload={"s": "no_data"}, repeat=True)
    provider = make_finnhub()
    assert await provider.daily_bars("AAPL", date(2025, 1, 4), date(2025, 1, 5)) == []
    with pytest.raises(SymbolNotFoundError):
        await provider.daily_bars("ZZZ", date(2025, 1, 6), date(2025, 1, 10))
