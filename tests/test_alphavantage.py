"""Tests for finappd.providers.alphavantage: symbols, parsing, every error body, polite calls."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from finappd.errors import AuthError, PlanGatedError, QuotaExhaustedError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS, AlphaVantageProvider
from finappd.providers.alphavantage import (
    av_symbol,
    classify_payload,
    outputsize_for,
    parse_daily,
    parse_fx_daily,
    parse_quote,
)
from finappd.providers.base import Capability, Verdict
from finappd.records import Bar, FxRate, Quote
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/av"
QUERY = re.compile(r"^http://127\.0\.0\.1:9/av/query\?.*$")
DAILY: dict[str, Any] = {
    "Meta Data": {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": "IBM",
        "3. Last Refreshed": "2024-05-06",
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern",
    },
    "Time Series (Daily)": {
        "2024-05-06": {
            "1. open": "166.5000",
            "2. high": "168.6700",
            "3. low": "166.3800",
            "4. close": "168.6100",
            "5. volume": "4222266",
        },
        "2024-05-03": {
            "1. open": "165.0000",
            "2. high": "166.6100",
            "3. low": "164.9200",
            "4. close": "165.7100",
            "5. volume": "3400405",
        },
    },
}
QUOTE: dict[str, Any] = {
    "Global Quote": {
        "01. symbol": "MSFT",
        "02. open": "112.6300",
        "03. high": "113.1700",
        "04. low": "110.6400",
        "05. price": "112.1300",
        "06. volume": "29062853",
        "07. latest trading day": "2018-10-05",
        "08. previous close": "112.7900",
        "09. change": "-0.6600",
        "10. change percent": "-0.5852%",
    }
}
FX: dict[str, Any] = {
    "Meta Data": {"2. From Symbol": "EUR", "3. To Symbol": "USD", "6. Time Zone": "UTC"},
    "Time Series FX (Daily)": {
        "2024-05-07": {
            "1. open": "1.07",
            "2. high": "1.08",
            "3. low": "1.07",
            "4. close": "1.0755",
        },
        "2024-05-06": {
            "1. open": "1.07",
            "2. high": "1.08",
            "3. low": "1.07",
            "4. close": "1.0770",
        },
    },
}
PER_DAY = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. "
    "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to "
    "instantly remove all daily rate limits."
)
NOTE_2023 = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would "
    "like to target a higher API call frequency."
)
BURST = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests "
    "more sparingly (1 request per second)."
)
PREMIUM = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any "
    "of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all "
    "premium endpoints"
)
FULL = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium "
    "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium "
    "plans at https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)
BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
INVALID = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/#daily) for TIME_SERIES_DAILY."
)
MakeAv = Callable[..., AlphaVantageProvider]


@pytest.fixture
async def make_av() -> AsyncIterator[MakeAv]:
    """Build AV providers pointed at BASE with tiny backoff; close their sessions afterwards."""
    async with provider_factory(
        AlphaVantageProvider, "av", retries=2, base_url=BASE, api_key="test-key", rates=[]
    ) as factory:
        yield factory


def recent() -> tuple[date, date]:
    """A range compact output covers: the last ten days."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=10), today


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [
        ("IBM", "IBM"),
        ("BRK-B", "BRK.B"),
        ("VOD.L", "VOD.LON"),
        ("SHOP.TO", "SHOP.TRT"),
        ("SAP.DE", "SAP.DEX"),
        ("BRK.B", "BRK.B"),
    ],
)
def test_symbols_use_a_dot_and_av_suffixes(ticker: str, expected: str) -> None:
    """Share classes take a dot and exchange suffixes become AV's (LON, TRT, DEX)."""
    assert av_symbol(ticker) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (date(2026, 11, 15), "compact"),
        (date(2026, 7, 17), "compact"),
        (date(2026, 7, 16), "full"),
        (date(2020, 1, 1), "full"),
    ],
)
def test_outputsize_is_full_only_beyond_compact(start: date, expected: str) -> None:
    """compact (100 trading days) is used while it covers the start, else premium full."""
    assert outputsize_for(start, date(2026, 11, 24)) == expected


@pytest.mark.parametrize(
    ("payload", "verdict"),
    [
        (DAILY, Verdict.OK),
        (QUOTE, Verdict.OK),
        ({"Global Quote - DATA DELAYED": QUOTE["Global Quote"]}, Verdict.OK),
        (FX, Verdict.OK),
        ({"Information": PER_DAY}, Verdict.QUOTA_EXHAUSTED),
        ({"Note": NOTE_2023}, Verdict.RATE_LIMITED),
        ({"Information": BURST}, Verdict.RATE_LIMITED),
        ({"Information": PREMIUM}, Verdict.PLAN_GATED),
        ({"Information": FULL}, Verdict.PLAN_GATED),
        ({"Error Message": BAD_KEY}, Verdict.AUTH),
        ({"Information": BAD_KEY}, Verdict.AUTH),
        ({"Error Message": INVALID}, Verdict.NOT_FOUND),
        ({"Global Quote": {}}, Verdict.NOT_FOUND),
        ({}, Verdict.NOT_FOUND),
        ({"Meta Data": DAILY["Meta Data"]}, Verdict.EMPTY),
        ({"Meta Data": {}, "Time Series (Daily)": {}}, Verdict.EMPTY),
        ({"Error Message": "This API function (NOPE) does not exist."}, Verdict.BAD),
        ({"Surprise": 1}, Verdict.BAD),
        ([1, 2], Verdict.BAD),
    ],
)
def test_every_body_shape_is_classified(payload: object, verdict: Verdict) -> None:
    """Each HTTP 200 body of PROVIDERS.md section 3 gets its verdict (rate limit key flips too)."""
    assert classify_payload(payload).verdict is verdict


def test_burst_answer_asks_for_one_second() -> None:
    """The "1 request per second" answer carries a one-second retry_after."""
    assert classify_payload({"Information": BURST}).retry_after == 1.0


def test_daily_keys_newest_first_become_ascending_floats() -> None:
    """Date keys (newest first) and string numbers become ascending float bars, raw closes."""
    assert parse_daily(DAILY, "IBM", date(2024, 5, 1), date(2024, 5, 31)) == [
        Bar("IBM", date(2024, 5, 3), 165.0, 166.61, 164.92, 165.71, None, 3400405.0),
        Bar("IBM", date(2024, 5, 6), 166.5, 168.67, 166.38, 168.61, None, 4222266.0),
    ]


def test_adjusted_variant_renumbers_volume() -> None:
    """The adjusted variant's "6. volume" and "5. adjusted close" are read."""
    row = {"1. open": "1", "2. high": "2", "3. low": "1", "4. close": "2"}
    row |= {"5. adjusted close": "1.9", "6. volume": "7", "7. dividend amount": "0.0000"}
    payload = {"Time Series (Daily)": {"2024-05-06": row}}
    [bar] = parse_daily(payload, "IBM", date(2024, 5, 6), date(2024, 5, 6))
    assert (bar.adj_close, bar.volume) == (1.9, 7.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2018, 10, 8, 12, 0, tzinfo=UTC), datetime(2018, 10, 5, 20, 0, tzinfo=UTC)),
        (datetime(2018, 10, 5, 15, 0, tzinfo=UTC), datetime(2018, 10, 5, 15, 0, tzinfo=UTC)),
    ],
)
def test_quote_is_stamped_at_the_close_or_now(now: datetime, expected: datetime) -> None:
    """A quote is stamped at 16:00 New York of its trading day, or now while that is earlier."""
    assert parse_quote(QUOTE, "MSFT", now) == Quote("MSFT", expected, 112.13, None, 112.79)


def test_fx_daily_gives_ascending_rates() -> None:
    """FX_DAILY closes become FxRate rows, ascending."""
    assert parse_fx_daily(FX, "EUR", "USD", date(2024, 5, 1), date(2024, 5, 31)) == [
        FxRate("EUR", "USD", date(2024, 5, 6), 1.077),
        FxRate("EUR", "USD", date(2024, 5, 7), 1.0755),
    ]


def test_declares_kind_capabilities_limits_and_key() -> None:
    """AV is registered, needs a key, one in flight, 25/day quota, bars/quote/FX."""
    assert PROVIDER_KINDS["alphavantage"] is AlphaVantageProvider
    assert AlphaVantageProvider.capabilities == {
        Capability.DAILY_BARS,
        Capability.QUOTE,
        Capability.FX,
    }
    limits = AlphaVantageProvider.default_limits
    assert (limits.max_concurrency, limits.daily()) == (1, 25)
    assert AlphaVantageProvider.requires_key


async def test_daily_request_and_range_filter(make_av: MakeAv, mocked: aioresponses) -> None:
    """The request names the function, the mapped symbol, compact and the key; bars in range."""
    start, end = recent()
    row = {"1. open": "1", "2. high": "2", "3. low": "1", "4. close": "1.5", "5. volume": "9"}
    series = {(end - timedelta(days=i)).isoformat(): row for i in range(20)}
    mocked.get(QUERY, payload={"Meta Data": {}, "Time Series (Daily)": series})
    bars = await make_av().daily_bars("BRK-B", start, end)
    assert [b.ts for b in bars] == [start + timedelta(days=i) for i in range(11)]
    [(_, url)] = list(mocked.requests)
    assert dict(url.query) == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "BRK.B",
        "outputsize": "compact",
        "apikey": "test-key",
    }


async def test_old_range_asks_for_full_and_is_plan_gated(
    make_av: MakeAv, mocked: aioresponses
) -> None:
    """A start beyond compact asks for full; the free key's premium answer is PlanGatedError."""
    mocked.get(QUERY, payload={"Information": FULL})
    with pytest.raises(PlanGatedError):
        await make_av().daily_bars("IBM", date(2020, 1, 1), date(2020, 1, 31))
    [(_, url)] = list(mocked.requests)
    assert url.query["outputsize"] == "full"


async def test_day_limit_parks_without_further_requests(
    make_av: MakeAv, mocked: aioresponses
) -> None:
    """The 25/day Information raises QuotaExhaustedError, parks AV, and sends nothing more."""
    mocked.get(QUERY, payload={"Information": PER_DAY}, repeat=True)
    provider = make_av()
    for symbol in ("IBM", "MSFT"):
        with pytest.raises(QuotaExhaustedError):
            await provider.daily_bars(symbol, *recent())
    assert provider.http.requests == 1
    assert provider.http.refusals.parked_until is not None


async def test_minute_note_is_retried(make_av: MakeAv, mocked: aioresponses) -> None:
    """The pre-2024 per-minute Note pauses and retries; the next answer is used."""
    mocked.get(QUERY, payload={"Note": NOTE_2023})
    mocked.get(QUERY, payload=QUOTE)
    provider = make_av()
    quote = await provider.quote("MSFT")
    assert (quote.price, provider.http.requests) == (112.13, 2)


async def test_bad_key_disables_with_redacted_message(
    make_av: MakeAv, mocked: aioresponses
) -> None:
    """A refused key raises AuthError once, without the key, and disables the provider."""
    mocked.get(QUERY, payload={"Error Message": BAD_KEY}, repeat=True)
    provider = make_av(api_key="sekrit-av-key")
    with pytest.raises(AuthError) as info:
        await provider.quote("IBM")
    assert "sekrit-av-key" not in str(info.value)
    assert "apikey=REDACTED" in str(info.value)
    with pytest.raises(AuthError):
        await provider.quote("MSFT")
    assert provider.http.requests == 1


@pytest.mark.parametrize(
    "payload", [{"Error Message": INVALID}, {"Global Quote": {}}], ids=["series", "quote"]
)
async def test_unknown_symbol_is_not_found(
    make_av: MakeAv, mocked: aioresponses, payload: dict[str, Any]
) -> None:
    """Invalid API call and the empty Global Quote both raise SymbolNotFoundError."""
    mocked.get(QUERY, payload=payload)
    with pytest.raises(SymbolNotFoundError):
        await make_av().quote("ZZZ")


async def test_html_page_is_transient(make_av: MakeAv, mocked: aioresponses) -> None:
    """An HTML page instead of JSON is retried as transient."""
    mocked.get(QUERY, body="<html>502 Bad Gateway</html>", content_type="text/html")
    mocked.get(QUERY, payload=QUOTE)
    provider = make_av()
    await provider.quote("MSFT")
    assert provider.http.retries == 1


async def test_fx_rates_one_call_per_pair(make_av: MakeAv, mocked: aioresponses) -> None:
    """fx_rates asks FX_DAILY once per quote currency and tags each rate with its pair."""
    start, end = recent()
    row = {"1. open": "1", "2. high": "1", "3. low": "1", "4. close": "0.9"}
    mocked.get(QUERY, payload={"Time Series FX (Daily)": {end.isoformat(): row}}, repeat=True)
    rates = await make_av().fx_rates("USD", ["EUR", "GBP"], start, end)
    assert [(r.base, r.quote, r.day) for r in rates] == [("USD", "EUR", end), ("USD", "GBP", end)]
    sent = [url.query for (_, url) in mocked.requests]
    assert [(q["function"], q["from_symbol"], q["to_symbol"]) for q in sent] == [
        ("FX_DAILY", "USD", "EUR"),
        ("FX_DAILY", "USD", "GBP"),
    ]
