"""Alpha Vantage's ``/query`` API as the simulator speaks it, under the path prefix
``/alphavantage``.

Point the provider at ``base_url = f"{sim.url}/alphavantage"``. One route,
``GET /alphavantage/query?function=...&apikey=K`` (PROVIDERS.md section 3), serving:

- ``TIME_SERIES_DAILY`` (``outputsize=compact``: the last 100 trading days up to today,
  newest first, every number a string); ``outputsize=full`` is a premium feature;
- ``GLOBAL_QUOTE`` (the last trading day's bar; ``{"Global Quote": {}}`` when unknown);
- ``FX_DAILY`` (``from_symbol``/``to_symbol``, weekdays, UTC dates);
- ``TIME_SERIES_DAILY_ADJUSTED`` and anything intraday answer "premium endpoint".

Every answer is HTTP 200, as at Alpha Vantage: ``Error Message`` for a missing key or
the key ``BADKEY``, an unknown function, and an unknown symbol (``ZZZ…`` or
``SimConfig.unknown_symbols``); ``Information`` for premium features and past
``SimConfig.provider_limits["alphavantage"]`` (a window of a minute or less gets the
"more sparingly" burst text, a longer one the "25 requests per day" text).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, query_param, unknown

__all__ = [
    "API",
    "BAD_KEY",
    "PER_DAY",
    "PER_SECOND",
    "PREFIX",
    "canonical_symbol",
    "query_response",
]

PREFIX = "/alphavantage"
BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
PER_DAY = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. "
    "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ "
    "to instantly remove all daily rate limits."
)
PER_SECOND = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API "
    "requests more sparingly (1 request per second). You may subscribe to any of the "
    "premium plans at https://www.alphavantage.co/premium/ to lift the free key rate limit."
)
_PREMIUM_ENDPOINT = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any "
    "of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all "
    "premium endpoints"
)
_PREMIUM_FULL = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium "
    "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium "
    "plans at https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)
_PREMIUM = frozenset({"TIME_SERIES_DAILY_ADJUSTED", "TIME_SERIES_INTRADAY", "FX_INTRADAY"})
_COMPACT = 100
_FX_ANCHOR = date(2020, 1, 2)
_SUFFIX_BACK = {"LON": ".L", "TRT": ".TO", "DEX": ".DE"}

#: Share classes written ``BRK.B`` here and ``BRK-B`` in the simulator's canonical symbols.
_SHARE_CLASSES = frozenset("ABC")
Body = dict[str, Any]


def canonical_symbol(symbol: str) -> str:
    """The canonical symbol whose synthetic series an AV symbol serves (``BRK.B`` → BRK-B)."""
    upper = symbol.upper()
    base, dot, suffix = upper.rpartition(".")
    if dot and suffix in _SUFFIX_BACK:
        return base + _SUFFIX_BACK[suffix]
    if dot and suffix in _SHARE_CLASSES:
        return f"{base}-{suffix}"
    return upper


def _unknown(symbol: str, config: SimConfig) -> bool:
    return unknown(config, symbol, canonical_symbol(symbol))


def _s(value: float) -> str:
    return f"{value:.4f}"


def _invalid_call(function: str) -> Body:
    return {
        "Error Message": "Invalid API call. Please retry or visit the documentation "
        f"(https://www.alphavantage.co/documentation/#daily) for {function}."
    }


def _recent(canonical: str, config: SimConfig, now: float, weekends: bool) -> list[SimBar]:
    """The last ``_COMPACT`` trading days up to today in the listing's timezone, newest first."""
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    days = trading_days(today - timedelta(days=_COMPACT * 2), today, weekends=weekends)
    key = symbol_key(canonical, config.seed)
    return [bar_on(key, day) for day in reversed(days[-_COMPACT:])]


def _daily(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    symbol = query.get("symbol", "")
    if not symbol or _unknown(symbol, config):
        return _invalid_call("TIME_SERIES_DAILY")
    if query.get("outputsize", "compact") == "full":
        return {"Information": _PREMIUM_FULL}
    canonical = canonical_symbol(symbol)
    bars = _recent(canonical, config, now, listing_of(canonical).trades_weekends)
    series = {
        bar.day.isoformat(): {
            "1. open": _s(bar.open),
            "2. high": _s(bar.high),
            "3. low": _s(bar.low),
            "4. close": _s(bar.close),
            "5. volume": str(bar.volume),
        }
        for bar in bars
    }
    meta = {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": symbol,
        "3. Last Refreshed": bars[0].day.isoformat(),
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern",
    }
    return {"Meta Data": meta, "Time Series (Daily)": series}


def _quote(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    symbol = query.get("symbol", "")
    if not symbol or _unknown(symbol, config):
        return {"Global Quote": {}}
    canonical = canonical_symbol(symbol)
    last, previous = _recent(canonical, config, now, listing_of(canonical).trades_weekends)[:2]
    change = last.close - previous.close
    return {
        "Global Quote": {
            "01. symbol": symbol,
            "02. open": _s(last.open),
            "03. high": _s(last.high),
            "04. low": _s(last.low),
            "05. price": _s(last.close),
            "06. volume": str(last.volume),
            "07. latest trading day": last.day.isoformat(),
            "08. previous close": _s(previous.close),
            "09. change": _s(change),
            "10. change percent": f"{change / previous.close * 100:.4f}%",
        }
    }


def _fx_daily(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    base, quote = query.get("from_symbol", "").upper(), query.get("to_symbol", "").upper()
    pair = base + quote
    if len(pair) != 6 or not pair.isalpha() or _unknown(pair, config) or "ZZZ" in (base, quote):
        return _invalid_call("FX_DAILY")
    canonical = f"{pair}=X"
    bars = _recent(canonical, config, now, weekends=False)
    # Scaled by a fixed day's close so rates sit near 1 and stay a function of the day.
    scale = 1 / bar_on(symbol_key(canonical, config.seed), _FX_ANCHOR).close
    series: dict[str, dict[str, str]] = {}
    for bar in bars:
        series[bar.day.isoformat()] = {
            "1. open": f"{bar.open * scale:.5f}",
            "2. high": f"{bar.high * scale:.5f}",
            "3. low": f"{bar.low * scale:.5f}",
            "4. close": f"{bar.close * scale:.5f}",
        }
    meta = {
        "1. Information": "Forex Daily Prices (open, high, low, close)",
        "2. From Symbol": base,
        "3. To Symbol": quote,
        "4. Output Size": "Compact",
        "5. Last Refreshed": bars[0].day.isoformat(),
        "6. Time Zone": "UTC",
    }
    return {"Meta Data": meta, "Time Series FX (Daily)": series}


def query_response(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body Alpha Vantage sends (always with HTTP 200) for ``query`` at ``now``."""
    function = query.get("function", "")
    if function in _PREMIUM:
        return {"Information": _PREMIUM_ENDPOINT}
    if function == "TIME_SERIES_DAILY":
        return _daily(query, config, now)
    if function == "GLOBAL_QUOTE":
        return _quote(query, config, now)
    if function == "FX_DAILY":
        return _fx_daily(query, config, now)
    return {"Error Message": f"This API function ({function}) does not exist."}


def _rate_limited(limit: tuple[int, float], strikes: int) -> web.Response:
    """The burst text for a window of a minute or less, else the day's."""
    return web.json_response({"Information": PER_SECOND if limit[1] <= 60 else PER_DAY})


def _query(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(query_response(request.query, config, now))


def _bad_key() -> web.Response:
    return web.json_response({"Error Message": BAD_KEY})


#: Alpha Vantage's ``/query`` under ``/alphavantage``: every answer is HTTP 200.
API = SimApi(
    name="alphavantage",
    base_path=PREFIX,
    routes=(Route(f"{PREFIX}/query", _query, symbol=query_param("symbol", "from_symbol")),),
    rate_limited=_rate_limited,
    keys=Keys(read=lambda r: r.query.get("apikey", ""), refused=_bad_key, missing=_bad_key),
)
