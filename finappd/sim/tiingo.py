"""Tiingo's end-of-day API as the simulator speaks it: ``GET /tiingo/daily/{ticker}/prices``.

Tiingo's own paths collide with no other API's, so there is no extra prefix: point the
provider at ``base_url = sim.url`` (it stands for ``https://api.tiingo.com``).

- ``GET /tiingo/daily/{ticker}/prices?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD``: a JSON
  array, one object per trading day up to today, ``date`` at midnight UTC of the
  exchange-local trading date, raw and adjusted OHLCV (``adjClose`` from the synthetic
  adjusted close, the other ``adj*`` scaled alike), ``divCash`` and ``splitFactor``. Every
  ticker pays a dividend of 0.4 % of its close on the 10th of Feb/May/Aug/Nov (when that is
  a trading day), and ``aapl`` splits 4:1 on 2020-08-31, so actions can be tested end to end.
  A range without trading days is ``[]``.

Errors in Tiingo's shapes (Django REST framework ``detail`` bodies): a missing key is 401
``Authentication credentials were not provided.``, the key ``BADKEY`` 401 ``Invalid
token.`` (key in ``Authorization: Token <key>`` or the ``token`` query parameter); an
unknown ticker (``ZZZ…`` or ``SimConfig.unknown_symbols``) 404 ``Error: Ticker 'X' not
found``; past ``SimConfig.provider_limits["tiingo"]`` the hourly allocation message as a
429 JSON ``detail`` — or, when the configured window is a day or longer, the daily
allocation message as HTTP 200 plain text, as Tiingo really sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, path_param, unknown

__all__ = ["API", "DAILY_LIMIT", "HOURLY_LIMIT", "PRICES_PATH", "prices_response"]

PRICES_PATH = "/tiingo/daily/{ticker}/prices"
HOURLY_LIMIT = "Error: You have run over your hourly request allocation."
DAILY_LIMIT = "Error: You have run over your daily request allocation."
_DIVIDEND_MONTHS = (2, 5, 8, 11)
_SPLITS: dict[tuple[str, date], float] = {("AAPL", date(2020, 8, 31)): 4.0}


def _row(canonical: str, bar: SimBar) -> dict[str, Any]:
    ratio = bar.adj_close / bar.close
    dividend = 0.0
    if bar.day.day == 10 and bar.day.month in _DIVIDEND_MONTHS:
        dividend = round(bar.close * 0.004, 4)
    return {
        "date": f"{bar.day.isoformat()}T00:00:00.000Z",
        "close": bar.close,
        "high": bar.high,
        "low": bar.low,
        "open": bar.open,
        "volume": bar.volume,
        "adjClose": bar.adj_close,
        "adjHigh": round(bar.high * ratio, 4),
        "adjLow": round(bar.low * ratio, 4),
        "adjOpen": round(bar.open * ratio, 4),
        "adjVolume": bar.volume,
        "divCash": dividend,
        "splitFactor": _SPLITS.get((canonical, bar.day), 1.0),
    }


def prices_response(
    ticker: str, query: Mapping[str, str], config: SimConfig, now: float
) -> tuple[int, Any]:
    """The HTTP status and JSON body of the daily-prices route for ``ticker`` at ``now``."""
    canonical = ticker.upper()  # Tiingo's brk-b is the canonical BRK-B: the same series
    if unknown(config, ticker, canonical):
        return 404, {"detail": f"Error: Ticker '{canonical}' not found"}
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    try:
        first = date.fromisoformat(query.get("startDate", today.isoformat()))
        last = min(date.fromisoformat(query.get("endDate", today.isoformat())), today)
    except ValueError:
        return 400, {"detail": "Error: startDate and endDate must be YYYY-MM-DD"}
    key = symbol_key(canonical, config.seed)
    days = trading_days(first, last, weekends=listing.trades_weekends)
    return 200, [_row(canonical, bar_on(key, day)) for day in days]


def _key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "token" and token:
        return token.strip()
    return request.query.get("token", "")


def _detail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _rate_limited(limit: tuple[int, float], strikes: int) -> web.Response:
    if limit[1] >= 86400:
        return web.Response(text=DAILY_LIMIT, content_type="text/plain")
    return _detail(429, HOURLY_LIMIT)


def _prices(request: web.Request, config: SimConfig, now: float) -> web.Response:
    status, body = prices_response(request.match_info["ticker"], request.query, config, now)
    return web.json_response(body, status=status)


#: Tiingo's daily prices; the key is checked before the request counts against the limit.
API = SimApi(
    name="tiingo",
    base_path="",
    routes=(Route(PRICES_PATH, _prices, symbol=path_param("ticker")),),
    rate_limited=_rate_limited,
    keys=Keys(
        read=_key,
        refused=lambda: _detail(401, "Invalid token."),
        missing=lambda: _detail(401, "Authentication credentials were not provided."),
    ),
    key_before_window=True,
)
