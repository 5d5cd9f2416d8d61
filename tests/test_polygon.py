"""Tests for finappd.providers.polygon: symbols, ms→NY dates, error shapes, bounded next_url."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aioresponses import aioresponses
from structlog.testing import capture_logs

from finappd.errors import AuthError, PlanGatedError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS, PolygonProvider
from finappd.providers.base import Capability, Verdict
from finappd.providers.polygon import (
    MAX_PAGES,
    bar_tz,
    classify_polygon,
    last_served_day,
    parse_aggs,
    parse_dividends,
    parse_splits,
    polygon_symbol,
)
from finappd.records import Bar, Dividend, Split
from tests.test_provider_support import provider_factory

BASE = "http://127.0.0.1:9/polygon"
AGGS = re.compile(r"^http://127\.0\.0\.1:9/polygon/v2/aggs/ticker/[^/]+/range/.*$")
PREV = re.compile(r"^http://127\.0\.0\.1:9/polygon/v2/aggs/ticker/[^/]+/prev$")
DIVIDENDS = re.compile(r"^http://127\.0\.0\.1:9/polygon/v3/reference/dividends\?.*$")
SPLITS = re.compile(r"^http://127\.0\.0\.1:9/polygon/v3/reference/splits\?.*$")
WEEK = f"{BASE}/v2/aggs/ticker/AAPL/range/1/day/2025-01-06/2025-01-10?adjusted=true"
WEEKEND = f"{BASE}/v2/aggs/ticker/AAPL/range/1/day/2025-01-04/2025-01-05?adjusted=true"
FIXTURE: dict[str, Any] = {
    "ticker": "AAPL",
    "adjusted": True,
    "queryCount": 2,
    "resultsCount": 2,
    "status": "OK",
    "request_id": "6a7e466379af0a71039d60cc78e72282",
    "results": [
        {"o": 74.06, "h": 75.15, "l": 73.7975, "c": 75.0875, "v": 135647456, "vw": 74.6099,
         "n": 1, "t": 1577941200000},
        {"o": 74.2875, "h": 75.145, "l": 74.125, "c": 74.3575, "v": 146535512, "vw": 74.7026,
         "n": 1, "t": 1578027600000},
    ],
}  # fmt: skip
EMPTY = {"ticker": "X", "queryCount": 0, "resultsCount": 0, "adjusted": True, "status": "OK"}
EMPTY["request_id"] = "abc"
RATE = {
    "status": "ERROR",
    "request_id": "r1",
    "error": "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing",
}
NO_KEY = {"status": "ERROR", "request_id": "r2", "error": "API Key was not provided"}
NOT_ENTITLED = {
    "status": "NOT_AUTHORIZED",
    "request_id": "r3",
    "message": "You are not entitled to this data. Please upgrade your plan at "
    "https://massive.com/pricing",
}
TIMEFRAME = dict(NOT_ENTITLED, message="Your plan doesn't include this data timeframe.")
TODAY = dict(NOT_ENTITLED, message="Attempted to request today's data before end of day.")
DIVIDEND = {
    "cash_amount": 0.59375,
    "declaration_date": "2020-09-09",
    "dividend_type": "CD",
    "ex_dividend_date": "2025-06-12",
    "frequency": 4,
    "pay_date": "2025-06-30",
    "record_date": "2025-06-15",
    "ticker": "CSSEN",
}
SPLIT = {"execution_date": "2022-07-18", "split_from": 1, "split_to": 20, "ticker": "GOOGL"}
MakePolygon = Callable[..., PolygonProvider]


@pytest.fixture
async def make_polygon() -> AsyncIterator[MakePolygon]:
    """Build Polygon providers pointed at BASE with tiny backoff; close their sessions after."""
    async with provider_factory(
        PolygonProvider, "polygon", retries=2, base_url=BASE, api_key="test-key", rates=[]
    ) as factory:
        yield factory


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [
        ("AAPL", "AAPL"),
        ("BRK-B", "BRK.B"),
        ("^GSPC", "I:SPX"),
        ("^VIX", "I:VIX"),
        ("EURUSD=X", "C:EURUSD"),
        ("BTC-USD", "X:BTCUSD"),
        ("X:ETHUSD", "X:ETHUSD"),
    ],
)
def test_symbols_follow_polygons_prefixes(ticker: str, expected: str) -> None:
    """Share classes take a dot; indices, FX and crypto take I:, C: and X: prefixes."""
    assert polygon_symbol(ticker) == expected


@pytest.mark.parametrize(
    ("ticker", "stamp", "expected"),
    [
        ("AAPL", datetime(2020, 1, 2, 5, 0, tzinfo=UTC), date(2020, 1, 2)),  # EST midnight
        ("AAPL", datetime(2024, 7, 5, 4, 0, tzinfo=UTC), date(2024, 7, 5)),  # EDT midnight
        ("X:BTCUSD", datetime(2024, 7, 6, 0, 0, tzinfo=UTC), date(2024, 7, 6)),  # a Saturday
        ("C:EURUSD", datetime(2024, 7, 5, 0, 0, tzinfo=UTC), date(2024, 7, 5)),  # UTC midnight
    ],
)
def test_ms_timestamps_become_the_asset_class_date(
    ticker: str, stamp: datetime, expected: date
) -> None:
    """t in ms is dated in New York for stocks, in UTC for FX and crypto."""
    row = {"o": 1, "h": 1, "l": 1, "c": 1, "t": int(stamp.timestamp() * 1000)}
    [bar] = parse_aggs({"results": [row]}, ticker, expected, expected, bar_tz(ticker))
    assert bar.ts == expected


def test_fixture_parses_to_new_york_dates() -> None:
    """The OpenAPI example gives 2020-01-02 and 2020-01-03, split-adjusted close, no adj_close."""
    tz = ZoneInfo("America/New_York")
    assert parse_aggs(FIXTURE, "AAPL", date(2020, 1, 1), date(2020, 1, 31), tz) == [
        Bar("AAPL", date(2020, 1, 2), 74.06, 75.15, 73.7975, 75.0875, None, 135647456.0),
        Bar("AAPL", date(2020, 1, 3), 74.2875, 75.145, 74.125, 74.3575, None, 146535512.0),
    ]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 1, 8, 15, 0, tzinfo=UTC), date(2025, 1, 7)),  # 10:00 EST
        (datetime(2025, 1, 9, 1, 30, tzinfo=UTC), date(2025, 1, 8)),  # 20:30 EST
        (datetime(2024, 11, 4, 0, 30, tzinfo=UTC), date(2024, 11, 2)),  # 19:30 EST, DST over
        (datetime(2024, 7, 5, 0, 30, tzinfo=UTC), date(2024, 7, 4)),  # 20:30 EDT
        (datetime(2024, 3, 1, 3, 0, tzinfo=UTC), date(2024, 2, 29)),  # 22:00 EST, month end
    ],
)
def test_last_served_day_is_new_york_end_of_day(now: datetime, expected: date) -> None:
    """The free plan serves today after 20:00 New York, else up to yesterday."""
    assert last_served_day(now) == expected


@pytest.mark.parametrize(
    ("status", "body", "url", "verdict"),
    [
        (200, FIXTURE, WEEK, Verdict.OK),
        (200, dict(FIXTURE, status="DELAYED"), WEEK, Verdict.OK),
        (200, EMPTY, WEEK, Verdict.NOT_FOUND),
        (200, dict(EMPTY, results=[]), WEEK, Verdict.NOT_FOUND),
        (200, EMPTY, WEEKEND, Verdict.EMPTY),
        (
            200,
            EMPTY,
            f"{BASE}/v2/aggs/ticker/A/range/1/day/1736139600000/2025-01-10",
            Verdict.NOT_FOUND,
        ),
        (
            200,
            EMPTY,
            f"{BASE}/v2/aggs/ticker/A/range/1/day/1736658000000/2025-01-12",
            Verdict.EMPTY,
        ),
        (200, EMPTY, f"{BASE}/v2/aggs/ticker/ZZZ/prev", Verdict.NOT_FOUND),
        (200, {"results": [], "status": "OK"}, f"{BASE}/v3/reference/splits", Verdict.EMPTY),
        (401, NO_KEY, WEEK, Verdict.AUTH),
        (403, NOT_ENTITLED, WEEK, Verdict.PLAN_GATED),
        (403, TIMEFRAME, WEEK, Verdict.PLAN_GATED),
        (403, TODAY, WEEK, Verdict.PLAN_GATED),
        (200, {"status": "ERROR", "error": "odd"}, WEEK, Verdict.BAD),
        (200, "<html>upstream error</html>", WEEK, Verdict.TRANSIENT),
    ],
)
def test_every_response_shape_is_classified(
    status: int, body: object, url: str, verdict: Verdict
) -> None:
    """Each Polygon answer of PROVIDERS.md section 5 gets its verdict from the body rules."""
    text = body if isinstance(body, str) else json.dumps(body)
    found = classify_polygon(status, text, url)
    assert found is not None
    assert found.verdict is verdict


def test_429_is_left_to_the_status_rules() -> None:
    """A 429 JSON body falls through to the status rule (pause and retry)."""
    assert classify_polygon(429, json.dumps(RATE), WEEK) is None


def test_dividends_and_splits_parse() -> None:
    """Reference rows become Dividend and Split records (split_from 1, split_to 20 is 20:1)."""
    assert parse_dividends({"results": [DIVIDEND]}, "CSSEN") == [
        Dividend("CSSEN", date(2025, 6, 12), 0.59375, None)
    ]
    assert parse_splits({"results": [SPLIT]}, "GOOGL") == [
        Split("GOOGL", date(2022, 7, 18), 20.0, 1.0)
    ]


def test_declares_kind_capabilities_limits_and_key() -> None:
    """Polygon is registered, needs a key, one in flight at 5/minute, bars/quote/actions."""
    assert PROVIDER_KINDS["polygon"] is PolygonProvider
    assert PolygonProvider.capabilities == {
        Capability.DAILY_BARS,
        Capability.QUOTE,
        Capability.ACTIONS,
    }
    limits = PolygonProvider.default_limits
    assert (limits.max_concurrency, [str(r) for r in limits.windows()]) == (1, ["5/minute"])


async def test_bearer_key_path_and_params(make_polygon: MakePolygon, mocked: aioresponses) -> None:
    """The key goes in Authorization: Bearer; the path has the mapped ticker and the dates."""
    mocked.get(AGGS, payload=FIXTURE)
    bars = await make_polygon().daily_bars("BRK-B", date(2020, 1, 1), date(2020, 1, 31))
    assert len(bars) == 2
    [((_, url), [call])] = list(mocked.requests.items())
    assert url.path == "/polygon/v2/aggs/ticker/BRK.B/range/1/day/2020-01-01/2020-01-31"
    assert dict(url.query) == {"adjusted": "true", "sort": "asc", "limit": "50000"}
    assert call.kwargs["headers"]["Authorization"] == "Bearer test-key"


async def test_end_is_clamped_to_the_last_served_day(
    make_polygon: MakePolygon, mocked: aioresponses
) -> None:
    """A range reaching past the last served New York day asks only up to it."""
    mocked.get(AGGS, payload=EMPTY)
    today = datetime.now(UTC).date()
    await make_polygon().daily_bars("AAPL", today - timedelta(days=3), today + timedelta(days=3))
    [(_, url)] = list(mocked.requests)
    assert url.path.endswith(f"/{last_served_day(datetime.now(UTC)).isoformat()}")


async def test_next_url_is_followed_on_the_same_origin(
    make_polygon: MakePolygon, mocked: aioresponses
) -> None:
    """A next_url on the base's origin is fetched politely and its bars are merged."""
    first = dict(FIXTURE, results=FIXTURE["results"][:1])
    first["next_url"] = f"{BASE}/v2/aggs/ticker/AAPL/range/1/day/1578027600000/2020-01-31?cursor=x"
    mocked.get(AGGS, payload=first)
    mocked.get(AGGS, payload=dict(FIXTURE, results=FIXTURE["results"][1:]))
    provider = make_polygon()
    bars = await provider.daily_bars("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    assert [b.ts for b in bars] == [date(2020, 1, 2), date(2020, 1, 3)]
    assert provider.http.requests == 2


async def test_next_url_pages_are_bounded(make_polygon: MakePolygon, mocked: aioresponses) -> None:
    """An endless next_url chain stops after MAX_PAGES requests, with a warning."""
    endless = dict(FIXTURE, next_url=f"{BASE}/v2/aggs/ticker/AAPL/range/1/day/1/2?cursor=again")
    mocked.get(AGGS, payload=endless, repeat=True)
    provider = make_polygon()
    with capture_logs() as logs:
        await provider.daily_bars("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    assert provider.http.requests == MAX_PAGES
    assert [e["pages"] for e in logs if e["event"] == "provider.next_url_not_followed"] == [3]


async def test_foreign_next_url_never_gets_the_key(
    make_polygon: MakePolygon, mocked: aioresponses
) -> None:
    """A next_url on another host is not followed, so the bearer key stays home."""
    mocked.get(AGGS, payload=dict(FIXTURE, next_url="https://evil.example/v2/aggs?cursor=1"))
    provider = make_polygon()
    bars = await provider.daily_bars("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    assert (len(bars), provider.http.requests) == (2, 1)


async def test_unknown_ticker_over_a_week_is_not_found(
    make_polygon: MakePolygon, mocked: aioresponses
) -> None:
    """resultsCount 0 over a full week raises SymbolNotFoundError; over a weekend it is []."""
    mocked.get(AGGS, payload=EMPTY, repeat=True)
    provider = make_polygon()
    with pytest.raises(SymbolNotFoundError):
        await provider.daily_bars("ZZZ", date(2025, 1, 6), date(2025, 1, 10))
    assert await provider.daily_bars("AAPL", date(2025, 1, 4), date(2025, 1, 5)) == []


async def test_plan_gate_and_refused_key(make_polygon: MakePolygon, mocked: aioresponses) -> None:
    """403 NOT_AUTHORIZED is PlanGatedError (provider stays usable); 401 disables it."""
    mocked.get(AGGS, status=403, payload=TIMEFRAME)
    mocked.get(AGGS, status=401, payload=NO_KEY, repeat=True)
    provider = make_polygon()
    with pytest.raises(PlanGatedError):
        await provider.daily_bars("AAPL", date(2015, 1, 5), date(2015, 1, 9))
    for _ in range(2):
        with pytest.raises(AuthError):
            await provider.daily_bars("AAPL", date(2025, 1, 6), date(2025, 1, 10))
    assert provider.http.requests == 2


async def test_429_is_retried(make_polygon: MakePolygon, mocked: aioresponses) -> None:
    """A 429 JSON answer pauses and retries; the retry's bars are returned."""
    mocked.get(AGGS, status=429, payload=RATE)
    mocked.get(AGGS, payload=FIXTURE)
    provider = make_polygon()
    bars = await provider.daily_bars("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    assert (len(bars), provider.http.rate_limited) == (2, 1)


async def test_quote_is_the_previous_close(make_polygon: MakePolygon, mocked: aioresponses) -> None:
    """/prev gives the previous session's close, stamped at 16:00 New York."""
    row = {"T": "AAPL", "o": 1.0, "h": 2.0, "l": 1.0, "c": 1.5, "v": 9.0, "t": 1577941200000}
    mocked.get(PREV, payload=dict(EMPTY, resultsCount=1, results=[row]))
    quote = await make_polygon().quote("AAPL")
    assert (quote.price, quote.ts) == (1.5, datetime(2020, 1, 2, 21, 0, tzinfo=UTC))


async def test_actions_ask_both_reference_endpoints(
    make_polygon: MakePolygon, mocked: aioresponses
) -> None:
    """actions() filters dividends by ex date and splits by execution date, ascending."""
    mocked.get(DIVIDENDS, payload={"results": [DIVIDEND], "status": "OK"})
    mocked.get(SPLITS, payload={"results": [], "status": "OK"})
    dividends, splits = await make_polygon().actions("CSSEN", date(2025, 1, 1), date(2025, 12, 31))
    assert (len(dividends), splits) == (1, [])
    queries = {url.path.rsplit("/", 1)[1]: url.query for (_, url) in mocked.requests}
    assert queries["dividends"]["ex_dividend_date.gte"] == "2025-01-01"
    assert queries["splits"]["execution_date.lte"] == "2025-12-31"
