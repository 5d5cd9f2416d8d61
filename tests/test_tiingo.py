"""Tests for TiingoProvider over HTTP (aioresponses): request, auth, parsing, every error shape."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from finappd.errors import (
    AuthError,
    BadResponseError,
    QuotaExhaustedError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.providers import PROVIDER_KINDS, TiingoProvider
from finappd.providers.base import Capability
from finappd.records import Bar, Dividend, Split
from tests.test_provider_support import provider_factory
from tests.test_tiingo_parse import DAILY, GOOGL_2015, HOURLY, MONTHLY, row

BASE = "http://127.0.0.1:9"
PRICES = re.compile(r"^http://127\.0\.0\.1:9/tiingo/daily/[^/]+/prices\?.*$")
KEY = "test-key"
JAN = (date(2015, 1, 1), date(2015, 1, 5))
MakeTiingo = Callable[..., TiingoProvider]


@pytest.fixture
async def make_tiingo() -> AsyncIterator[MakeTiingo]:
    """Build Tiingo providers pointed at BASE with tiny backoff; close their sessions after."""
    async with provider_factory(
        TiingoProvider, "tiingo", retries=2, base_url=BASE, api_key=KEY, rates=[]
    ) as factory:
        yield factory


def test_declares_kind_capabilities_limits_and_key() -> None:
    """Tiingo is registered, serves bars and actions, needs a key, 50/hour and 1000/day."""
    assert PROVIDER_KINDS["tiingo"] is TiingoProvider
    assert TiingoProvider.capabilities == {Capability.DAILY_BARS, Capability.ACTIONS}
    assert TiingoProvider.requires_key
    limits = TiingoProvider.default_limits
    assert [str(r) for r in limits.windows()] == ["50/hour"]
    assert (limits.daily(), limits.monthly()) == (1000, None)


async def test_request_sends_the_key_in_the_header_only(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """The path holds Tiingo's symbol, the query the dates; the key is only in Authorization."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body=json.dumps(GOOGL_2015))

    mocked.get(PRICES, callback=record)
    await make_tiingo().daily_bars("BRK.B", *JAN)
    (url, kwargs) = seen[0]
    assert url.path == "/tiingo/daily/brk-b/prices"
    assert dict(url.query) == {
        "startDate": "2015-01-01",
        "endDate": "2015-01-05",
        "format": "json",
        "resampleFreq": "daily",
    }
    assert kwargs["headers"]["Authorization"] == f"Token {KEY}"
    assert KEY not in str(url)


async def test_fixture_gives_raw_bars_with_adj_close(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """The tiingo-python fixture gives two bars dated by their UTC date part."""
    mocked.get(PRICES, payload=GOOGL_2015)
    bars = await make_tiingo().daily_bars("GOOGL", *JAN)
    assert bars[0] == Bar(
        "GOOGL", date(2015, 1, 2), 532.6, 535.8, 527.88, 529.55, 529.55, 1327870.0
    )
    assert [b.ts for b in bars] == [date(2015, 1, 2), date(2015, 1, 5)]


async def test_actions_come_from_the_same_rows(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """divCash and splitFactor rows become a dividend and a 4:1 split."""
    rows = [row("2020-08-07", 444.45, divCash=0.82), row("2020-08-31", 129.04, splitFactor=4.0)]
    mocked.get(PRICES, payload=rows)
    dividends, splits = await make_tiingo().actions("AAPL", date(2020, 8, 1), date(2020, 8, 31))
    assert dividends == [Dividend("AAPL", date(2020, 8, 7), 0.82, "USD")]
    assert splits == [Split("AAPL", date(2020, 8, 31), 4.0, 1.0)]


async def test_symbol_override_wins(make_tiingo: MakeTiingo, mocked: aioresponses) -> None:
    """A [providers.tiingo.symbols] override replaces the declared mapping in the path."""
    seen: list[Any] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(url)
        return CallbackResult(status=200, body="[]")

    mocked.get(PRICES, callback=record)
    provider = make_tiingo(symbols={"VOD.L": "vod"})
    assert await provider.daily_bars("VOD.L", *JAN) == []
    assert seen[0].path == "/tiingo/daily/vod/prices"


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, '{"detail":"Error: Ticker \'ZZZZ\' not found"}', "application/json"),
        (200, "Error: Ticker 'ZZZZ' not found", "text/plain"),
    ],
)
async def test_unknown_ticker_is_not_found_without_retry(
    make_tiingo: MakeTiingo, mocked: aioresponses, status: int, body: str, content_type: str
) -> None:
    """404 JSON detail and the plain-text 200 'not found' raise SymbolNotFoundError at once."""
    mocked.get(PRICES, status=status, body=body, content_type=content_type, repeat=True)
    provider = make_tiingo()
    with pytest.raises(SymbolNotFoundError, match="Ticker 'ZZZZ' not found") as info:
        await provider.daily_bars("ZZZZ", *JAN)
    assert (info.value.symbol, info.value.status) == ("ZZZZ", status)
    assert provider.http.requests == 1


@pytest.mark.parametrize(("status", "body"), [(401, '{"detail":"Invalid token."}'), (403, "None")])
async def test_refused_key_disables_the_provider(
    make_tiingo: MakeTiingo, mocked: aioresponses, status: int, body: str
) -> None:
    """401 'Invalid token.' (or 403 None) raises AuthError once; later calls send nothing."""
    mocked.get(PRICES, status=status, body=body, repeat=True)
    provider = make_tiingo()
    with pytest.raises(AuthError) as info:
        await provider.daily_bars("AAPL", *JAN)
    assert KEY not in str(info.value)
    with pytest.raises(AuthError, match="disabled"):
        await provider.daily_bars("MSFT", *JAN)
    assert provider.http.requests == 1


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (429, json.dumps({"detail": HOURLY}), "application/json"),
        (200, HOURLY, "text/plain"),
    ],
)
async def test_hourly_limit_pauses_until_the_next_hour(
    make_tiingo: MakeTiingo, mocked: aioresponses, status: int, body: str, content_type: str
) -> None:
    """The hourly message pauses the provider past backoff_max, so the call fails fast."""
    mocked.get(PRICES, status=status, body=body, content_type=content_type, repeat=True)
    provider = make_tiingo(backoff_max=timedelta(seconds=1))
    provider.ledger.clock = lambda: datetime(2024, 3, 5, 14, 20, tzinfo=UTC)  # 40 min to go
    with pytest.raises(RateLimitedError) as info:
        await provider.daily_bars("AAPL", *JAN)
    assert info.value.retry_after == 2400.0
    assert provider.http.pause.remaining() > 2000
    with pytest.raises(RateLimitedError, match="paused"):
        await provider.daily_bars("MSFT", *JAN)
    assert provider.http.requests == 1


async def test_plain_429_is_retried_then_succeeds(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """A 429 without Tiingo's hourly text is retried after a short pause."""
    mocked.get(
        PRICES, status=429, body='{"detail":"Too many requests"}', headers={"Retry-After": "0"}
    )
    mocked.get(PRICES, payload=GOOGL_2015)
    provider = make_tiingo()
    assert len(await provider.daily_bars("GOOGL", *JAN)) == 2
    assert (provider.http.requests, provider.http.rate_limited) == (2, 1)


@pytest.mark.parametrize(
    ("status", "body", "which"),
    [
        (200, DAILY, "daily"),
        (429, json.dumps({"detail": DAILY}), "daily"),
        (200, MONTHLY, "monthly"),
    ],
)
async def test_spent_allocation_parks_the_provider(
    make_tiingo: MakeTiingo, mocked: aioresponses, status: int, body: str, which: str
) -> None:
    """Daily and monthly-symbol messages raise QuotaExhaustedError and park until the reset."""
    mocked.get(PRICES, status=status, body=body, content_type="text/plain", repeat=True)
    provider = make_tiingo()
    with pytest.raises(QuotaExhaustedError):
        await provider.daily_bars("AAPL", *JAN)
    assert provider.http.refusals.parked_until == provider.ledger.resets_at(which)
    with pytest.raises(QuotaExhaustedError, match="parked"):
        await provider.daily_bars("MSFT", *JAN)
    assert provider.http.requests == 1


async def test_maintenance_page_is_retried_then_bad_response(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """An HTML page with HTTP 200 is transient: retried, then BadResponseError."""
    page = "<html><body>Tiingo is down for maintenance</body></html>"
    mocked.get(PRICES, status=200, body=page, content_type="text/html", repeat=True)
    provider = make_tiingo(retries=2)
    with pytest.raises(BadResponseError, match="maintenance"):
        await provider.daily_bars("AAPL", *JAN)
    assert (provider.http.requests, provider.http.retries) == (3, 2)


async def test_empty_array_is_no_bars(make_tiingo: MakeTiingo, mocked: aioresponses) -> None:
    """A known ticker with no rows in the range gives no bars and no error."""
    mocked.get(PRICES, payload=[])
    provider = make_tiingo()
    assert await provider.daily_bars("AAPL", *JAN) == []
    assert provider.http.errors == 0


async def test_truncated_json_is_bad_response(
    make_tiingo: MakeTiingo, mocked: aioresponses
) -> None:
    """A truncated array raises BadResponseError chained to the decode error."""
    mocked.get(PRICES, status=200, body=json.dumps(GOOGL_2015)[:90])
    with pytest.raises(BadResponseError, match="not JSON") as info:
        await make_tiingo().daily_bars("GOOGL", *JAN)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


async def test_reversed_range_sends_nothing(make_tiingo: MakeTiingo) -> None:
    """end before start gives no bars and no actions without a request."""
    provider = make_tiingo()
    assert await provider.daily_bars("AAPL", date(2024, 3, 5), date(2024, 3, 4)) == []
    assert await provider.actions("AAPL", date(2024, 3, 5), date(2024, 3, 4)) == ([], [])
    assert provider.http.requests == 0
