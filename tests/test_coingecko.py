"""Tests for CoinGeckoProvider over HTTP (aioresponses): coin ids, key headers, every error."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from finappd.config import ProviderSettings
from finappd.errors import (
    AuthError,
    BadResponseError,
    PlanGatedError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.providers import PROVIDER_KINDS, CoinGeckoProvider, make_session
from finappd.providers.base import Capability
from finappd.records import Quote
from tests.test_coingecko_parse import RANGE, RATE, SIMPLE, chart, ms, status_error
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/api/v3"
CHART = re.compile(r"^http://127\.0\.0\.1:9/api/v3/coins/[^/]+/market_chart/range\?.*$")
SIMPLE_URL = re.compile(r"^http://127\.0\.0\.1:9/api/v3/simple/price\?.*$")
KEY = "test-key"
WEEK = (date(2024, 3, 4), date(2024, 3, 6))
MakeGecko = Callable[..., CoinGeckoProvider]
Seen = list[tuple[Any, dict[str, Any]]]


@pytest.fixture
async def make_gecko() -> AsyncIterator[MakeGecko]:
    """Build CoinGecko providers pointed at BASE with tiny backoff; close their sessions."""
    async with provider_factory(
        CoinGeckoProvider, "coingecko", retries=2, base_url=BASE, api_key=KEY, rates=[]
    ) as factory:
        yield factory


def recorder(seen: Seen, body: Any) -> Callable[..., CallbackResult]:
    """An aioresponses callback that records the request and answers ``body`` as JSON."""

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body=json.dumps(body))

    return record


DAILY = chart([(ms(2024, 3, d), 60000.0 + d) for d in range(4, 8)] + [(ms(2024, 3, 7, 9), 1.0)])


def test_declares_kind_capabilities_and_limits() -> None:
    """CoinGecko is registered, key optional, 30/minute and 10,000/month."""
    assert PROVIDER_KINDS["coingecko"] is CoinGeckoProvider
    assert CoinGeckoProvider.capabilities == {
        Capability.CRYPTO,
        Capability.QUOTE,
        Capability.DAILY_BARS,
    }
    assert not CoinGeckoProvider.requires_key
    limits = CoinGeckoProvider.default_limits
    assert [str(r) for r in limits.windows()] == ["30/minute"]
    assert (limits.daily(), limits.monthly()) == (None, 10_000)


async def test_daily_bars_request_and_demo_header(
    make_gecko: MakeGecko, mocked: aioresponses
) -> None:
    """BTC-USD asks bitcoin in usd over the widened window; the key is in the demo header."""
    seen: Seen = []
    mocked.get(CHART, callback=recorder(seen, DAILY))
    provider = make_gecko()
    provider.ledger.clock = lambda: datetime(2024, 3, 7, 9, 0, tzinfo=UTC)
    bars = await provider.daily_bars("BTC-USD", *WEEK)
    assert [(b.ts, b.close, b.open) for b in bars] == [
        (date(2024, 3, 4), 60005.0, None),
        (date(2024, 3, 5), 60006.0, None),
        (date(2024, 3, 6), 60007.0, None),
    ]
    (url, kwargs) = seen[0]
    assert url.path == "/api/v3/coins/bitcoin/market_chart/range"
    last = datetime(2024, 3, 7, 1, tzinfo=UTC)
    assert dict(url.query) == {
        "vs_currency": "usd",
        "from": str(int((last - timedelta(days=91)).timestamp())),  # widened: daily samples
        "to": str(int(last.timestamp())),
    }
    assert kwargs["headers"]["x-cg-demo-api-key"] == KEY
    assert "x_cg" not in str(url)
    assert KEY not in str(url)


async def test_pro_host_uses_the_pro_header(mocked: aioresponses) -> None:
    """With base_url on pro-api.coingecko.com the key goes in x-cg-pro-api-key."""
    seen: Seen = []
    mocked.get(
        re.compile(r"^https://pro-api\.coingecko\.com/api/v3/simple/price\?.*$"),
        callback=recorder(seen, SIMPLE),
    )
    session = make_session()
    try:
        settings = ProviderSettings.model_validate(
            {"base_url": "https://pro-api.coingecko.com/api/v3", "api_key": KEY}
        )
        provider = CoinGeckoProvider("cg", settings, session)
        await provider.quote("ETH-USD")
    finally:
        await session.close()
    headers = seen[0][1]["headers"]
    assert headers["x-cg-pro-api-key"] == KEY
    assert "x-cg-demo-api-key" not in headers


async def test_keyless_sends_no_key_header(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """Without a key no key header is sent (keyless public access)."""
    seen: Seen = []
    mocked.get(SIMPLE_URL, callback=recorder(seen, SIMPLE))
    await make_gecko(api_key=None).quote("BTC-USD")
    assert not {"x-cg-demo-api-key", "x-cg-pro-api-key"} & set(seen[0][1]["headers"])


async def test_quote_from_simple_price(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """simple/price asks one id and currency and gives a UTC quote."""
    seen: Seen = []
    mocked.get(SIMPLE_URL, callback=recorder(seen, SIMPLE))
    quote = await make_gecko().quote("BTC-EUR")
    assert quote == Quote("BTC-EUR", datetime.fromtimestamp(1791367550, UTC), 74795.0, "EUR")
    assert dict(seen[0][0].query) == {
        "ids": "bitcoin",
        "vs_currencies": "eur",
        "include_last_updated_at": "true",
    }


async def test_override_maps_a_new_coin(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """A symbols override names the coin id and currency for an undeclared ticker."""
    seen: Seen = []
    mocked.get(SIMPLE_URL, callback=recorder(seen, {"pepe": {"usd": 1e-5, "last_updated_at": 1}}))
    quote = await make_gecko(symbols={"PEPE-USD": "pepe/usd"}).quote("PEPE-USD")
    assert (quote.price, seen[0][0].query["ids"]) == (1e-5, "pepe")


async def test_undeclared_ticker_is_not_found_without_a_request(make_gecko: MakeGecko) -> None:
    """A ticker with no declared coin id raises SymbolNotFoundError naming the override key."""
    provider = make_gecko()
    with pytest.raises(SymbolNotFoundError, match=r'symbols\."PEPE-USD"'):
        await provider.daily_bars("PEPE-USD", *WEEK)
    assert provider.http.requests == 0


async def test_unknown_id_in_simple_price_is_not_found(
    make_gecko: MakeGecko, mocked: aioresponses
) -> None:
    """An all-unknown simple/price answer ({} with HTTP 200) raises SymbolNotFoundError."""
    mocked.get(SIMPLE_URL, payload={})
    provider = make_gecko()
    with pytest.raises(SymbolNotFoundError):
        await provider.quote("nosuchcoin")
    assert provider.http.requests == 1


async def test_missing_currency_in_simple_price_is_not_found(
    make_gecko: MakeGecko, mocked: aioresponses
) -> None:
    """A coin answered without the asked currency raises SymbolNotFoundError."""
    mocked.get(SIMPLE_URL, payload={"bitcoin": {"last_updated_at": 1}})
    with pytest.raises(SymbolNotFoundError, match="no xyz price"):
        await make_gecko().quote("bitcoin/xyz")


async def test_unknown_coin_chart_is_not_found(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """/coins/{id}/… answering 404 'coin not found' raises SymbolNotFoundError."""
    mocked.get(CHART, status=404, payload={"error": "coin not found"})
    with pytest.raises(SymbolNotFoundError, match="coin not found"):
        await make_gecko().daily_bars("nosuchcoin", *WEEK)


async def test_beyond_365_days_is_plan_gated(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """Error 10012 (HTTP 401) is plan-gated, not an auth failure: the provider stays enabled."""
    mocked.get(CHART, status=401, payload=RANGE)
    provider = make_gecko()
    with pytest.raises(PlanGatedError, match="10012"):
        await provider.daily_bars("BTC-USD", date(2020, 1, 1), date(2020, 1, 31))
    assert provider.http.refusals.disabled is None


@pytest.mark.parametrize(
    "body",
    [status_error(10002, "API Key Missing"), status_error(10010, "Invalid API Key")],
)
async def test_refused_key_disables(
    make_gecko: MakeGecko, mocked: aioresponses, body: dict[str, Any]
) -> None:
    """Other 401 codes raise AuthError and disable the provider for the run."""
    mocked.get(CHART, status=401, payload=body)
    provider = make_gecko()
    with pytest.raises(AuthError):
        await provider.daily_bars("BTC-USD", *WEEK)
    assert provider.http.refusals.disabled is not None


async def test_429_is_retried_after_retry_after(
    make_gecko: MakeGecko, mocked: aioresponses
) -> None:
    """The 429 status body pauses (Retry-After: 0 here) and the retry succeeds."""
    mocked.get(CHART, status=429, payload=RATE, headers={"Retry-After": "0"})
    mocked.get(CHART, payload=DAILY)
    provider = make_gecko()
    assert len(await provider.daily_bars("BTC-USD", *WEEK)) == 3
    assert provider.http.rate_limited == 1


async def test_429_storm_raises_rate_limited(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """429 on every attempt ends in RateLimitedError after the retries."""
    mocked.get(CHART, status=429, payload=RATE, repeat=True)
    provider = make_gecko(retries=1)
    with pytest.raises(RateLimitedError):
        await provider.daily_bars("BTC-USD", *WEEK)
    assert provider.http.requests == 2


async def test_5xx_is_retried(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """A 503 is transient: retried, then the answer is used."""
    mocked.get(CHART, status=503, body="<html>Service Unavailable</html>")
    mocked.get(CHART, payload=DAILY)
    provider = make_gecko()
    assert len(await provider.daily_bars("BTC-USD", *WEEK)) == 3
    assert provider.http.retries == 1


async def test_malformed_chart_is_bad_response(make_gecko: MakeGecko, mocked: aioresponses) -> None:
    """A prices array of non-pairs raises BadResponseError."""
    mocked.get(CHART, payload={"prices": [["x", 1.0]]})
    with pytest.raises(BadResponseError, match="malformed market_chart"):
        await make_gecko().daily_bars("BTC-USD", *WEEK)
