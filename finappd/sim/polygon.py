"""Polygon.io / Massive's REST API as the simulator speaks it, under the path prefix ``/polygon``.

Point the provider at ``base_url = f"{sim.url}/polygon"`` (it stands for
``https://api.massive.com``). Routes (PROVIDERS.md section 5), key in
``Authorization: Bearer <key>`` or the ``apiKey`` query parameter:

- ``GET /polygon/v2/aggs/ticker/{T}/range/1/day/{from}/{to}?adjusted=true&sort=asc&limit=N``:
  ``from``/``to`` as ``YYYY-MM-DD`` or epoch ms; ``t`` in epoch ms at 00:00 New York (00:00
  UTC for ``C:`` FX); ``status`` is ``DELAYED`` for free keys, ``OK`` for keys starting
  with ``premium``; no trading day or an unknown ticker (``ZZZ…``,
  ``SimConfig.unknown_symbols``) is HTTP 200 with ``resultsCount: 0`` and no ``results``;
  more bars than ``limit`` adds a ``next_url`` (with a ``cursor``, never the key).
- ``GET /polygon/v2/aggs/ticker/{T}/prev``: the previous trading day's bar.
- ``GET /polygon/v3/reference/dividends?ticker=T`` and ``/v3/reference/splits?ticker=T``:
  quarterly synthetic dividends for about half of all tickers; no splits.

Free keys see the Basic plan: a range starting more than two years back or reaching
today (New York) before 20:00 is HTTP 403 ``NOT_AUTHORIZED``. A missing key or the key
``BADKEY`` is HTTP 401; past ``SimConfig.provider_limits["polygon"]`` HTTP 429 JSON.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import listing_of
from finappd.sim.prices import bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, path_param, query_param, unknown

__all__ = [
    "API",
    "PREFIX",
    "RATE_LIMITED",
    "aggs_response",
    "canonical_symbol",
    "reference_response",
]

PREFIX = "/polygon"
RATE_LIMITED = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing"
)
_NY = ZoneInfo("America/New_York")
_AGGS = "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}"

#: Share classes written ``BRK.B`` here and ``BRK-B`` in the simulator's canonical symbols.
_SHARE_CLASSES = frozenset("ABC")
Body = dict[str, Any]


def _request_id() -> str:
    return uuid.uuid4().hex


def canonical_symbol(ticker: str) -> str:
    """The canonical symbol whose synthetic series a Polygon ticker serves (``BRK.B`` → BRK-B)."""
    upper = ticker.upper()
    if upper.startswith("C:"):
        return f"{upper[2:]}=X"
    if upper.startswith("X:") and upper.endswith("USD"):
        return f"{upper[2:-3]}-USD"
    if upper.startswith("I:"):
        return f"^{upper[2:]}"
    base, dot, suffix = upper.rpartition(".")
    return f"{base}-{suffix}" if dot and suffix in _SHARE_CLASSES else upper


def _unknown(ticker: str, config: SimConfig) -> bool:
    canonical = canonical_symbol(ticker)  # an index I:ZZZ… is unknown too
    return unknown(config, ticker, canonical) or unknown(config, canonical, prefix="^ZZZ")


def _bar_tz(ticker: str) -> ZoneInfo:
    """Daily bars start at 00:00 New York, FX and crypto ones at 00:00 UTC (as recorded)."""
    return ZoneInfo("UTC") if ticker.upper().startswith(("C:", "X:")) else _NY


def _not_authorized(message: str) -> tuple[int, Body]:
    return 403, {"status": "NOT_AUTHORIZED", "request_id": _request_id(), "message": message}


def _bound(text: str, tz: ZoneInfo) -> datetime:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz)
    return datetime.combine(date.fromisoformat(text), clock_time(), tzinfo=tz)


def aggs_response(
    match: Mapping[str, str],
    query: Mapping[str, str],
    config: SimConfig,
    now: float,
    *,
    premium: bool = False,
    origin: str = "",
) -> tuple[int, Body]:
    """The status and JSON body of an aggregates request at ``now`` (``origin`` starts next_url)."""
    ticker = match["ticker"]
    if (match["multiplier"], match["timespan"]) != ("1", "day"):
        return 400, {"status": "ERROR", "request_id": _request_id(), "error": "only 1/day"}
    tz = _bar_tz(ticker)
    try:
        start = _bound(match["start"], tz)
        end = _bound(match["end"], tz)
        limit = int(query.get("limit", "5000"))
        offset = int(base64.urlsafe_b64decode(query["cursor"])) if "cursor" in query else 0
    except ValueError:
        return 400, {"status": "ERROR", "request_id": _request_id(), "error": "bad parameter"}
    today = datetime.fromtimestamp(now, _NY)
    if not premium and start.date() < today.date() - timedelta(days=730):
        return _not_authorized(
            "Your plan doesn't include this data timeframe. Please upgrade your plan at "
            "https://massive.com/pricing"
        )
    if not premium and end.date() >= today.date() and today.hour < 20:
        return _not_authorized(
            "Attempted to request today's data before end of day. Please upgrade your plan "
            "at https://massive.com/pricing"
        )
    envelope: Body = {"ticker": ticker, "queryCount": 0, "resultsCount": 0, "adjusted": True}
    envelope |= {"status": "OK" if premium else "DELAYED", "request_id": _request_id()}
    if _unknown(ticker, config):
        return 200, envelope
    canonical = canonical_symbol(ticker)
    key = symbol_key(canonical, config.seed)
    weekends = listing_of(canonical).trades_weekends
    results: list[Body] = []
    for day in trading_days(start.date(), end.date(), weekends=weekends):
        stamp = datetime.combine(day, clock_time(), tzinfo=tz)
        if not start <= stamp <= end or stamp.timestamp() > now:
            continue
        bar = bar_on(key, day)
        vwap = round((bar.high + bar.low + bar.close) / 3, 4)
        results.append({"v": float(bar.volume), "vw": vwap, "o": bar.open, "c": bar.close})
        results[-1] |= {"h": bar.high, "l": bar.low, "t": int(stamp.timestamp() * 1000)}
        results[-1]["n"] = max(1, bar.volume // 100)
    page = results[offset : offset + limit]
    envelope |= {"queryCount": len(page), "resultsCount": len(page)}
    if page:
        envelope |= {"results": page, "count": len(page)}
    if offset + limit < len(results):
        cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        envelope["next_url"] = (
            f"{origin}{PREFIX}/v2/aggs/ticker/{ticker}/range/1/day/{match['start']}/{match['end']}"
            f"?cursor={cursor}&limit={limit}"
        )
    return 200, envelope


def prev_response(ticker: str, config: SimConfig, now: float) -> Body:
    """The JSON body of ``/v2/aggs/ticker/{T}/prev``: the last trading day before today."""
    envelope: Body = {"ticker": ticker, "queryCount": 0, "resultsCount": 0, "adjusted": True}
    envelope |= {"status": "OK", "request_id": _request_id()}
    if _unknown(ticker, config):
        return envelope
    canonical = canonical_symbol(ticker)
    today = datetime.fromtimestamp(now, _NY).date()
    weekends = listing_of(canonical).trades_weekends
    day = trading_days(today - timedelta(days=7), today - timedelta(days=1), weekends=weekends)[-1]
    bar = bar_on(symbol_key(canonical, config.seed), day)
    # Recorded (client-python's mock): a stock's previous bar is stamped at the 16:00 New
    # York close (1651003200000 = 2022-04-26T20:00Z), unlike the range aggregates' midnight.
    tz = _bar_tz(ticker)
    at = clock_time(16) if tz is _NY else clock_time()
    stamp = int(datetime.combine(day, at, tzinfo=tz).timestamp() * 1000)
    vwap = round((bar.high + bar.low + bar.close) / 3, 4)
    result = {"T": ticker, "v": float(bar.volume), "vw": vwap, "o": bar.open, "c": bar.close}
    result |= {"h": bar.high, "l": bar.low, "t": stamp, "n": max(1, bar.volume // 100)}
    return envelope | {"queryCount": 1, "resultsCount": 1, "results": [result], "count": 1}


def _dividend_days(key: int, start: date, end: date) -> list[date]:
    """Ex-dates of a synthetic quarterly payer: first weekday from the 10th of Feb/May/Aug/Nov."""
    if key & 1:
        return []
    days: list[date] = []
    for year in range(start.year, end.year + 1):
        for month in (2, 5, 8, 11):
            day = date(year, month, 10)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            if start <= day <= end:
                days.append(day)
    return days


def reference_response(kind: str, query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body of ``/v3/reference/dividends`` or ``/v3/reference/splits`` for ``query``."""
    ticker = query.get("ticker", "")
    envelope: Body = {"results": [], "status": "OK", "request_id": _request_id()}
    if kind == "splits" or not ticker or _unknown(ticker, config):
        return envelope
    start = date.fromisoformat(query.get("ex_dividend_date.gte", "2000-01-01"))
    end = date.fromisoformat(query.get("ex_dividend_date.lte", "2100-01-01"))
    canonical = canonical_symbol(ticker)
    key = symbol_key(canonical, config.seed)
    for day in _dividend_days(
        key, start, min(end, datetime.fromtimestamp(now, UTC).date() + timedelta(90))
    ):
        amount = round(bar_on(key, day).close * 0.004, 4)
        pay = day + timedelta(days=14)
        envelope["results"].append(
            {
                "cash_amount": amount,
                "currency": "USD",
                "declaration_date": (day - timedelta(days=30)).isoformat(),
                "dividend_type": "CD",
                "ex_dividend_date": day.isoformat(),
                "frequency": 4,
                "pay_date": pay.isoformat(),
                "record_date": (day + timedelta(days=1)).isoformat(),
                "ticker": ticker,
            }
        )
    return envelope


def _key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() or request.query.get("apiKey", "")


def _error(status: int, error: str) -> web.Response:
    body = {"status": "ERROR", "request_id": _request_id(), "error": error}
    return web.json_response(body, status=status)


def _aggs(request: web.Request, config: SimConfig, now: float) -> web.Response:
    premium = _key(request).startswith("premium")
    origin = str(request.url.origin())
    status, body = aggs_response(
        request.match_info, request.query, config, now, premium=premium, origin=origin
    )
    return web.json_response(body, status=status)


def _prev(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(prev_response(request.match_info["ticker"], config, now))


def _reference(request: web.Request, config: SimConfig, now: float) -> web.Response:
    kind = request.match_info["kind"]
    return web.json_response(reference_response(kind, request.query, config, now))


#: Polygon/Massive aggregates and reference data under ``/polygon``.
API = SimApi(
    name="polygon",
    base_path=PREFIX,
    routes=(
        Route(PREFIX + _AGGS, _aggs, symbol=path_param("ticker")),
        Route(f"{PREFIX}/v2/aggs/ticker/{{ticker}}/prev", _prev, symbol=path_param("ticker")),
        Route(
            f"{PREFIX}/v3/reference/{{kind:dividends|splits}}",
            _reference,
            symbol=query_param("ticker"),
        ),
    ),
    rate_limited=lambda limit, strikes: _error(429, RATE_LIMITED),
    keys=Keys(
        read=_key,
        refused=lambda: _error(401, "Unknown API Key"),
        missing=lambda: _error(401, "API Key was not provided"),
    ),
)
