"""Tests for finappd.providers.yahoo: URL, parsing, local trading dates and error classes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

import finappd.providers
from finappd.config import ProviderSettings
from finappd.errors import (
    AuthError,
    BadResponseError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.providers import PROVIDER_KINDS, YahooProvider, make_provider, make_session
from finappd.providers.base import Capability
from finappd.providers.yahoo import chart_window
from finappd.records import Bar, Dividend, Quote, Split
from tests.test_provider_support import FakeClock, provider_factory
from tests.test_yahoo_parse import XSP_TO, Row, at, chart, chart_error

BASE = "http://127.0.0.1:9"
CHART = re.compile(r"^http://127\.0\.0\.1:9/v8/finance/chart/.*$")
MakeYahoo = Callable[..., YahooProvider]


@pytest.fixture
async def make_yahoo() -> AsyncIterator[MakeYahoo]:
    """Build Yahoo providers pointed at BASE with fast backoff; close their sessions afterwards."""
    async with provider_factory(
        YahooProvider, "yahoo", retries=2, kind="yahoo", base_url=BASE, rate=None
    ) as factory:
        yield factory


async def test_parses_toronto_fixture(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """The beanprice XSP.TO fixture gives two bars dated in Toronto, with adjclose and volume."""
    mocked.get(CHART, payload=XSP_TO)
    bars = await make_yahoo().daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))
    assert bars == [
        Bar("XSP.TO", date(2017, 10, 27), 29.36, 29.51, 29.34, 29.48, 29.236, 160800.0),
        Bar("XSP.TO", date(2017, 10, 30), 29.43, 29.49, 29.35, 29.41, 29.167, 118700.0),
    ]


async def test_tokyo_bars_take_the_tokyo_date(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """7203.T bars stamped 00:00 UTC (09:00 JST) are dated in Tokyo, edges included."""
    rows: list[Row] = [
        (at("UTC", 2024, 3, 1, 0, 0), 1.0, 1.0, 1.0, 3500.0, 1e6, None),
        (at("UTC", 2024, 3, 4, 0, 0), 1.0, 1.0, 1.0, 3510.0, 1e6, None),
        (at("UTC", 2024, 3, 5, 0, 0), 1.0, 1.0, 1.0, 3520.0, 1e6, None),
        (at("UTC", 2024, 3, 6, 0, 0), 1.0, 1.0, 1.0, 3530.0, 1e6, None),
    ]
    mocked.get(CHART, payload=chart("7203.T", "Asia/Tokyo", rows))
    bars = await make_yahoo().daily_bars("7203.T", date(2024, 3, 4), date(2024, 3, 5))
    assert [(b.ts, b.close) for b in bars] == [
        (date(2024, 3, 4), 3510.0),
        (date(2024, 3, 5), 3520.0),
    ]


@pytest.mark.parametrize(
    ("symbol", "path"),
    [
        ("^GSPC", "/v8/finance/chart/%5EGSPC"),
        ("BRK-B", "/v8/finance/chart/BRK-B"),
        ("EURUSD=X", "/v8/finance/chart/EURUSD%3DX"),
        ("XSP.TO", "/v8/finance/chart/XSP.TO"),
    ],
)
async def test_request_url_headers_and_params(
    make_yahoo: MakeYahoo, mocked: aioresponses, symbol: str, path: str
) -> None:
    """The symbol is percent-encoded in the path; the query and browser headers are Yahoo's."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body=json.dumps(chart(symbol, "UTC", [])))

    mocked.get(CHART, callback=record)
    await make_yahoo().daily_bars(symbol, date(2024, 3, 4), date(2024, 3, 5))
    (url, kwargs) = seen[0]
    assert url.raw_path == path
    assert dict(url.query) == {
        "period1": str(chart_window(date(2024, 3, 4), date(2024, 3, 5))[0]),
        "period2": str(chart_window(date(2024, 3, 4), date(2024, 3, 5))[1]),
        "interval": "1d",
        "events": "div,splits",
        "includePrePost": "false",
    }
    assert "Chrome/" in kwargs["headers"]["User-Agent"]
    assert kwargs["headers"]["Accept"].startswith("application/json")


@pytest.mark.parametrize("status", [404, 200])
async def test_not_found_raises_symbol_not_found(
    make_yahoo: MakeYahoo, mocked: aioresponses, status: int
) -> None:
    """chart.error 'Not Found' (HTTP 404, or the same body with 200) is SymbolNotFoundError."""
    body = chart_error("Not Found", "No data found, symbol may be delisted")
    mocked.get(CHART, status=status, payload=body, repeat=True)
    provider = make_yahoo()
    with pytest.raises(SymbolNotFoundError) as info:
        await provider.daily_bars("NOPE", date(2024, 3, 4), date(2024, 3, 5))
    assert (info.value.symbol, info.value.provider, info.value.status) == ("NOPE", "yahoo", status)
    assert "delisted" in str(info.value)
    assert (provider.http.requests, provider.http.retries, provider.http.errors) == (1, 0, 1)


async def test_429_with_retry_after_is_retried_after_the_pause(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A plain-text 429 with Retry-After: 1 pauses a second, then the retry succeeds."""
    mocked.get(
        CHART,
        status=429,
        body="Too Many Requests",
        content_type="text/plain",
        headers={"Retry-After": "1"},
    )
    mocked.get(CHART, payload=XSP_TO)
    clock = FakeClock()
    provider = make_yahoo(clock=clock)
    started = clock()
    bars = await provider.daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))
    assert len(bars) == 2
    assert clock() - started >= 0.95
    assert (provider.http.requests, provider.http.retries, provider.http.rate_limited) == (2, 1, 1)


async def test_429_every_time_raises_rate_limited(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """'Edge: Too Many Requests' on every attempt ends in RateLimitedError with the symbol."""
    mocked.get(CHART, status=429, body="Edge: Too Many Requests", repeat=True)
    provider = make_yahoo(retries=2)
    with pytest.raises(RateLimitedError) as info:
        await provider.daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert (info.value.symbol, info.value.status) == ("AAPL", 429)
    assert (provider.http.requests, provider.http.rate_limited) == (3, 3)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, chart_error("Bad Request", "Data doesn't exist for startDate = 1, endDate = 2")),
        (422, chart_error("Unprocessable Entity", "5m data not available for startTime=1")),
    ],
)
async def test_no_data_errors_are_empty(
    make_yahoo: MakeYahoo, mocked: aioresponses, status: int, body: dict[str, Any]
) -> None:
    """'Data doesn't exist' (400) and 422 mean no bars, not a failure."""
    mocked.get(CHART, status=status, payload=body)
    provider = make_yahoo()
    assert await provider.daily_bars("AAPL", date(1990, 1, 1), date(1990, 1, 5)) == []
    assert provider.http.errors == 0


async def test_html_outage_page_is_retried_then_bad_response(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """An HTML 'Will be right back' page with HTTP 200 is retried, then BadResponseError."""
    page = "<html><body>Will be right back...</body></html>"
    mocked.get(CHART, status=200, body=page, content_type="text/html", repeat=True)
    provider = make_yahoo(retries=2)
    with pytest.raises(BadResponseError) as info:
        await provider.daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert (info.value.status, info.value.symbol) == (200, "AAPL")
    assert (provider.http.requests, provider.http.retries) == (3, 2)


async def test_html_outage_then_json_succeeds(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """An outage page followed by a good answer returns the bars."""
    mocked.get(CHART, status=200, body="<html>Will be right back</html>", content_type="text/html")
    mocked.get(CHART, payload=XSP_TO)
    provider = make_yahoo()
    assert len(await provider.daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))) == 2
    assert provider.http.retries == 1


async def test_truncated_json_is_retried_then_bad_response(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A cut-off JSON body is transient (PROVIDERS.md §10.3): retried, then BadResponseError."""
    mocked.get(CHART, status=200, body=json.dumps(XSP_TO)[:80], repeat=True)
    provider = make_yahoo(retries=1)
    with pytest.raises(BadResponseError, match="not JSON") as info:
        await provider.daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))
    assert info.value.status == 200
    assert (provider.http.requests, provider.http.retries) == (2, 1)


async def test_truncated_json_then_good_answer_succeeds(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """One cut-off body followed by the whole chart returns the bars."""
    mocked.get(CHART, status=200, body=json.dumps(XSP_TO)[:80])
    mocked.get(CHART, payload=XSP_TO)
    assert len(await make_yahoo().daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"finance": {"result": None}}, "no 'chart'"),
        ({"chart": {"result": [], "error": None}}, "neither a result nor an error"),
        ({"chart": {"result": [{"timestamp": [1], "meta": {}}], "error": None}}, "malformed"),
        ({"chart": {"result": [{"meta": {}, "timestamp": "soon"}], "error": None}}, "malformed"),
    ],
)
async def test_wrong_shape_json_is_retried_then_bad_response(
    make_yahoo: MakeYahoo, mocked: aioresponses, body: dict[str, Any], reason: str
) -> None:
    """JSON that is not a chart result is retried as transient, then names the reason."""
    mocked.get(CHART, status=200, payload=body, repeat=True)
    provider = make_yahoo(retries=1)
    with pytest.raises(BadResponseError, match=re.escape(reason)) as info:
        await provider.daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert info.value.provider == "yahoo"
    assert provider.http.retries == 1


async def test_other_chart_errors_are_bad_response_without_retry(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A chart.error other than Not Found / Data doesn't exist is BAD: no retry."""
    mocked.get(CHART, status=200, payload=chart_error("Internal Error", "oops"), repeat=True)
    provider = make_yahoo()
    with pytest.raises(BadResponseError, match="Internal Error: oops"):
        await provider.daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert (provider.http.requests, provider.http.retries) == (1, 0)


async def test_non_numeric_price_is_bad_response_chained(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A chart whose arrays hold strings fails parsing: BadResponseError chained to the cause."""
    body = chart(
        "AAPL",
        "America/New_York",
        [(at("America/New_York", 2024, 3, 4, 9, 30), 1.0, 1.0, 1.0, 2.0, 1.0, None)],
    )
    body["chart"]["result"][0]["indicators"]["quote"][0]["close"] = ["2.0"]
    mocked.get(CHART, payload=body)
    with pytest.raises(BadResponseError, match="malformed chart") as info:
        await make_yahoo().daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert isinstance(info.value.__cause__, TypeError)


async def test_5xx_then_200_succeeds(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """A 502 then a good answer returns the bars and counts one retry."""
    mocked.get(CHART, status=502, body="Bad Gateway", content_type="text/plain")
    mocked.get(CHART, payload=XSP_TO)
    provider = make_yahoo()
    assert len(await provider.daily_bars("XSP.TO", date(2017, 10, 27), date(2017, 10, 30))) == 2
    assert (provider.http.requests, provider.http.retries, provider.http.errors) == (2, 1, 0)


async def test_invalid_crumb_401_is_auth_error(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """A 401 'Invalid Crumb' raises AuthError without retrying."""
    body = {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "x"}}}
    mocked.get(CHART, status=401, payload=body, repeat=True)
    provider = make_yahoo()
    with pytest.raises(AuthError):
        await provider.daily_bars("AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert provider.http.requests == 1


async def test_registry_makes_providers_by_kind_or_name() -> None:
    """make_provider picks the class by settings.kind, else by name; unknown kinds fail."""
    session = make_session()
    try:
        by_name = make_provider("yahoo", ProviderSettings(), session)
        by_kind = make_provider("yahoo_eu", ProviderSettings(kind="yahoo"), session)
        assert isinstance(by_name, YahooProvider)
        assert isinstance(by_kind, YahooProvider)
        assert by_kind.name == "yahoo_eu"
        assert by_name.base_url == "https://query2.finance.yahoo.com"
        assert PROVIDER_KINDS["yahoo"] is YahooProvider
        with pytest.raises(ValueError, match="unknown provider kind"):
            make_provider("nope", ProviderSettings(), session)
    finally:
        await session.close()


def test_exported_members() -> None:
    """finappd.providers exports the base class, the registry helpers and YahooProvider."""
    assert {
        "BaseProvider",
        "YahooProvider",
        "make_provider",
        "make_session",
        "redact_url",
        "PROVIDER_KINDS",
    } <= set(finappd.providers.__all__)


async def test_quote_comes_from_chart_meta(make_yahoo: MakeYahoo, mocked: aioresponses) -> None:
    """quote() makes one range=1d chart call and reads price, time, currency, previous close."""
    body = chart("AAPL", "America/New_York", [])
    body["chart"]["result"][0]["meta"].update(
        regularMarketPrice=189.84, regularMarketTime=1709758800, chartPreviousClose=187.5
    )
    seen: list[Any] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(url)
        return CallbackResult(status=200, body=json.dumps(body))

    mocked.get(CHART, callback=record)
    quote = await make_yahoo().quote("AAPL")
    assert quote == Quote(
        "AAPL", datetime.fromtimestamp(1709758800, UTC), 189.84, "USD", previous_close=187.5
    )
    assert dict(seen[0].query) == {"range": "1d", "interval": "1d"}


async def test_quote_without_price_is_bad_response(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A meta without regularMarketPrice cannot be a quote: BadResponseError."""
    mocked.get(CHART, payload=chart("AAPL", "America/New_York", []))
    with pytest.raises(BadResponseError, match="no quote in meta"):
        await make_yahoo().quote("AAPL")


async def test_actions_parse_dividends_and_splits_in_range(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """Chart events give dividends and splits dated in the exchange's timezone, in range only."""
    body = chart("AAPL", "America/New_York", [])
    div_ts = at("America/New_York", 2020, 8, 7, 9, 30)
    old_ts = at("America/New_York", 2019, 1, 2, 9, 30)
    split_ts = at("America/New_York", 2020, 8, 31, 9, 30)
    body["chart"]["result"][0]["events"] = {
        "dividends": {
            str(div_ts): {"amount": 0.82, "date": div_ts},
            str(old_ts): {"amount": 0.73, "date": old_ts},
        },
        "splits": {
            str(split_ts): {
                "date": split_ts,
                "numerator": 4,
                "denominator": 1,
                "splitRatio": "4:1",
            }
        },
    }
    mocked.get(CHART, payload=body)
    dividends, splits = await make_yahoo().actions("AAPL", date(2020, 1, 1), date(2020, 12, 31))
    assert dividends == [Dividend("AAPL", date(2020, 8, 7), 0.82, "USD")]
    assert splits == [Split("AAPL", date(2020, 8, 31), 4.0, 1.0)]


async def test_actions_without_events_are_empty(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A chart without an events object has no dividends and no splits."""
    mocked.get(CHART, payload=XSP_TO)
    assert await make_yahoo().actions("XSP.TO", date(2017, 10, 27), date(2017, 10, 30)) == ([], [])


async def test_symbol_override_replaces_the_path_symbol(
    make_yahoo: MakeYahoo, mocked: aioresponses
) -> None:
    """A [providers.yahoo.symbols] override is sent; the bars keep the flow's ticker."""
    seen: list[Any] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(url)
        return CallbackResult(status=200, body=json.dumps(XSP_TO))

    mocked.get(CHART, callback=record)
    provider = make_yahoo(symbols={"XSP": "XSP.TO"})
    bars = await provider.daily_bars("XSP", date(2017, 10, 27), date(2017, 10, 30))
    assert seen[0].raw_path == "/v8/finance/chart/XSP.TO"
    assert {b.symbol for b in bars} == {"XSP"}


def test_yahoo_declares_its_contract() -> None:
    """Yahoo: kind, capabilities (bars, quote, actions, crypto), keyless, polite limits."""
    assert YahooProvider.kind == "yahoo"
    assert YahooProvider.capabilities == {
        Capability.DAILY_BARS,
        Capability.QUOTE,
        Capability.ACTIONS,
        Capability.CRYPTO,
    }
    assert not YahooProvider.requires_key
    assert YahooProvider.default_limits.max_concurrency <= 2
    assert [str(r) for r in YahooProvider.default_limits.windows()] == ["1/second"]
