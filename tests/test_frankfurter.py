"""Tests for FrankfurterProvider over HTTP (aioresponses): range URL, redirects, every error."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from finappd.config import ProviderSettings
from finappd.errors import BadResponseError, RateLimitedError, ServerError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS, FrankfurterProvider, make_session
from finappd.providers.base import Capability
from finappd.records import FxRate
from tests.test_frankfurter_parse import RANGE
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/v1"
RATES = re.compile(r"^http://127\.0\.0\.1:9/v1/[0-9-]+\.\.[0-9-]+\?.*$")
JAN = (date(2024, 1, 1), date(2024, 1, 3))
MakeFrank = Callable[..., FrankfurterProvider]


@pytest.fixture
async def make_frank() -> AsyncIterator[MakeFrank]:
    """Build Frankfurter providers pointed at BASE with tiny backoff; close their sessions."""
    async with provider_factory(
        FrankfurterProvider, "frankfurter", retries=2, base_url=BASE, rates=[]
    ) as factory:
        yield factory


def test_declares_kind_capability_and_polite_default() -> None:
    """Frankfurter is registered, serves FX, takes no key, 5/second and 2 in flight by default."""
    assert PROVIDER_KINDS["frankfurter"] is FrankfurterProvider
    assert FrankfurterProvider.capabilities == {Capability.FX}
    assert not FrankfurterProvider.requires_key
    limits = FrankfurterProvider.default_limits
    assert ([str(r) for r in limits.windows()], limits.max_concurrency) == (["5/second"], 2)
    assert FrankfurterProvider.default_base_url == "https://api.frankfurter.dev/v1"


async def test_range_request_and_snapped_start(make_frank: MakeFrank, mocked: aioresponses) -> None:
    """One range request per call; the snapped-back Dec 29 publication is dropped."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body=json.dumps(RANGE))

    mocked.get(RATES, callback=record)
    rates = await make_frank().fx_rates("eur", ["USD", "gbp", "EUR"], *JAN)
    (url, kwargs) = seen[0]
    assert url.path == "/v1/2024-01-01..2024-01-03"
    assert dict(url.query) == {"base": "EUR", "symbols": "USD,GBP"}
    assert not {"Authorization", "apikey"} & set(kwargs["headers"])
    assert rates == [
        FxRate("EUR", "GBP", date(2024, 1, 2), 0.8676),
        FxRate("EUR", "USD", date(2024, 1, 2), 1.0956),
        FxRate("EUR", "GBP", date(2024, 1, 3), 0.86518),
        FxRate("EUR", "USD", date(2024, 1, 3), 1.0919),
    ]


async def test_old_host_redirect_is_followed(mocked: aioresponses) -> None:
    """api.frankfurter.app's 301 to api.frankfurter.dev/v1 is followed to the rates."""
    old = re.compile(r"^https://api\.frankfurter\.app/2024-01-01\.\.2024-01-03\?.*$")
    new = "https://api.frankfurter.dev/v1/2024-01-01..2024-01-03?base=EUR&symbols=USD"
    mocked.get(old, status=301, headers={"Location": new})
    mocked.get(new, payload=RANGE)
    session = make_session()
    try:
        settings = ProviderSettings(base_url="https://api.frankfurter.app", rates=[])
        provider = FrankfurterProvider("frankfurter", settings, session)
        rates = await provider.fx_rates("EUR", ["USD"], *JAN)
    finally:
        await session.close()
    assert [r.day for r in rates] == [date(2024, 1, 2), date(2024, 1, 3)]


async def test_same_base_and_quote_sends_nothing(make_frank: MakeFrank) -> None:
    """Asking EUR per EUR (Frankfurter's 422) or an empty range sends no request."""
    provider = make_frank()
    assert await provider.fx_rates("EUR", ["EUR"], *JAN) == []
    assert await provider.fx_rates("EUR", ["USD"], date(2024, 1, 3), date(2024, 1, 1)) == []
    assert provider.http.requests == 0


async def test_unknown_currency_is_not_found(make_frank: MakeFrank, mocked: aioresponses) -> None:
    """404 {"message":"not found"} raises SymbolNotFoundError labelled with the pair."""
    mocked.get(RATES, status=404, payload={"message": "not found"})
    provider = make_frank()
    with pytest.raises(SymbolNotFoundError, match="not found") as info:
        await provider.fx_rates("EUR", ["XXX"], *JAN)
    assert (info.value.symbol, provider.http.requests) == ("EUR/XXX", 1)


@pytest.mark.parametrize("message", ["bad currency pair", "invalid amount", "invalid date"])
async def test_422_is_bad_request_without_retry(
    make_frank: MakeFrank, mocked: aioresponses, message: str
) -> None:
    """A 422 message raises BadResponseError at once."""
    mocked.get(RATES, status=422, payload={"message": message}, repeat=True)
    provider = make_frank()
    with pytest.raises(BadResponseError, match=message):
        await provider.fx_rates("EUR", ["USD"], *JAN)
    assert provider.http.requests == 1


async def test_503_is_retried_then_raised(make_frank: MakeFrank, mocked: aioresponses) -> None:
    """A 503 (v2's "range too heavy") is transient: retried, then ServerError."""
    mocked.get(RATES, status=503, payload={"message": "narrow the request"}, repeat=True)
    provider = make_frank(retries=1)
    with pytest.raises(ServerError):
        await provider.fx_rates("EUR", ["USD"], *JAN)
    assert (provider.http.requests, provider.http.retries) == (2, 1)


async def test_cdn_429_is_retried(make_frank: MakeFrank, mocked: aioresponses) -> None:
    """A CDN 429 pauses and retries; a storm of them ends in RateLimitedError."""
    mocked.get(RATES, status=429, body="Too Many Requests", repeat=True)
    provider = make_frank(retries=1)
    with pytest.raises(RateLimitedError):
        await provider.fx_rates("EUR", ["USD"], *JAN)
    assert provider.http.rate_limited == 2


@pytest.mark.parametrize(
    ("symbol", "mapped"), [("EURUSD=X", "EUR/USD"), ("JPY=X", "USD/JPY"), ("gbp/chf", "GBP/CHF")]
)
async def test_map_symbol_writes_pairs_with_a_slash(
    make_frank: MakeFrank, symbol: str, mapped: str
) -> None:
    """Yahoo-style FX tickers and slash pairs map to BASE/QUOTE."""
    assert make_frank().map_symbol(symbol) == mapped


async def test_map_symbol_refuses_non_pairs(make_frank: MakeFrank) -> None:
    """A ticker that is not a currency pair is not found, naming the accepted forms."""
    with pytest.raises(SymbolNotFoundError, match="EUR/USD"):
        make_frank().map_symbol("AAPL")
