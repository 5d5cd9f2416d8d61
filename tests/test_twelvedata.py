"""Tests for TwelveDataProvider over HTTP (aioresponses): request, parsing, every error shape."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from finappd.errors import (
    AuthError,
    BadResponseError,
    PlanGatedError,
    QuotaExhaustedError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.providers import PROVIDER_KINDS, TwelveDataProvider
from finappd.providers.base import Capability
from finappd.records import FxRate
from tests.test_provider_support import provider_factory
from tests.test_twelvedata_parse import AAPL, DAY, EURUSD, MINUTE, QUOTE, error

BASE = "http://127.0.0.1:9"
SERIES = re.compile(r"^http://127\.0\.0\.1:9/time_series\?.*$")
QUOTE_URL = re.compile(r"^http://127\.0\.0\.1:9/quote\?.*$")
KEY = "test-key"
JAN = (date(2024, 1, 2), date(2024, 1, 3))
MakeTwelve = Callable[..., TwelveDataProvider]


@pytest.fixture
async def make_twelve() -> AsyncIterator[MakeTwelve]:
    """Build Twelve Data providers pointed at BASE with tiny backoff; close their sessions."""
    async with provider_factory(
        TwelveDataProvider, "twelvedata", retries=2, base_url=BASE, api_key=KEY, rates=[]
    ) as factory:
        yield factory


def test_declares_kind_capabilities_limits_and_key() -> None:
    """Twelve Data is registered, needs a key, 8/minute and 800/day reset at 00:00 UTC."""
    assert PROVIDER_KINDS["twelvedata"] is TwelveDataProvider
    assert TwelveDataProvider.capabilities == {
        Capability.DAILY_BARS,
        Capability.QUOTE,
        Capability.FX,
        Capability.CRYPTO,
    }
    assert TwelveDataProvider.requires_key
    limits = TwelveDataProvider.default_limits
    assert [str(r) for r in limits.windows()] == ["8/minute"]
    assert (limits.daily(), limits.quota_tz) == (800, "UTC")


async def test_request_params_and_header_key(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """One symbol per call, dates with end a day late, ascending; the key only in a header."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body=json.dumps(AAPL))

    mocked.get(SERIES, callback=record)
    bars = await make_twelve().daily_bars("BRK-B", *JAN)
    assert [b.symbol for b in bars] == ["BRK-B", "BRK-B"]
    (url, kwargs) = seen[0]
    assert dict(url.query) == {
        "symbol": "BRK.B",
        "interval": "1day",
        "start_date": "2024-01-02",
        "end_date": "2024-01-04",
        "order": "asc",
        "outputsize": "5000",
        "timezone": "Exchange",
    }
    assert kwargs["headers"]["Authorization"] == f"apikey {KEY}"
    assert KEY not in str(url)


async def test_bars_are_floats_ascending(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """String values become floats, oldest first, no adjusted close."""
    mocked.get(SERIES, payload=AAPL)
    bars = await make_twelve().daily_bars("AAPL", *JAN)
    assert [(b.ts, b.close, b.adj_close) for b in bars] == [
        (date(2024, 1, 2), 185.64, None),
        (date(2024, 1, 3), 184.25, None),
    ]


async def test_fx_rates_one_request_per_pair(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """fx_rates asks EUR/USD and EUR/GBP separately (no batch), skipping EUR/EUR."""
    symbols: list[str] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        symbols.append(url.query["symbol"])
        return CallbackResult(status=200, body=json.dumps(EURUSD))

    mocked.get(SERIES, callback=record, repeat=True)
    rates = await make_twelve().fx_rates("eur", ["USD", "EUR", "gbp", "USD"], *JAN)
    assert symbols == ["EUR/USD", "EUR/GBP"]
    assert rates[:2] == [
        FxRate("EUR", "USD", date(2024, 1, 2), 1.0942),
        FxRate("EUR", "USD", date(2024, 1, 3), 1.0919),
    ]
    assert [r.quote for r in rates[2:]] == ["GBP", "GBP"]


async def test_quote_from_quote_endpoint(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """/quote gives the close as the latest price with its previous close."""
    mocked.get(QUOTE_URL, payload=QUOTE)
    quote = await make_twelve().quote("AAPL")
    assert (quote.price, quote.previous_close, quote.currency) == (184.25, 185.64, "USD")


@pytest.mark.parametrize("status", [200, 429])
async def test_minute_credits_pause_then_retry(
    make_twelve: MakeTwelve, mocked: aioresponses, status: int
) -> None:
    """The per-minute message (HTTP 200 or 429) pauses, then the retry succeeds."""
    mocked.get(SERIES, status=status, payload=error(429, MINUTE), headers={"Retry-After": "0"})
    mocked.get(SERIES, payload=AAPL)
    provider = make_twelve()
    assert len(await provider.daily_bars("AAPL", *JAN)) == 2
    assert (provider.http.requests, provider.http.rate_limited) == (2, 1)


async def test_minute_credits_without_header_fail_fast_past_backoff_max(
    make_twelve: MakeTwelve, mocked: aioresponses
) -> None:
    """Without Retry-After the wait is until the next minute; longer than backoff_max fails."""
    mocked.get(SERIES, payload=error(429, MINUTE), repeat=True)
    provider = make_twelve(backoff_max=timedelta(milliseconds=500))
    with pytest.raises(RateLimitedError) as info:
        await provider.daily_bars("AAPL", *JAN)
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 1
    assert provider.http.requests == 1


@pytest.mark.parametrize("status", [200, 429])
async def test_daily_credits_park_until_utc_midnight(
    make_twelve: MakeTwelve, mocked: aioresponses, status: int
) -> None:
    """The daily message parks the provider until 00:00 UTC; the next call sends nothing."""
    mocked.get(SERIES, status=status, payload=error(429, DAY), repeat=True)
    provider = make_twelve()
    with pytest.raises(QuotaExhaustedError):
        await provider.daily_bars("AAPL", *JAN)
    assert provider.http.refusals.parked_until is not None
    assert (
        abs(
            (
                provider.http.refusals.parked_until - provider.ledger.resets_at("daily")
            ).total_seconds()
        )
        < 5
    )
    with pytest.raises(QuotaExhaustedError, match="parked"):
        await provider.daily_bars("MSFT", *JAN)
    assert provider.http.requests == 1


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, error(401, "Invalid API key"), AuthError),
        (401, error(401, "**apikey** parameter is incorrect or not specified."), AuthError),
        (200, error(400, "**symbol** not found: ZZZZ. Please specify it correctly."),
         SymbolNotFoundError),
        (404, error(404, "**symbol** not found: ZZZZ."), SymbolNotFoundError),
        (200, error(403, "**symbol** EUR is not available with your plan."), PlanGatedError),
        (404, error(404, "**symbol** ABC is not available with your plan."), PlanGatedError),
        (200, error(400, "**interval** is not supported"), BadResponseError),
    ],
)  # fmt: skip
async def test_error_bodies_raise_their_type_without_retry(
    make_twelve: MakeTwelve,
    mocked: aioresponses,
    status: int,
    body: dict[str, Any],
    kind: type[Exception],
) -> None:
    """Auth, not found, plan-gated and bad-request bodies raise at once, HTTP 200 or not."""
    mocked.get(SERIES, status=status, payload=body, repeat=True)
    provider = make_twelve()
    with pytest.raises(kind) as info:
        await provider.daily_bars("ZZZZ", *JAN)
    assert provider.http.requests == 1
    assert KEY not in str(info.value)


async def test_no_data_on_dates_is_empty(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """'No data is available on the specified dates' gives no bars and no error."""
    body = error(400, "No data is available on the specified dates. Try setting different dates.")
    mocked.get(SERIES, payload=body)
    provider = make_twelve()
    assert await provider.daily_bars("AAPL", *JAN) == []
    assert provider.http.errors == 0


async def test_server_error_code_is_retried(make_twelve: MakeTwelve, mocked: aioresponses) -> None:
    """A code-500 body is transient: retried, and the next good answer is used."""
    mocked.get(SERIES, payload=error(500, "Internal error"))
    mocked.get(SERIES, payload=AAPL)
    provider = make_twelve()
    assert len(await provider.daily_bars("AAPL", *JAN)) == 2
    assert provider.http.retries == 1


async def test_malformed_values_are_bad_response(
    make_twelve: MakeTwelve, mocked: aioresponses
) -> None:
    """A non-numeric price string raises BadResponseError naming time_series."""
    body = {"meta": {}, "values": [{"datetime": "2024-01-02", "close": "n/a"}], "status": "ok"}
    mocked.get(SERIES, payload=body)
    with pytest.raises(BadResponseError, match="malformed time_series"):
        await make_twelve().daily_bars("AAPL", *JAN)
