"""Tests for finappd.providers.stooq: symbols, CSV parsing, body classes and the polite calls."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime

import pytest
from aioresponses import aioresponses

from finappd.errors import AuthError, QuotaExhaustedError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS, StooqProvider
from finappd.providers.base import Capability, Verdict
from finappd.providers.stooq import (
    classify_body,
    parse_daily_csv,
    parse_quote_csv,
    stooq_symbol,
)
from finappd.records import Bar, Quote
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/stooq"
DAILY = re.compile(r"^http://127\.0\.0\.1:9/stooq/q/d/l/\?.*$")
LATEST = re.compile(r"^http://127\.0\.0\.1:9/stooq/q/l/\?.*$")
WEEK_URL = f"{BASE}/q/d/l/?s=aapl.us&i=d&d1=20250106&d2=20250110&apikey=REDACTED"
DAY_URL = f"{BASE}/q/d/l/?s=aapl.us&i=d&d1=20250104&d2=20250105&apikey=REDACTED"
FIXTURE = (
    "Date,Open,High,Low,Close,Volume\r\n"
    "2025-01-02,182.09,184.50,181.44,183.66,52134200\r\n"
    "2025-01-03,183.90,185.10,182.70,184.95,40112000\r\n"
)
INDEX = "Date,Open,High,Low,Close\r\n2025-01-02,5903.26,5935.09,5829.53,5868.55\r\n"
KEY_PAGE = (
    "<!DOCTYPE html><html><body>Downloading data requires an API key: "
    '<a href="/q/d/?s=spy.us&get_apikey">get apikey</a></body></html>'
)
BOT_WALL = (
    "<html><head><title>Just a moment</title></head><body><script>"
    "solve(sha256, difficulty); fetch('/__verify', {method: 'POST'})</script></body></html>"
)
QUOTE_HEADER = "Symbol,Date,Time,Open,High,Low,Close,Volume\r\n"
MakeStooq = Callable[..., StooqProvider]


@pytest.fixture
async def make_stooq() -> AsyncIterator[MakeStooq]:
    """Build Stooq providers pointed at BASE with tiny backoff; close their sessions afterwards."""
    async with provider_factory(
        StooqProvider, "stooq", retries=2, base_url=BASE, api_key="test-key", rates=[]
    ) as factory:
        yield factory


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [
        ("AAPL", "aapl.us"),
        ("BRK-B", "brk-b.us"),
        ("VOD.L", "vod.uk"),
        ("7203.T", "7203.jp"),
        ("SAP.DE", "sap.de"),
        ("0700.HK", "700.hk"),
        ("^GSPC", "^spx"),
        ("^DJI", "^dji"),
        ("^FTSE", "^ftse"),
        ("EURUSD=X", "eurusd"),
        ("BTC-USD", "btc.v"),
        ("tsco.uk", "tsco.uk"),
        ("XSP.TO", "xsp.to"),
    ],
)
def test_symbols_are_lowercase_with_a_market_suffix(ticker: str, expected: str) -> None:
    """Yahoo-style tickers map to Stooq's lowercase symbols with market suffixes."""
    assert stooq_symbol(ticker) == expected


@pytest.mark.parametrize(
    ("body", "url", "verdict"),
    [
        (FIXTURE, WEEK_URL, Verdict.OK),
        (INDEX, WEEK_URL, Verdict.OK),
        ("Date,Open,High,Low,Close,Volume\r\n", WEEK_URL, Verdict.EMPTY),
        ("No data", WEEK_URL, Verdict.NOT_FOUND),
        ("No data", DAY_URL, Verdict.EMPTY),
        ("Exceeded the daily hits limit", WEEK_URL, Verdict.QUOTA_EXHAUSTED),
        (KEY_PAGE, WEEK_URL, Verdict.AUTH),
        (BOT_WALL, WEEK_URL, Verdict.AUTH),
        ("<html><body>Przerwa techniczna</body></html>", WEEK_URL, Verdict.TRANSIENT),
        ("", WEEK_URL, Verdict.TRANSIENT),
        (QUOTE_HEADER + "ZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D", WEEK_URL, Verdict.NOT_FOUND),
        (QUOTE_HEADER + "AAPL.US,2025-01-03,22:00:07,1,2,1,2,5", WEEK_URL, Verdict.OK),
        ("Unexpected gibberish", WEEK_URL, Verdict.BAD),
    ],
)  # fmt: skip
def test_every_body_shape_is_classified(body: str, url: str, verdict: Verdict) -> None:
    """Each HTTP 200 body Stooq sends (PROVIDERS.md section 2) gets its verdict."""
    assert classify_body(body, url).verdict is verdict


def test_parses_the_fixture_ascending_within_range() -> None:
    """The CSV fixture gives floats, exchange-local dates, no adj_close, filtered to the range."""
    assert parse_daily_csv(FIXTURE, "AAPL", date(2025, 1, 3), date(2025, 1, 31)) == [
        Bar("AAPL", date(2025, 1, 3), 183.90, 185.10, 182.70, 184.95, None, 40112000.0)
    ]


def test_index_csv_without_volume_parses() -> None:
    """An index CSV has no Volume column; bars get volume None."""
    [bar] = parse_daily_csv(INDEX, "^GSPC", date(2025, 1, 1), date(2025, 1, 2))
    assert (bar.close, bar.volume) == (5868.55, None)


@pytest.mark.parametrize(
    ("day", "clock", "expected"),
    [
        ("2025-01-03", "22:00:07", datetime(2025, 1, 3, 21, 0, 7, tzinfo=UTC)),  # CET
        ("2025-07-03", "22:00:07", datetime(2025, 7, 3, 20, 0, 7, tzinfo=UTC)),  # CEST
    ],
)
def test_quote_time_is_warsaw_time(day: str, clock: str, expected: datetime) -> None:
    """The quote's Date/Time are read in Warsaw time, across DST, and stored in UTC."""
    text = f"{QUOTE_HEADER}AAPL.US,{day},{clock},1,2,1,1.5,9\r\n"
    assert parse_quote_csv(text, "AAPL") == Quote("AAPL", expected, 1.5)


def test_declares_kind_capabilities_limits_and_key() -> None:
    """Stooq is registered, needs a key, serves bars and quotes, one request in flight."""
    assert PROVIDER_KINDS["stooq"] is StooqProvider
    assert StooqProvider.capabilities == {Capability.DAILY_BARS, Capability.QUOTE}
    assert StooqProvider.requires_key
    assert StooqProvider.default_limits.max_concurrency == 1


async def test_daily_request_carries_symbol_range_and_key(
    make_stooq: MakeStooq, mocked: aioresponses
) -> None:
    """The request has s, i=d, d1/d2 as YYYYMMDD and the apikey; the CSV becomes bars."""
    mocked.get(DAILY, body=FIXTURE, content_type="text/csv")
    bars = await make_stooq().daily_bars("AAPL", date(2025, 1, 2), date(2025, 1, 3))
    assert [b.ts for b in bars] == [date(2025, 1, 2), date(2025, 1, 3)]
    [(_, url)] = [key for key in mocked.requests]
    assert dict(url.query) == {
        "s": "aapl.us",
        "i": "d",
        "d1": "20250102",
        "d2": "20250103",
        "apikey": "test-key",
    }


async def test_config_override_wins_over_the_mapping(
    make_stooq: MakeStooq, mocked: aioresponses
) -> None:
    """A per-ticker override in config is sent instead of the declared mapping."""
    mocked.get(DAILY, body=FIXTURE)
    await make_stooq(symbols={"PKO": "pko"}).daily_bars("PKO", date(2025, 1, 2), date(2025, 1, 3))
    [(_, url)] = list(mocked.requests)
    assert url.query["s"] == "pko"


async def test_no_data_over_a_week_is_not_found(
    make_stooq: MakeStooq, mocked: aioresponses
) -> None:
    """ "No data" for a full week raises SymbolNotFoundError with no key in its message."""
    mocked.get(DAILY, body="No data")
    with pytest.raises(SymbolNotFoundError) as info:
        await make_stooq().daily_bars("ZZZ", date(2025, 1, 6), date(2025, 1, 10))
    assert "test-key" not in str(info.value)
    assert "apikey=REDACTED" in str(info.value)


async def test_no_data_over_a_weekend_is_empty(make_stooq: MakeStooq, mocked: aioresponses) -> None:
    """ "No data" for a weekend is no bars, not an error."""
    mocked.get(DAILY, body="No data")
    assert await make_stooq().daily_bars("AAPL", date(2025, 1, 4), date(2025, 1, 5)) == []


async def test_daily_limit_parks_the_provider(make_stooq: MakeStooq, mocked: aioresponses) -> None:
    """ "Exceeded the daily hits limit" raises QuotaExhaustedError once and parks the provider."""
    mocked.get(DAILY, body="Exceeded the daily hits limit", repeat=True)
    provider = make_stooq()
    with pytest.raises(QuotaExhaustedError):
        await provider.daily_bars("AAPL", date(2025, 1, 6), date(2025, 1, 10))
    assert provider.http.refusals.parked_until is not None
    with pytest.raises(QuotaExhaustedError):
        await provider.daily_bars("MSFT", date(2025, 1, 6), date(2025, 1, 10))
    assert provider.http.requests == 1


@pytest.mark.parametrize("page", [KEY_PAGE, BOT_WALL])
async def test_key_page_and_bot_wall_disable_the_provider(
    make_stooq: MakeStooq, mocked: aioresponses, page: str
) -> None:
    """The API-key page and the bot wall raise AuthError once; later calls send nothing."""
    mocked.get(DAILY, body=page, content_type="text/html", repeat=True)
    provider = make_stooq()
    with pytest.raises(AuthError):
        await provider.daily_bars("AAPL", date(2025, 1, 6), date(2025, 1, 10))
    with pytest.raises(AuthError):
        await provider.daily_bars("MSFT", date(2025, 1, 6), date(2025, 1, 10))
    assert provider.http.requests == 1


async def test_outage_page_is_retried(make_stooq: MakeStooq, mocked: aioresponses) -> None:
    """An HTML outage page is transient: retried, and the next answer is used."""
    mocked.get(DAILY, body="<html>maintenance</html>", content_type="text/html")
    mocked.get(DAILY, body=FIXTURE)
    provider = make_stooq()
    bars = await provider.daily_bars("AAPL", date(2025, 1, 2), date(2025, 1, 3))
    assert (len(bars), provider.http.requests, provider.http.retries) == (2, 2, 1)


async def test_quote_reads_the_latest_csv(make_stooq: MakeStooq, mocked: aioresponses) -> None:
    """The /q/l/ CSV gives a Quote; its request asks for CSV with the header and the key."""
    body = QUOTE_HEADER + "AAPL.US,2025-01-03,22:00:07,1,2,1,2.5,9\r\n"
    mocked.get(LATEST, body=body)
    quote = await make_stooq().quote("AAPL")
    assert (quote.price, quote.ts) == (2.5, datetime(2025, 1, 3, 21, 0, 7, tzinfo=UTC))
    [(_, url)] = list(mocked.requests)
    assert (url.query["s"], url.query["e"], url.query["apikey"]) == ("aapl.us", "csv", "test-key")


async def test_unknown_quote_is_not_found(make_stooq: MakeStooq, mocked: aioresponses) -> None:
    """An N/D quote row raises SymbolNotFoundError."""
    body = QUOTE_HEADER + "ZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\r\n"
    mocked.get(LATEST, body=body)
    with pytest.raises(SymbolNotFoundError):
        await make_stooq().quote("ZZZ")
