"""Facts that recorded answers showed our parsers getting wrong, each pinned by its answer.

- Polygon's crypto (``X:BTCUSD``) daily aggregates start at 00:00 UTC: each bar is filed
  under its UTC date and the range's last day is kept (they were dated in New York).
- Finnhub's daily candles: the recorded 2019 answer (00:00 New York) keeps its dates, and a
  candle stamped on a UTC midnight (the convention since 2021) is dated by UTC.
- Finnhub's "API limit reached" with HTTP 200 is a rate limit: the provider pauses and
  retries, and the next answer is served (it was a bad response).
- Yahoo's HTTP 200 meta-only answer with ``firstTradeDate`` null is not-found, so a flow's
  fallback is asked (it was an empty success).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from finappd.errors import SymbolNotFoundError
from finappd.flows.daily_bars import daily_bars_fetch
from finappd.providers import FinnhubProvider, PolygonProvider, TiingoProvider, YahooProvider
from finappd.providers.finnhub import parse_candles
from tests.recorded import Recorded, load
from tests.test_provider_support import mock_http, provider_factory

KEY = "test-key"


def answer(provider: str, name: str) -> Recorded:
    """The recorded answer ``name`` of ``provider``."""
    [found] = [a for a in load(provider) if a.name == name]
    return found


def _url(base: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(base)}.*$")


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Any]]:
    """``make(cls, base)``: a provider of ``cls`` at ``base``, two retries, no rate windows."""
    contexts: dict[type[Any], Any] = {}
    factories: dict[type[Any], Callable[..., Any]] = {}

    def build(cls: type[Any], base: str) -> Any:
        return factories[cls](base_url=base)

    for cls in (PolygonProvider, FinnhubProvider, YahooProvider, TiingoProvider):
        options: dict[str, Any] = {"kind": "yahoo"} if cls is YahooProvider else {"api_key": KEY}
        contexts[cls] = provider_factory(cls, cls.kind, retries=2, rates=[], **options)
        factories[cls] = await contexts[cls].__aenter__()
    try:
        yield build
    finally:
        for context in contexts.values():
            await context.__aexit__(None, None, None)


async def test_polygon_crypto_bars_are_dated_by_utc_and_keep_the_last_day(
    make: Callable[..., Any],
) -> None:
    """The recorded X:BTCUSD answer gives ten bars 2023-01-01..10, each on its UTC date."""
    base = "http://127.0.0.1:9/polygon"
    recorded = answer("polygon", "aggs_X-BTCUSD_2023-01-01_2023-01-10")
    with mock_http() as mocked:
        mocked.get(_url(base), status=200, body=recorded.body, content_type="application/json")
        bars = await make(PolygonProvider, base).daily_bars(
            "BTC-USD", date(2023, 1, 1), date(2023, 1, 10)
        )
    assert [b.ts for b in bars] == [date(2023, 1, day) for day in range(1, 11)]
    # 1672531200000 (2023-01-01T00:00Z): o 16532, c 16611.58 — filed under 2023-01-01.
    assert (bars[0].open, bars[0].close) == (16532.0, 16611.58)
    # 1673308800000 (2023-01-10T00:00Z), the range's last day, is kept.
    assert (bars[-1].open, bars[-1].close) == (17177.94, 17443.46)


async def test_finnhub_candles_recorded_at_new_york_midnight_keep_their_dates(
    make: Callable[..., Any],
) -> None:
    """The recorded 2019 AAPL candles (04:00 UTC = 00:00 EDT) stay on 2019-09-24..26."""
    base = "http://127.0.0.1:9/finnhub"
    recorded = answer("finnhub", "candle_AAPL_2019-09-24_2019-09-26")
    with mock_http() as mocked:
        mocked.get(_url(base), status=200, body=recorded.body, content_type="application/json")
        bars = await make(FinnhubProvider, base).daily_bars(
            "AAPL", date(2019, 9, 24), date(2019, 9, 26)
        )
    assert [(b.ts, b.close) for b in bars] == [
        (date(2019, 9, 24), 217.68),
        (date(2019, 9, 25), 221.03),
        (date(2019, 9, 26), 219.89),
    ]


def test_finnhub_candle_on_a_utc_midnight_is_dated_by_utc() -> None:
    """A candle stamped 00:00 UTC of its trading date (finnhubio/Finnhub-API#449: SPXL's
    2021-06-10 candle came back at 12am GMT, 8pm the day before in New York) is 2021-06-10,
    not 2021-06-09; no recorded body with such stamps was found, the stamp is the issue's."""
    stamp = int(datetime(2021, 6, 10, tzinfo=UTC).timestamp())
    payload = {"s": "ok", "t": [stamp], "o": [1.0], "h": [2.0], "l": [0.5], "c": [1.5]}
    tz = ZoneInfo("America/New_York")
    [bar] = parse_candles(payload, "SPXL", date(2021, 6, 9), date(2021, 6, 10), tz)
    assert bar.ts == date(2021, 6, 10)


async def test_finnhub_api_limit_with_http_200_pauses_and_retries(
    make: Callable[..., Any],
) -> None:
    """The recorded 'API limit reached' text with HTTP 200 is retried after a pause; the
    next answer (the recorded candles) is served."""
    base = "http://127.0.0.1:9/finnhub"
    limit = answer("finnhub", "profile_200_limit")
    candles = answer("finnhub", "candle_AAPL_2019-09-24_2019-09-26")
    provider = make(FinnhubProvider, base)
    with mock_http() as mocked:
        mocked.get(_url(base), status=200, body=limit.body, content_type="text/plain")
        mocked.get(_url(base), status=200, body=candles.body, content_type="application/json")
        bars = await provider.daily_bars("AAPL", date(2019, 9, 24), date(2019, 9, 26))
        calls = sum(len(requests) for requests in mocked.requests.values())
    assert len(bars) == 3
    assert calls == 2
    assert provider.http.rate_limited == 1


async def test_yahoo_meta_only_answer_is_not_found(make: Callable[..., Any]) -> None:
    """The recorded ^VXAPL answer (HTTP 200, no timestamps, firstTradeDate null) raises
    SymbolNotFoundError instead of returning no bars."""
    base = "http://127.0.0.1:9/yahoo"
    recorded = answer("yahoo", "chart_VXAPL_meta_only")
    with mock_http() as mocked:
        mocked.get(_url(base), status=200, body=recorded.body, content_type="application/json")
        with pytest.raises(SymbolNotFoundError):
            await make(YahooProvider, base).daily_bars("^VXAPL", date(2020, 1, 1), date(2020, 1, 3))


async def test_yahoo_meta_only_answer_sends_the_ticker_to_the_fallback(
    make: Callable[..., Any],
) -> None:
    """With Yahoo answering meta-only (the recorded ^VXAPL body), the flow's chain asks its
    fallback, whose recorded bars are served."""
    yahoo_base, tiingo_base = "http://127.0.0.1:9/yahoo", "http://127.0.0.1:9/tiingo"
    meta_only = answer("yahoo", "chart_VXAPL_meta_only")
    prices = answer("tiingo", "daily_PG_2015-01-01_2015-01-05")
    chain = [make(YahooProvider, yahoo_base), make(TiingoProvider, tiingo_base)]
    fetch = daily_bars_fetch(chain, date(2015, 1, 1), date(2015, 1, 5))
    with mock_http() as mocked:
        mocked.get(_url(yahoo_base), status=200, body=meta_only.body)
        mocked.get(_url(tiingo_base), status=200, body=prices.body)
        result = await fetch("PG")
    assert result.error_kind is None
    assert result.provider == "tiingo"
    assert [(b.ts, b.close) for b in result.bars] == [
        (date(2015, 1, 2), 90.44),
        (date(2015, 1, 5), 90.01),
    ]
