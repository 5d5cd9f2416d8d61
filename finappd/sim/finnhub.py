"""Finnhub's REST API as the simulator speaks it, under the path prefix ``/finnhub``.

Point the provider at ``base_url = f"{sim.url}/finnhub"`` (it stands for
``https://finnhub.io/api/v1``). Routes (PROVIDERS.md section 4), key in the
``X-Finnhub-Token`` header or the ``token`` query parameter:

- ``GET /finnhub/quote?symbol=AAPL``: ``{"c","d","dp","h","l","o","pc","t"}``, ``t`` in epoch
  seconds; an unknown symbol (``ZZZ…`` or ``SimConfig.unknown_symbols``) is HTTP 200 with
  all zeros and ``null`` changes.
- ``GET /finnhub/stock/candle?symbol=AAPL&resolution=D&from=<s>&to=<s>``: premium, so
  HTTP 403 ``{"error":"You don't have access to this resource."}`` unless the key starts
  with ``premium``; then parallel arrays with ``t`` at 00:00 exchange time, or
  ``{"s":"no_data"}`` for an unknown symbol or an empty range.

A missing key is HTTP 401 ``Please use an API key.``, the key ``BADKEY`` HTTP 401
``Invalid API key.`` (both wordings unverified); past
``SimConfig.provider_limits["finnhub"]`` the answer is HTTP 429 ``API limit reached``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import listing_of
from finappd.sim.prices import bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, query_param, unknown

__all__ = [
    "API",
    "NO_ACCESS",
    "PREFIX",
    "RATE_LIMITED",
    "candle_response",
    "canonical_symbol",
    "quote_response",
]

PREFIX = "/finnhub"
NO_ACCESS = "You don't have access to this resource."
RATE_LIMITED = "API limit reached. Please try again later. Remaining Limit: 0"
_ZERO_QUOTE = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}

#: Share classes written ``BRK.B`` here and ``BRK-B`` in the simulator's canonical symbols.
_SHARE_CLASSES = frozenset("ABC")
Body = dict[str, Any]


def canonical_symbol(symbol: str) -> str:
    """The canonical symbol whose synthetic series a Finnhub symbol serves (``BRK.B`` → BRK-B)."""
    base, dot, suffix = symbol.upper().rpartition(".")
    if dot and suffix in _SHARE_CLASSES:  # not an exchange suffix such as .L or .T
        return f"{base}-{suffix}"
    return symbol.upper()


def _unknown(symbol: str, config: SimConfig) -> bool:
    return not symbol or unknown(config, symbol, canonical_symbol(symbol))


def quote_response(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body (HTTP 200) of ``/quote`` for ``query`` at ``now``."""
    symbol = query.get("symbol", "")
    if _unknown(symbol, config):
        return dict(_ZERO_QUOTE)
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    days = trading_days(today - timedelta(days=7), today, weekends=listing.trades_weekends)
    key = symbol_key(canonical, config.seed)
    last, previous = bar_on(key, days[-1]), bar_on(key, days[-2])
    opened = datetime.combine(last.day, listing.open_time, tzinfo=listing.tz)
    stamp = min(now, (opened + timedelta(hours=6, minutes=30)).timestamp())
    change = round(last.close - previous.close, 4)
    return {
        "c": last.close,
        "d": change,
        "dp": round(change / previous.close * 100, 4),
        "h": last.high,
        "l": last.low,
        "o": last.open,
        "pc": previous.close,
        "t": int(stamp),
    }


def candle_response(query: Mapping[str, str], config: SimConfig, now: float) -> tuple[int, Body]:
    """The status and JSON body of ``/stock/candle`` for an entitled key at ``now``."""
    symbol = query.get("symbol", "")
    try:
        start, end = int(query["from"]), min(int(query["to"]), int(now))
    except (KeyError, ValueError):
        return 422, {"error": "Wrong resolution/from/to parameter."}
    if query.get("resolution") != "D":
        return 422, {"error": "Unsupported resolution."}
    if _unknown(symbol, config) or end < start:
        return 200, {"s": "no_data"}
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    first = datetime.fromtimestamp(start, listing.tz).date()
    last = datetime.fromtimestamp(end, listing.tz).date()
    key = symbol_key(canonical, config.seed)
    columns: dict[str, list[Any]] = {k: [] for k in ("t", "o", "h", "l", "c", "v")}
    for day in trading_days(first, last, weekends=listing.trades_weekends):
        stamp = int(datetime.combine(day, clock_time(), tzinfo=listing.tz).timestamp())
        if not start <= stamp <= end:
            continue
        bar = bar_on(key, day)
        values = (stamp, bar.open, bar.high, bar.low, bar.close, bar.volume)
        for name, value in zip("tohlcv", values, strict=True):
            columns[name].append(value)
    if not columns["t"]:
        return 200, {"s": "no_data"}
    return 200, {"s": "ok", **columns}


def _token(request: web.Request) -> str:
    return request.headers.get("X-Finnhub-Token") or request.query.get("token", "")


def _error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _quote(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(quote_response(request.query, config, now))


def _candle(request: web.Request, config: SimConfig, now: float) -> web.Response:
    if not _token(request).startswith("premium"):
        return _error(403, NO_ACCESS)
    status, body = candle_response(request.query, config, now)
    return web.json_response(body, status=status)


#: Finnhub's quote and candles under ``/finnhub``.
API = SimApi(
    name="finnhub",
    base_path=PREFIX,
    routes=(
        Route(f"{PREFIX}/quote", _quote, symbol=query_param("symbol")),
        Route(f"{PREFIX}/stock/candle", _candle, symbol=query_param("symbol")),
    ),
    rate_limited=lambda limit, strikes: _error(429, RATE_LIMITED),
    keys=Keys(
        read=_token,
        refused=lambda: _error(401, "Invalid API key."),
        missing=lambda: _error(401, "Please use an API key."),
    ),
)
