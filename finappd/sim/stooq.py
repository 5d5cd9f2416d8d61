"""Stooq's CSV download as the simulator speaks it, under the path prefix ``/stooq``.

Point the provider at ``base_url = f"{sim.url}/stooq"``. Routes (PROVIDERS.md section 2):

- ``GET /stooq/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD&apikey=K``: daily bars as CSV
  ``Date,Open,High,Low,Close,Volume``, ascending, exchange-local dates; FX pairs
  (``eurusd``) have no ``Volume`` column, indices (``^spx``) have one (both recorded).
- ``GET /stooq/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv&apikey=K``: the latest bar as CSV
  ``Symbol,Date,Time,Open,High,Low,Close,Volume``, date and time in Warsaw time, ``N/D``
  for an unknown symbol.

Every "no" is HTTP 200, as at Stooq: ``No data`` for an unknown symbol (``ZZZ…`` or
``SimConfig.unknown_symbols``) or a range without trading days; ``Exceeded the daily
hits limit`` past ``SimConfig.provider_limits["stooq"]``; the HTML API-key page for a
missing key or the key ``BADKEY``; the HTML proof-of-work bot wall for the key ``BOTWALL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.exchanges import listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, trading_days
from finappd.sim.routes import Keys, Route, SimApi, query_param, unknown

__all__ = [
    "API",
    "BOT_WALL",
    "DAILY_LIMIT",
    "KEY_PAGE",
    "NO_DATA",
    "PREFIX",
    "canonical_symbol",
    "daily_csv",
    "quote_csv",
]

PREFIX = "/stooq"
NO_DATA = "No data"
DAILY_LIMIT = "Exceeded the daily hits limit"
KEY_PAGE = (
    "<!DOCTYPE html><html><head><title>Stooq</title></head><body>"
    "<p>Access to the CSV download requires an API key. "
    '<a href="/q/d/?s=spy.us&amp;get_apikey">Get your apikey</a> and add '
    "&amp;apikey=... to the link.</p></body></html>"
)
BOT_WALL = (
    "<!DOCTYPE html><html><head><title>Checking your browser</title></head><body>"
    "<noscript>JavaScript is required.</noscript><script>/* proof-of-work: find a nonce "
    "whose SHA-256 has 20 leading zero bits, then POST /__verify */</script></body></html>"
)
_WARSAW = ZoneInfo("Europe/Warsaw")
# Stooq market suffix -> the simulator's canonical suffix, so prices match other routes.
_SUFFIX_BACK = {"us": "", "uk": ".L", "jp": ".T", "de": ".DE", "hk": ".HK", "v": "-USD"}
_INDEX_BACK = {"^spx": "^GSPC", "^dji": "^DJI", "^dax": "^GDAXI", "^ndq": "^IXIC"}


def canonical_symbol(symbol: str) -> str:
    """The canonical symbol whose synthetic series a Stooq symbol serves (``aapl.us`` → AAPL)."""
    lower = symbol.lower()
    if lower in _INDEX_BACK:
        return _INDEX_BACK[lower]
    if lower.startswith("^"):
        return lower.upper()
    base, dot, suffix = lower.rpartition(".")
    if dot and suffix in _SUFFIX_BACK:
        return base.upper() + _SUFFIX_BACK[suffix]
    if len(lower) == 6 and lower.isalpha():  # eurusd
        return f"{lower.upper()}=X"
    return lower.upper()


def _unknown(symbol: str, config: SimConfig) -> bool:
    return unknown(config, symbol, symbol.upper(), canonical_symbol(symbol))


def _day(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC).date()


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _bars(symbol: str, first: date, last: date, config: SimConfig, now: float) -> list[SimBar]:
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    key = symbol_key(canonical, config.seed)
    days = trading_days(first, min(last, today), weekends=listing.trades_weekends)
    return [bar_on(key, day) for day in days]


def daily_csv(query: Mapping[str, str], config: SimConfig, now: float) -> str:
    """The body Stooq's ``/q/d/l/`` sends for ``query`` at ``now`` (always HTTP 200)."""
    symbol = query.get("s", "")
    if not symbol or _unknown(symbol, config) or query.get("i", "d") != "d":
        return NO_DATA
    try:
        first = _day(query["d1"]) if "d1" in query else date(1990, 1, 1)
        last = _day(query["d2"]) if "d2" in query else date(2100, 1, 1)
    except ValueError:
        return NO_DATA
    bars = _bars(symbol, first, last, config, now)
    if not bars:
        return NO_DATA
    with_volume = not canonical_symbol(symbol).endswith("=X")
    lines = ["Date,Open,High,Low,Close" + (",Volume" if with_volume else "")]
    for bar in bars:
        row = [bar.day.isoformat(), *(_fmt(v) for v in (bar.open, bar.high, bar.low, bar.close))]
        if with_volume:
            row.append(str(bar.volume))
        lines.append(",".join(row))
    return "\r\n".join(lines) + "\r\n"


def _quote_row(symbol: str, config: SimConfig, now: float) -> str:
    if _unknown(symbol, config):
        return ",".join([symbol.upper(), *["N/D"] * 7])
    canonical = canonical_symbol(symbol)
    listing = listing_of(canonical)
    today = datetime.fromtimestamp(now, listing.tz).date()
    bars = _bars(symbol, today - timedelta(days=7), today, config, now)
    if not bars:
        return ",".join([symbol.upper(), *["N/D"] * 7])
    bar = bars[-1]
    session_open = datetime.combine(bar.day, listing.open_time, tzinfo=listing.tz)
    closed = session_open + timedelta(hours=6, minutes=30)
    stamp = min(datetime.fromtimestamp(now, UTC), closed).astimezone(_WARSAW)
    prices = [_fmt(v) for v in (bar.open, bar.high, bar.low, bar.close)]
    fields = [symbol.upper(), stamp.date().isoformat(), stamp.strftime("%H:%M:%S")]
    return ",".join([*fields, *prices, str(bar.volume)])


def quote_csv(query: Mapping[str, str], config: SimConfig, now: float) -> str:
    """The body Stooq's ``/q/l/`` sends for ``query`` at ``now`` (``s`` may join symbols by +)."""
    symbols = [s for s in query.get("s", "").replace(" ", "+").split("+") if s]
    rows = [_quote_row(symbol, config, now) for symbol in symbols]
    header = "Symbol,Date,Time,Open,High,Low,Close,Volume"
    return "\r\n".join([header, *rows]) + "\r\n"


def _answer(body: str) -> web.Response:
    kind = "text/html" if body.startswith("<") else "text/plain"
    if body.startswith("Date") or body.startswith("Symbol"):
        kind = "text/csv"
    return web.Response(text=body, content_type=kind)


def _bot_wall(request: web.Request) -> web.Response | None:
    return _answer(BOT_WALL) if request.query.get("apikey") == "BOTWALL" else None


#: Stooq's daily and quote CSV under ``/stooq``: every "no" is HTTP 200.
API = SimApi(
    name="stooq",
    base_path=PREFIX,
    routes=(
        Route(
            f"{PREFIX}/q/d/l/",
            lambda request, config, now: _answer(daily_csv(request.query, config, now)),
            symbol=query_param("s"),
        ),
        Route(
            f"{PREFIX}/q/l/",
            lambda request, config, now: _answer(quote_csv(request.query, config, now)),
            symbol=query_param("s"),
        ),
    ),
    rate_limited=lambda limit, strikes: _answer(DAILY_LIMIT),
    keys=Keys(
        read=lambda request: request.query.get("apikey", ""),
        refused=lambda: _answer(KEY_PAGE),
        missing=lambda: _answer(KEY_PAGE),
    ),
    refuse=_bot_wall,
)
