"""CoinGecko's API v3 as the simulator speaks it, under the path prefix ``/coingecko``.

Point the provider at ``base_url = f"{sim.url}/coingecko"`` (it stands for
``https://api.coingecko.com/api/v3``, the Demo/keyless host). Routes (PROVIDERS.md
section 8):

- ``GET /coingecko/simple/price?ids=bitcoin,ethereum&vs_currencies=usd,eur
  &include_last_updated_at=true``: ``{id: {vs: price, "last_updated_at": s}}``; unknown ids
  are simply missing (``{}`` when none is known).
- ``GET /coingecko/coins/{id}/market_chart/range?vs_currency=usd&from=<s>&to=<s>``:
  ``prices``/``market_caps``/``total_volumes`` as ``[epoch ms, value]`` pairs. Granularity
  is CoinGecko's: daily samples at 00:00 UTC for ranges over 90 days, hourly (at 4 min
  7 s past the hour) over a day, 5-minutely below. The sample at 00:00 UTC of day D+1 is
  the close of the synthetic series on UTC day D (other samples interpolate), its 24 h
  volume that day's volume times close; and when ``to`` reaches now, the **last sample is the
  live price at now**, as CoinGecko sends it.

A coin id maps to the canonical series the other routes serve through the provider's
declared table (``bitcoin`` + ``usd`` → ``BTC-USD``); other ids get a series of their own.
The key is optional (keyless works): ``x-cg-demo-api-key`` header or
``x_cg_demo_api_key`` query. ``BADKEY`` → 401 error 10002-style; a *Pro* key header on
this (Demo) host → 401 error 10010; ``from`` more than 365 days back → 401 error 10012
(plan-gated); unknown id (``zzz…`` or ``SimConfig.unknown_symbols``) → 404 ``{"error":
"coin not found"}``; past ``SimConfig.provider_limits["coingecko"]`` → 429
``{"status": {"error_code": 429, ...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from finappd.providers.coingecko import COIN_IDS
from finappd.sim.config import SimConfig
from finappd.sim.prices import bar_on, symbol_key
from finappd.sim.routes import Keys, Route, SimApi, path_param, query_param, unknown

__all__ = [
    "API",
    "PREFIX",
    "RATE_LIMIT",
    "canonical_symbol",
    "market_chart_response",
    "simple_price_response",
]

PREFIX = "/coingecko"
RATE_LIMIT = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)
_TICKERS = {coin: ticker for ticker, coin in COIN_IDS.items()}
_DAY = 86400
_HOURLY_OFFSET = 247  # seconds past the hour: real hourly samples are not on the hour
_HISTORY = 365 * _DAY
_SUPPLY = 19.6e6

Body = dict[str, Any]


def _status_error(code: int, message: str) -> Body:
    return {"status": {"error_code": code, "error_message": message}}


def canonical_symbol(coin: str, vs: str) -> str:
    """The canonical series of ``coin`` priced in ``vs`` (``bitcoin``, ``usd`` → BTC-USD)."""
    return f"{_TICKERS.get(coin, coin.upper())}-{vs.upper()}"


def _unknown(coin: str, config: SimConfig) -> bool:
    return unknown(config, coin, prefix="zzz")


def _close(key: int, day: date) -> float:
    return bar_on(key, day).close


def _price_at(key: int, stamp: int) -> float:
    """The price at ``stamp`` (s): the close of the previous UTC day at midnight, interpolated."""
    midnight = stamp - stamp % _DAY
    day = datetime.fromtimestamp(midnight, UTC).date()
    before, after = _close(key, day - timedelta(days=1)), _close(key, day)
    return round(before + (after - before) * (stamp - midnight) / _DAY, 4)


def _step(span: int) -> tuple[int, int]:
    """``(step, offset)`` in seconds of CoinGecko's automatic granularity for ``span``."""
    if span > 90 * _DAY:
        return _DAY, 0
    if span > _DAY:
        return 3600, _HOURLY_OFFSET
    return 300, 0


def market_chart_response(
    coin: str, query: Mapping[str, str], config: SimConfig, now: float
) -> tuple[int, Body]:
    """The status and JSON body of ``/coins/{coin}/market_chart/range`` at ``now``."""
    if _unknown(coin, config):
        return 404, {"error": "coin not found"}
    vs = query.get("vs_currency", "").lower()
    try:
        first, last = int(float(query["from"])), int(float(query["to"]))
    except (KeyError, ValueError):
        return 400, {"error": "Missing or invalid parameter: from/to"}
    if not vs:
        return 400, {"error": "Missing parameter vs_currency"}
    if first < now - _HISTORY:
        message = (
            "Your request exceeds the allowed time range. Public API users are limited to "
            "querying historical data within the past 365 days."
        )
        body = _status_error(10012, message)
        body["status"]["timestamp"] = datetime.fromtimestamp(now, UTC).isoformat()
        return 401, {"error": body}
    key = symbol_key(canonical_symbol(coin, vs), config.seed)
    step, offset = _step(last - first)
    stamps = list(range(first - first % step + offset, min(last, int(now)) + 1, step))
    stamps = [s for s in stamps if s >= first]
    points = [(s, _price_at(key, s)) for s in stamps]
    if last >= now:
        points.append((int(now), _price_at(key, int(now))))  # the live price
    volumes = []
    for stamp, price in points:
        day = datetime.fromtimestamp(stamp - _DAY, UTC).date()
        volumes.append([stamp * 1000, round(bar_on(key, day).volume * price, 2)])
    return 200, {
        "prices": [[s * 1000, p] for s, p in points],
        "market_caps": [[s * 1000, round(p * _SUPPLY, 2)] for s, p in points],
        "total_volumes": volumes,
    }


def simple_price_response(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body (HTTP 200) of ``/simple/price``: known ids only, ``{}`` when none."""
    ids = [i for i in query.get("ids", "").lower().split(",") if i]
    currencies = [c for c in query.get("vs_currencies", "").lower().split(",") if c]
    stamp = int(now) - int(now) % 60  # CoinGecko refreshes about once a minute
    body: Body = {}
    for coin in ids:
        if _unknown(coin, config):
            continue
        entry: Body = {
            vs: _price_at(symbol_key(canonical_symbol(coin, vs), config.seed), stamp)
            for vs in currencies
        }
        if query.get("include_last_updated_at") == "true":
            entry["last_updated_at"] = stamp
        body[coin] = entry
    return body


def _pro_key(request: web.Request) -> web.Response | None:
    """A Pro key header on this (Demo) host: error 10010."""
    if "x-cg-pro-api-key" not in request.headers:
        return None
    message = (
        "If you are using Pro API key, please change your root URL from "
        "api.coingecko.com to pro-api.coingecko.com"
    )
    return web.json_response({"error": _status_error(10010, message)}, status=401)


def _demo_key(request: web.Request) -> str:
    return request.headers.get("x-cg-demo-api-key") or request.query.get("x_cg_demo_api_key", "")


def _price(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(simple_price_response(request.query, config, now))


def _chart(request: web.Request, config: SimConfig, now: float) -> web.Response:
    status, body = market_chart_response(request.match_info["coin"], request.query, config, now)
    return web.json_response(body, status=status)


#: CoinGecko's simple/price and market_chart/range under ``/coingecko``; the key is optional.
API = SimApi(
    name="coingecko",
    base_path=PREFIX,
    routes=(
        Route(f"{PREFIX}/simple/price", _price, symbol=query_param("ids")),
        Route(f"{PREFIX}/coins/{{coin}}/market_chart/range", _chart, symbol=path_param("coin")),
    ),
    rate_limited=lambda limit, strikes: web.json_response(
        _status_error(429, RATE_LIMIT), status=429
    ),
    keys=Keys(
        read=_demo_key,
        refused=lambda: web.json_response(
            _status_error(10002, "Invalid API key. Please check your API key."), status=401
        ),
    ),
    refuse=_pro_key,
)
