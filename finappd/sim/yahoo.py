"""Yahoo's v8 chart API as the simulator speaks it: ``GET /v8/finance/chart/{symbol}``.

Wire format as in PROVIDERS.md section 1: parallel arrays under
``chart.result[0]``, daily timestamps at the exchange-local session open in epoch
seconds UTC, bars whose open falls in ``[period1, period2)`` and not after now.
Errors use Yahoo's bodies: 404 "Not Found" for unknown symbols (or any ``ZZZ…``),
400 "Bad Request" for ranges before 1990 or bad numbers, 422 "Unprocessable
Entity" for missing parameters or intervals other than ``1d``. A range with no
trading day is 200 with ``meta`` only and ``indicators.quote == [{}]``. No key; past
``SimConfig.provider_limits["yahoo"]`` a plain-text 429 without ``Retry-After``.

Broken on purpose (:mod:`finappd.sim.faults`): ``html_page`` is Yahoo's "Will be right
back" page, ``wrong_shape`` a chart whose fields have the wrong types, and ``bad_data``
rewrites the last seven rows of a chart body (it needs at least ten; shorter ones pass
unchanged), counting from the end: -7 close NaN; -6 close negative; -5 open 0; -4 high
and low swapped (high < low); -3 volume 10^15; -2 every price divided by 100 (a
pence/pounds mix-up); -1 open null. It then appends a duplicate of the last row
differing only in volume, and a row dated 30 days in the future. The earlier rows are
untouched.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import Listing, listing_of
from finappd.sim.faults import FaultShapes
from finappd.sim.prices import SimBar, bar_on, symbol_key, trading_days
from finappd.sim.routes import Route, SimApi, path_param, unknown

__all__ = ["API", "CHART_PATH", "chart_body", "chart_response", "corrupt_chart", "session_open"]

CHART_PATH = "/v8/finance/chart/{symbol}"
EARLIEST = 631152000  # 1990-01-01T00:00:00Z: older ranges get Yahoo's 400.
_DAY = 86400
_RANGES: dict[str, int] = {
    "1d": 1,
    "5d": 5,
    "1mo": 31,
    "3mo": 92,
    "6mo": 183,
    "1y": 365,
    "2y": 730,
    "5y": 1826,
    "10y": 3652,
}
_VALID_RANGES = [*_RANGES, "ytd", "max"]

Body = dict[str, Any]


def error_body(code: str, description: str) -> Body:
    """Yahoo's chart error envelope."""
    return {"chart": {"result": None, "error": {"code": code, "description": description}}}


@lru_cache(maxsize=4096)
def session_open(day: date, listing: Listing) -> int:
    """Epoch seconds UTC of the session open of ``day`` in the exchange's local time."""
    return int(datetime.combine(day, listing.open_time, tzinfo=listing.tz).timestamp())


class _Reject(Exception):
    """A request Yahoo would refuse: carries the status and the error body."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = error_body(code, description)


def _period(query: Mapping[str, str], now: float) -> tuple[int, int]:
    """``(period1, period2)`` from the query (``period1``/``period2`` or ``range``)."""
    if "period1" not in query and "range" in query:
        span = query["range"]
        today = datetime.fromtimestamp(now, UTC)
        if span == "max":
            return EARLIEST, int(now) + 1
        if span == "ytd":
            return int(datetime(today.year, 1, 1, tzinfo=UTC).timestamp()), int(now) + 1
        if span not in _RANGES:
            raise _Reject(
                422, "Unprocessable Entity", f"Invalid range={span}, valid ranges: {_VALID_RANGES}"
            )
        return int(now) - _RANGES[span] * _DAY, int(now) + 1
    if "period1" not in query:
        raise _Reject(422, "Unprocessable Entity", "Missing required parameter: period1")
    values: list[int] = []
    for name, default in (("period1", None), ("period2", str(int(now)))):
        raw = query.get(name, default) or ""
        try:
            values.append(int(raw))
        except ValueError:
            raise _Reject(
                400, "Bad Request", f"Invalid input - {name} must be an integer"
            ) from None
    period1, period2 = values
    if period2 < period1:
        raise _Reject(400, "Bad Request", "Invalid input - start date cannot be after end date")
    if period1 < EARLIEST:
        raise _Reject(
            400,
            "Bad Request",
            f"Data doesn't exist for startDate = {period1}, endDate = {period2}",
        )
    return period1, period2


def _trading_period(listing: Listing, opened: int, gmtoffset: int) -> Body:
    """``currentTradingPeriod`` of the session opening at ``opened``: the simulator's 6.5-hour
    regular session with Yahoo's pre (5.5 h) and post (4 h) windows around it."""
    zone = datetime.fromtimestamp(opened, listing.tz).tzname() or "UTC"
    closed = opened + 23_400
    windows = {"pre": (opened - 19_800, opened), "regular": (opened, closed)}
    windows["post"] = (closed, closed + 14_400)
    return {
        name: {"timezone": zone, "start": start, "end": end, "gmtoffset": gmtoffset}
        for name, (start, end) in windows.items()
    }


def _meta(
    symbol: str, listing: Listing, last: SimBar | None, last_ts: int, previous_close: float
) -> Body:
    local = datetime.fromtimestamp(last_ts, listing.tz)
    offset = local.utcoffset()
    gmtoffset = int(offset.total_seconds()) if offset is not None else 0
    return {
        "currency": listing.currency,
        "symbol": symbol,
        "longName": f"{symbol} Simulated",
        "shortName": symbol,
        "exchangeName": listing.exchange_name,
        "instrumentType": listing.instrument_type,
        "firstTradeDate": EARLIEST,
        "regularMarketTime": last_ts,
        "gmtoffset": gmtoffset,
        "timezone": local.tzname() or "UTC",
        "exchangeTimezoneName": listing.tz_name,
        "regularMarketPrice": last.close if last is not None else None,
        "chartPreviousClose": previous_close,
        "priceHint": 2,
        "currentTradingPeriod": _trading_period(listing, last_ts, gmtoffset),
        "dataGranularity": "1d",
        "range": "",
        "validRanges": _VALID_RANGES,
    }


def _last_before(key: int, listing: Listing, end: date) -> SimBar:
    """The bar of the last trading day on or before ``end`` (for an empty range's meta)."""
    day = end
    while not listing.trades_weekends and day.weekday() >= 5:
        day -= timedelta(days=1)
    return bar_on(key, day)


def chart_response(
    symbol: str, query: Mapping[str, str], config: SimConfig, now: float
) -> tuple[int, Body]:
    """The HTTP status and JSON body Yahoo would send for this chart request at ``now``."""
    if unknown(config, symbol):
        return 404, error_body("Not Found", "No data found, symbol may be delisted")
    interval = query.get("interval", "1d")
    if interval != "1d":
        return 422, error_body(
            "Unprocessable Entity", f"interval={interval} is not supported by the simulator"
        )
    try:
        period1, period2 = _period(query, now)
    except _Reject as reject:
        return reject.status, reject.body
    end = min(period2, int(now) + 1)  # no bars from the future, today's live bar included
    listing = listing_of(symbol)
    key = symbol_key(symbol, config.seed)
    stamps: list[int] = []
    bars: list[SimBar] = []
    if end > period1:
        first = datetime.fromtimestamp(period1, listing.tz).date()
        last = datetime.fromtimestamp(end - 1, listing.tz).date()
        for day in trading_days(first, last, weekends=listing.trades_weekends):
            stamp = session_open(day, listing)
            if period1 <= stamp < end:
                stamps.append(stamp)
                bars.append(bar_on(key, day))
    split = config.splits.get(symbol)
    null_last = symbol in config.null_symbols
    # The close before the chart's first bar (Yahoo's chartPreviousClose).
    first_day = bars[0].day if bars else datetime.fromtimestamp(period1, listing.tz).date()
    previous = _last_before(key, listing, first_day - timedelta(days=1)).close
    if split is not None and bars and split[0] <= datetime.fromtimestamp(now, listing.tz).date():
        adjusted = _split_adjusted(bars, split)
        body = _full(symbol, listing, stamps, adjusted, previous, null_last=null_last)
        return 200, _with_split(body, split, listing, (period1, end))
    if not bars:
        last_day = datetime.fromtimestamp(max(min(end, period2) - 1, 0), listing.tz).date()
        anchor = _last_before(key, listing, last_day)
        previous = _last_before(key, listing, anchor.day - timedelta(days=1)).close
        meta = _meta(symbol, listing, anchor, session_open(anchor.day, listing), previous)
        return 200, {
            "chart": {"result": [{"meta": meta, "indicators": {"quote": [{}]}}], "error": None}
        }
    return 200, _full(symbol, listing, stamps, bars, previous, null_last=null_last)


def _full(
    symbol: str,
    listing: Listing,
    stamps: list[int],
    bars: list[SimBar],
    previous_close: float,
    *,
    null_last: bool,
) -> Body:
    quote: dict[str, list[Any]] = {
        "open": [bar.open for bar in bars],
        "high": [bar.high for bar in bars],
        "low": [bar.low for bar in bars],
        "close": [bar.close for bar in bars],
        "volume": [bar.volume for bar in bars],
    }
    adjclose: list[Any] = [bar.adj_close for bar in bars]
    priced = bars
    if null_last:
        for column in quote.values():
            column[-1] = None
        adjclose[-1] = None
        priced = bars[:-1]
    meta = _meta(symbol, listing, priced[-1] if priced else None, stamps[-1], previous_close)
    result = {
        "meta": meta,
        "timestamp": stamps,
        "indicators": {"quote": [quote], "adjclose": [{"adjclose": adjclose}]},
    }
    return {"chart": {"result": [result], "error": None}}


def _split_adjusted(bars: list[SimBar], split: tuple[date, int, int]) -> list[SimBar]:
    """Bars before the ex-date divided by the split ratio, as Yahoo rewrites history."""
    ex_date, numerator, denominator = split
    ratio = numerator / denominator
    return [
        bar
        if bar.day >= ex_date
        else SimBar(
            day=bar.day,
            open=round(bar.open / ratio, 4),
            high=round(bar.high / ratio, 4),
            low=round(bar.low / ratio, 4),
            close=round(bar.close / ratio, 4),
            adj_close=round(bar.adj_close / ratio, 4),
            volume=int(bar.volume * ratio),
        )
        for bar in bars
    ]


def _with_split(
    body: Body, split: tuple[date, int, int], listing: Listing, period: tuple[int, int]
) -> Body:
    """``body`` with the split in ``events.splits`` when its ex-date is in the range."""
    ex_date, numerator, denominator = split
    stamp = session_open(ex_date, listing)
    if period[0] <= stamp < period[1]:
        result = body["chart"]["result"][0]
        result["events"] = {
            "splits": {
                str(stamp): {
                    "date": stamp,
                    "numerator": numerator,
                    "denominator": denominator,
                    "splitRatio": f"{numerator}:{denominator}",
                }
            }
        }
    return body


#: Longest ``period1``..``period2`` span (seconds) whose answers are cached: a lookback
#: window, not ``range=max`` (whose thousands of bars per symbol would hog memory).
_CACHED_SPAN = 400 * _DAY


def _explicit_period(query: Mapping[str, str]) -> tuple[int, int] | None:
    """``(period1, period2)`` when the query gives both as a valid, cacheable span."""
    try:
        period1, period2 = int(query["period1"]), int(query["period2"])
    except (KeyError, ValueError):
        return None
    if EARLIEST <= period1 <= period2 <= period1 + _CACHED_SPAN:
        return period1, period2
    return None


@lru_cache(maxsize=65536)
def _window(symbol: str, period1: int, period2: int) -> tuple[tuple[int, ...], tuple[date, ...]]:
    """Session opens (ascending) and their trading days with an open in [period1, period2)."""
    listing = listing_of(symbol)
    first = datetime.fromtimestamp(period1, listing.tz).date()
    last = datetime.fromtimestamp(period2 - 1, listing.tz).date()
    stamps: list[int] = []
    days: list[date] = []
    for day in trading_days(first, last, weekends=listing.trades_weekends):
        stamp = session_open(day, listing)
        if period1 <= stamp < period2:
            stamps.append(stamp)
            days.append(day)
    return tuple(stamps), tuple(days)


@lru_cache(maxsize=32768)
def _full_json(
    symbol: str, seed: int, period1: int, period2: int, count: int, null_last: bool
) -> bytes:
    """The encoded answer carrying the first ``count`` bars of the window."""
    stamps, days = _window(symbol, period1, period2)
    key = symbol_key(symbol, seed)
    bars = [bar_on(key, day) for day in days[:count]]
    listing = listing_of(symbol)
    previous = _last_before(key, listing, days[0] - timedelta(days=1)).close
    body = _full(symbol, listing, list(stamps[:count]), bars, previous, null_last=null_last)
    return json.dumps(body).encode()


def chart_body(
    symbol: str, query: Mapping[str, str], config: SimConfig, now: float
) -> tuple[int, bytes]:
    """:func:`chart_response` encoded as JSON; answers with bars to explicit periods are cached.

    Such an answer depends on ``now`` only through how many of the window's bars have
    opened, so (symbol, seed, period, that count, null flag) is its exact cache key. A
    fan-out asks for the same window of every symbol on every run; encoding each
    answer afresh made the simulator, not the client under test, the bottleneck.
    """
    period = _explicit_period(query)
    if (
        period is not None
        and query.get("interval", "1d") == "1d"
        and not unknown(config, symbol)
        and symbol not in config.splits
    ):
        period1, period2 = period
        stamps, _ = _window(symbol, period1, period2)
        count = bisect_left(stamps, min(period2, int(now) + 1))
        if count:
            null_last = symbol in config.null_symbols
            return 200, _full_json(symbol, config.seed, period1, period2, count, null_last)
    status, body = chart_response(symbol, query, config, now)
    return status, json.dumps(body).encode()


def corrupt_chart(body: Body, now: float) -> Body:
    """A chart body with the ``bad_data`` rows of the module docstring (changed in place)."""
    try:
        result = body["chart"]["result"][0]
        stamps: list[int] = result["timestamp"]
        quote: dict[str, list[Any]] = result["indicators"]["quote"][0]
        adj: list[Any] = result["indicators"]["adjclose"][0]["adjclose"]
    except (KeyError, IndexError, TypeError):
        return body
    if len(stamps) < 10:
        return body
    opens, highs, lows, closes, volumes = (
        quote[k] for k in ("open", "high", "low", "close", "volume")
    )
    closes[-7] = float("nan")
    closes[-6] = -abs(closes[-6])
    opens[-5] = 0.0
    highs[-4], lows[-4] = lows[-4], highs[-4]
    volumes[-3] = 10**15
    for column in (opens, highs, lows, closes, adj):
        column[-2] = column[-2] / 100
    opens[-1] = None
    # A duplicate of the last day (yfinance#573: same day, only the volume differs),
    # then a bar a month in the future.
    stamps.append(stamps[-1])
    stamps.append(int(now) + 30 * 86400)
    for column in (opens, highs, lows, closes, adj):
        column.extend([column[-1], column[-1]])
    volumes.extend([volumes[-1] + 1, volumes[-1]])
    return body


def _chart(request: web.Request, config: SimConfig, now: float) -> web.Response:
    status, body = chart_body(request.match_info["symbol"], request.query, config, now)
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


_OUTAGE = (
    "<!DOCTYPE html><html><head><title>Yahoo</title></head><body>"
    "<h1>Will be right back...</h1><p>Thank you for your patience.</p></body></html>"
)

#: Yahoo's chart API: no key; past its window a plain-text 429 without ``Retry-After``.
API = SimApi(
    name="yahoo",
    base_path="",
    routes=(Route(CHART_PATH, _chart, symbol=path_param("symbol")),),
    rate_limited=lambda limit, strikes: web.Response(status=429, text="Too Many Requests"),
    faults=FaultShapes(
        wrong_shape=json.dumps(
            {"chart": {"result": [{"meta": {}, "timestamp": "soon"}], "error": None}}
        ),
        outage_page=_OUTAGE,
        corrupt=corrupt_chart,
    ),
)
