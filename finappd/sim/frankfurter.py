"""Frankfurter's v1 API (ECB reference rates) as the simulator speaks it, under ``/frankfurter``.

Point the provider at ``base_url = f"{sim.url}/frankfurter/v1"`` (it stands for
``https://api.frankfurter.dev/v1``); ``f"{sim.url}/frankfurter-app"`` stands for the old
host ``api.frankfurter.app``, which answers every path with a 301 to the same path under
``/frankfurter/v1`` (PROVIDERS.md section 9). Routes:

- ``GET /frankfurter/v1/{start}..{end}?base=EUR&symbols=USD,GBP`` (``end`` optional → the
  latest): ``{"amount", "base", "start_date", "end_date", "rates": {date: {code: rate}}}``,
  the start snapped back to the last publication on or before it, as Frankfurter does.
- ``GET /frankfurter/v1/{date}`` and ``/frankfurter/v1/latest``: ``{"amount", "base",
  "date", "rates"}``, ``date`` the publication on or before the asked one.

Rates are deterministic and ECB-like: published on TARGET working days (no weekends, New
Year, Good Friday, Easter Monday, 1 May, 25/26 December) at 16:00 Frankfurt time, each
currency's euro rate a reference level (about its 2024 value; the lev is pegged) moved
by a damped synthetic series of ``finappd.sim.prices``, rounded to five significant
digits; other bases are cross rates. Errors in Frankfurter's shapes: an unknown code
(not in the ECB set, ``ZZZ…``, or ``SimConfig.unknown_symbols``) or a range before the
first publication → 404 ``{"message": "not found"}``; the base among the symbols → 422
``{"message": "bad currency pair"}``; a bad date or amount → 422. Past
``SimConfig.provider_limits["frankfurter"]`` (Frankfurter documents no limit; a CDN's
answer is assumed) → 429 ``{"message": "rate limit exceeded"}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from finappd.sim.config import SimConfig, SimStats
from finappd.sim.limits import Gate
from finappd.sim.prices import bar_on, symbol_key

__all__ = [
    "ECB_REFERENCE",
    "OLD_HOST_PREFIX",
    "PREFIX",
    "ecb_rate",
    "frankfurter_routes",
    "is_publication_day",
    "published",
    "rates_response",
]

PREFIX = "/frankfurter"
OLD_HOST_PREFIX = "/frankfurter-app"
FIRST_PUBLICATION = date(1999, 1, 4)
_FRANKFURT = ZoneInfo("Europe/Berlin")
_PUBLISHED_AT = clock_time(16, 0)
_ANCHOR = date(2024, 1, 2)
#: Euro reference rates the synthetic series move around (about their 2024 levels).
ECB_REFERENCE: Mapping[str, float] = {
    "AUD": 1.65, "BGN": 1.9558, "BRL": 5.37, "CAD": 1.47, "CHF": 0.95, "CNY": 7.8,
    "CZK": 25.0, "DKK": 7.4575, "GBP": 0.86, "HKD": 8.5, "HUF": 390.0, "IDR": 17000.0,
    "ILS": 4.0, "INR": 90.0, "ISK": 150.0, "JPY": 160.0, "KRW": 1450.0, "MXN": 18.5,
    "MYR": 5.1, "NOK": 11.6, "NZD": 1.78, "PHP": 61.0, "PLN": 4.32, "RON": 4.97,
    "SEK": 11.4, "SGD": 1.45, "THB": 38.5, "TRY": 34.0, "USD": 1.08, "ZAR": 20.0,
}  # fmt: skip
_PEGGED = frozenset({"BGN"})

Body = dict[str, Any]


@lru_cache(maxsize=256)
def _easter(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    week = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * week) // 433
    month, day = divmod(h + week - 7 * m + 114, 31)
    return date(year, month, day + 1)


def is_publication_day(day: date) -> bool:
    """Whether the ECB publishes on ``day`` (a TARGET working day)."""
    if day.weekday() >= 5 or day < FIRST_PUBLICATION:
        return False
    easter = _easter(day.year)
    closed = {(1, 1), (5, 1), (12, 25), (12, 26)}
    return (day.month, day.day) not in closed and day not in (
        easter - timedelta(days=2),
        easter + timedelta(days=1),
    )


def published(on_or_before: date, now: float) -> date | None:
    """The last publication date on or before ``on_or_before`` already out at ``now``."""
    local_now = datetime.fromtimestamp(now, _FRANKFURT)
    latest = local_now.date()
    if local_now.time() < _PUBLISHED_AT:
        latest -= timedelta(days=1)
    day = min(on_or_before, latest)
    while day >= FIRST_PUBLICATION:
        if is_publication_day(day):
            return day
        day -= timedelta(days=1)
    return None


def _significant(value: float, digits: int = 5) -> float:
    return round(value, max(0, digits - 1 - math.floor(math.log10(abs(value)))))


def ecb_rate(code: str, day: date, seed: int = 0) -> float:
    """Units of ``code`` per euro on ``day`` (1 for EUR), unrounded."""
    if code == "EUR":
        return 1.0
    reference = ECB_REFERENCE[code]
    if code in _PEGGED:
        return reference
    key = symbol_key(f"EUR{code}=X", seed)
    moved = math.log(bar_on(key, day).close) - math.log(bar_on(key, _ANCHOR).close)
    return reference * math.exp(0.15 * moved)


def _rates(base: str, symbols: list[str], day: date, amount: float, seed: int) -> Body:
    per_euro = ecb_rate(base, day, seed)
    return {q: _significant(amount * ecb_rate(q, day, seed) / per_euro) for q in symbols}


def _codes(query: Mapping[str, str]) -> tuple[str, list[str]]:
    base = (query.get("base") or query.get("from") or "EUR").upper()
    wanted = query.get("symbols") or query.get("to") or ""
    symbols = [s.upper() for s in wanted.split(",") if s] or sorted(
        c for c in (*ECB_REFERENCE, "EUR") if c != base
    )
    return base, symbols


def rates_response(
    dates: str, query: Mapping[str, str], config: SimConfig, now: float
) -> tuple[int, Body]:
    """The status and JSON body of ``/v1/{dates}`` (a date, ``latest`` or ``start..end``)."""
    base, symbols = _codes(query)
    known = {*ECB_REFERENCE, "EUR"}
    for code in (base, *symbols):
        if code not in known or code.startswith("ZZZ") or code in config.unknown_symbols:
            return 404, {"message": "not found"}
    if base in symbols:
        return 422, {"message": "bad currency pair"}
    try:
        amount = float(query.get("amount", "1"))
        first_text, dots, last_text = dates.partition("..")
        today = datetime.fromtimestamp(now, _FRANKFURT).date()
        first = today if first_text == "latest" else date.fromisoformat(first_text)
        last = date.fromisoformat(last_text) if last_text else today
    except ValueError:
        return 422, {"message": "invalid date"}
    if not amount > 0:
        return 422, {"message": "invalid amount"}
    start = published(first, now)
    if start is None:
        return 404, {"message": "not found"}
    if not dots:
        rates = _rates(base, symbols, start, amount, config.seed)
        return 200, {"amount": amount, "base": base, "date": start.isoformat(), "rates": rates}
    days: list[date] = []
    day = start
    end = published(last, now) or start
    while day <= end:
        if is_publication_day(day):
            days.append(day)
        day += timedelta(days=1)
    body: Body = {"amount": amount, "base": base, "start_date": start.isoformat()}
    body["end_date"] = days[-1].isoformat() if days else start.isoformat()
    body["rates"] = {d.isoformat(): _rates(base, symbols, d, amount, config.seed) for d in days}
    return 200, body


def frankfurter_routes(
    get_config: Callable[[], SimConfig], clock: Callable[[], float] = time.time
) -> list[web.RouteDef]:
    """aiohttp routes serving Frankfurter v1 under ``/frankfurter`` and the old host's 301s."""
    gate = Gate(SimStats())

    async def rates(request: web.Request) -> web.Response:
        config = get_config()
        limit = config.provider_limits.get("frankfurter")
        if limit is not None:
            if gate.admit(SimConfig(rate_limit=limit), time.monotonic()) is not None:
                return web.json_response({"message": "rate limit exceeded"}, status=429)
            gate.release()  # only the window is the route's business; in-flight is the server's
        status, body = rates_response(request.match_info["dates"], request.query, config, clock())
        headers = {"Cache-Control": "max-age=86400" if status == 200 else "no-store"}
        return web.json_response(body, status=status, headers=headers)

    async def moved(request: web.Request) -> web.Response:
        target = request.rel_url.with_path(f"{PREFIX}/v1/{request.match_info['tail']}")
        raise web.HTTPMovedPermanently(location=str(target))

    return [
        web.get(f"{PREFIX}/v1/{{dates}}", rates),
        web.get(f"{OLD_HOST_PREFIX}/{{tail:.*}}", moved),
    ]
