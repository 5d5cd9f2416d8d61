"""Twelve Data's REST API as the simulator speaks it, under the path prefix ``/twelvedata``.

Point the provider at ``base_url = f"{sim.url}/twelvedata"`` (it stands for
``https://api.twelvedata.com``). Routes (PROVIDERS.md section 7), key in the header
``Authorization: apikey <key>`` or the ``apikey`` query parameter:

- ``GET /twelvedata/time_series?symbol=AAPL&interval=1day&start_date=&end_date=&order=
  &outputsize=``: ``{"meta": {...}, "values": [...], "status": "ok"}``, every number a
  string with 5 decimals, newest first unless ``order=asc``, at most ``outputsize`` rows
  (default 30, the newest), ``start_date..end_date`` inclusive and never past today.
  FX pairs have no ``volume``; pairs of the ECB set close at the same simulated fixes the
  FX routes publish (:func:`finappd.sim.ecb.ecb_rate`).
- ``GET /twelvedata/quote?symbol=AAPL``: the flat quote object (``close`` is the latest
  price, ``previous_close``, ``timestamp`` = session open, ``last_quote_at``).

Symbols map back to the canonical series the other routes serve: ``BRK.B`` → ``BRK-B``,
``EUR/USD`` → ``EURUSD=X``, ``BTC/USD`` → ``BTC-USD``. Every error is Twelve Data's
``{"code", "message", "status": "error"}`` body with HTTP 200 (the classic shape the
python client handles), except a refused key, whose HTTP status is 401 as well (both are
seen live): missing key or ``BADKEY`` → 401; unknown symbol (``ZZZ…`` or
``SimConfig.unknown_symbols``) → 404 "not found"; symbols starting ``PREM`` → 403 "not
available with your plan"; no trading day in range → 400 "No data is available on the
specified dates"; an interval other than ``1day`` → 400. Past
``SimConfig.provider_limits["twelvedata"]`` the answer is code 429 with HTTP 200: the
per-minute credits message, or the daily one when the window is a day or longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.ecb import ECB_REFERENCE, ecb_rate
from finappd.sim.exchanges import Listing, listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, query_param, unknown

__all__ = [
    "API",
    "DAY_CREDITS",
    "MINUTE_CREDITS",
    "NO_DATA",
    "PREFIX",
    "canonical_symbol",
    "quote_response",
    "time_series_response",
]

PREFIX = "/twelvedata"
MINUTE_CREDITS = (
    "You have run out of API credits for the current minute. {used} API credits were used, "
    "with the current limit being {limit}. Wait for the next minute or consider switching to "
    "a higher tier plan at https://twelvedata.com/pricing"
)
DAY_CREDITS = (
    "You have run out of API credits for the day. {used} API credits were used, with the "
    "current limit being {limit}. Wait for the next day or consider switching to a higher "
    "tier plan at https://twelvedata.com/pricing"
)
NO_DATA = "No data is available on the specified dates. Try setting different start/end dates."
_BAD_KEY = (
    "**apikey** parameter is incorrect or not specified. You can get your free API key "
    "instantly following this link: https://twelvedata.com/pricing"
)
# ISO codes of the fiat currencies: a pair of two is FX (canonical =X), else crypto (-USD).
_FIAT = frozenset("AUD CAD CHF CNY EUR GBP HKD JPY NOK NZD SEK SGD USD".split())  # noqa: SIM905 - codes read best inline

Body = dict[str, Any]


def canonical_symbol(symbol: str) -> str:
    """The canonical series a Twelve Data symbol serves (``EUR/USD`` → ``EURUSD=X``)."""
    text = symbol.strip().upper()
    base, slash, quote = text.partition("/")
    if slash:
        return f"{base}{quote}=X" if base in _FIAT and quote in _FIAT else f"{base}-{quote}"
    stem, dot, suffix = text.rpartition(".")
    if dot and len(suffix) == 1 and suffix not in ("L", "T"):  # share class, not an exchange
        return f"{stem}-{suffix}"
    return text


def error(code: int, message: str) -> Body:
    """Twelve Data's error body."""
    return {"code": code, "message": message, "status": "error"}


def _refusal(symbol: str, config: SimConfig) -> Body | None:
    """The error body for a symbol the simulator will not serve, else None."""
    canonical = canonical_symbol(symbol)
    if not symbol:
        return error(400, "**symbol** parameter is missing or invalid.")
    if unknown(config, symbol, canonical):
        return error(
            404,
            f"**symbol** not found: {symbol}. Please specify it correctly according to API "
            "Documentation.",
        )
    if canonical.startswith("PREM"):
        return error(
            403,
            f"**symbol** {symbol} is not available with your plan. You may select the "
            "appropriate plan at https://twelvedata.com/pricing",
        )
    return None


def _fx_bar(pair: str, day: date, seed: int) -> SimBar:
    """A bar of an ECB-set pair (``EURUSD=X``): closes are the simulated ECB fixes."""
    base, quote = pair[:3], pair[3:6]

    def fix(on: date) -> float:
        return ecb_rate(quote, on, seed) / ecb_rate(base, on, seed)

    close, opened = fix(day), fix(day - timedelta(days=1))
    high, low = max(close, opened) * 1.002, min(close, opened) * 0.998
    return SimBar(day, round(opened, 5), round(high, 5), round(low, 5), round(close, 5), 0.0, 0)


def _bar(canonical: str, day: date, seed: int) -> SimBar:
    """The bar a symbol's series has on ``day``; FX pairs of the ECB set move like its fixes."""
    pair = canonical.removesuffix("=X")
    if pair != canonical and {pair[:3], pair[3:]} <= {*ECB_REFERENCE, "EUR"}:
        return _fx_bar(pair, day, seed)
    return bar_on(symbol_key(canonical, seed), day)


def _fmt(value: float) -> str:
    return f"{value:.5f}"


def _meta(symbol: str, listing: Listing) -> Body:
    if listing.instrument_type == "CURRENCY":
        return {"symbol": symbol, "interval": "1day", "currency_base": symbol[:3],
                "currency_quote": symbol[-3:], "type": "Physical Currency"}  # fmt: skip
    return {
        "symbol": symbol,
        "interval": "1day",
        "currency": listing.currency,
        "exchange_timezone": listing.tz_name,
        "exchange": listing.exchange_name,
        "mic_code": "XNGS" if listing.exchange_name == "NMS" else listing.exchange_name,
        "type": "Digital Currency" if listing.trades_weekends else "Common Stock",
    }


def _value(bar: SimBar, *, volume: bool) -> Body:
    row: Body = {"datetime": bar.day.isoformat()}
    row.update({k: _fmt(getattr(bar, k)) for k in ("open", "high", "low", "close")})
    if volume:
        row["volume"] = str(bar.volume)
    return row


def time_series_response(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body (always HTTP 200) of ``/time_series`` for ``query`` at ``now``."""
    symbol = query.get("symbol", "")
    if (refused := _refusal(symbol, config)) is not None:
        return refused
    if query.get("interval") != "1day":
        return error(400, f"**interval** {query.get('interval')!r} is not supported.")
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    try:
        first = date.fromisoformat(query.get("start_date", "1990-01-01")[:10])
        last = min(date.fromisoformat(query.get("end_date", today.isoformat())[:10]), today)
        size = int(query.get("outputsize", "30"))
    except ValueError:
        return error(400, "**start_date**, **end_date** or **outputsize** is invalid.")
    days = trading_days(first, last, weekends=listing.trades_weekends)[-size:] if size > 0 else []
    if not days:
        return error(
            400,
            "No data is available on the specified dates. Try setting different start/end dates.",
        )
    volume = listing.instrument_type != "CURRENCY"
    values = [_value(_bar(canonical, day, config.seed), volume=volume) for day in days]
    if query.get("order", "desc").lower() != "asc":
        values.reverse()
    return {"meta": _meta(symbol.upper(), listing), "values": values, "status": "ok"}


def quote_response(query: Mapping[str, str], config: SimConfig, now: float) -> Body:
    """The JSON body (always HTTP 200) of ``/quote`` for ``query`` at ``now``."""
    symbol = query.get("symbol", "")
    if (refused := _refusal(symbol, config)) is not None:
        return refused
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    days = trading_days(today - timedelta(days=7), today, weekends=listing.trades_weekends)
    last, previous = (_bar(canonical, day, config.seed) for day in (days[-1], days[-2]))
    opened = datetime.combine(last.day, listing.open_time, tzinfo=listing.tz)
    quoted = min(now, (opened + timedelta(hours=6, minutes=30)).timestamp())
    change = last.close - previous.close
    year = [_bar(canonical, day, config.seed) for day in days]  # the week stands in for it
    low, high = min(b.low for b in year), max(b.high for b in year)
    return {
        "symbol": symbol.upper(),
        "name": f"{canonical} (simulated)",
        "exchange": listing.exchange_name,
        "mic_code": _meta(symbol, listing).get("mic_code", listing.exchange_name),
        "currency": listing.currency,
        "datetime": last.day.isoformat(),
        "timestamp": int(opened.timestamp()),
        "last_quote_at": int(quoted),
        **_value(last, volume=True),
        "previous_close": _fmt(previous.close),
        "change": _fmt(change),
        "percent_change": _fmt(change / previous.close * 100),
        "average_volume": str(round(sum(b.volume for b in year) / len(year))),
        "is_market_open": quoted < (opened + timedelta(hours=6, minutes=30)).timestamp(),
        "fifty_two_week": {
            "low": _fmt(low),
            "high": _fmt(high),
            "low_change": _fmt(last.close - low),
            "high_change": _fmt(last.close - high),
            "low_change_percent": _fmt((last.close - low) / low * 100),
            "high_change_percent": _fmt((last.close - high) / high * 100),
            "range": f"{low:.6f} - {high:.6f}",
        },
    }


def _key(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "apikey" and token:
        return token.strip()
    return request.query.get("apikey", "")


def _rate_limited(limit: tuple[int, float], strikes: int) -> web.Response:
    """Code 429 with HTTP 200; the credits "used" grow with every refusal in a row."""
    text = DAY_CREDITS if limit[1] >= 86400 else MINUTE_CREDITS
    return web.json_response(error(429, text.format(used=limit[0] + strikes, limit=limit[0])))


def _bad_key() -> web.Response:
    return web.json_response(error(401, _BAD_KEY), status=401)


def _series(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(time_series_response(request.query, config, now))


def _latest(request: web.Request, config: SimConfig, now: float) -> web.Response:
    return web.json_response(quote_response(request.query, config, now))


#: Twelve Data's time_series and quote under ``/twelvedata``; keys are checked first.
API = SimApi(
    name="twelvedata",
    base_path=PREFIX,
    routes=(
        Route(f"{PREFIX}/time_series", _series, symbol=query_param("symbol")),
        Route(f"{PREFIX}/quote", _latest, symbol=query_param("symbol")),
    ),
    rate_limited=_rate_limited,
    keys=Keys(read=_key, refused=_bad_key, missing=_bad_key),
    key_before_window=True,
)
