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

Rates are the simulated ECB fixes of :mod:`finappd.sim.ecb` (TARGET working days, 16:00
Frankfurt time), rounded to five significant digits; other bases are cross rates.
Errors in Frankfurter's shapes: an unknown code
(not in the ECB set, ``ZZZ…``, or ``SimConfig.unknown_symbols``) or a range before the
first publication → 404 ``{"message": "not found"}``; the base among the symbols → 422
``{"message": "bad currency pair"}``; a bad date or amount → 422. Past
``SimConfig.provider_limits["frankfurter"]`` (Frankfurter documents no limit; a CDN's
answer is assumed) → 429 ``{"message": "rate limit exceeded"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from finappd.sim.config import SimConfig
from finappd.sim.ecb import ECB_REFERENCE, ecb_rate, is_publication_day, published
from finappd.sim.routes import Route, SimApi, query_param, unknown

__all__ = ["API", "OLD_HOST_PREFIX", "PREFIX", "rates_response"]

PREFIX = "/frankfurter"
OLD_HOST_PREFIX = "/frankfurter-app"
_FRANKFURT = ZoneInfo("Europe/Berlin")

Body = dict[str, Any]


def _significant(value: float, digits: int = 5) -> float:
    return round(value, max(0, digits - 1 - math.floor(math.log10(abs(value)))))


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
        if code not in known or unknown(config, code):
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


def _rates_answer(request: web.Request, config: SimConfig, now: float) -> web.Response:
    status, body = rates_response(request.match_info["dates"], request.query, config, now)
    headers = {"Cache-Control": "max-age=86400" if status == 200 else "no-store"}
    return web.json_response(body, status=status, headers=headers)


def _moved(request: web.Request, config: SimConfig, now: float) -> web.Response:
    target = request.rel_url.with_path(f"{PREFIX}/v1/{request.match_info['tail']}")
    raise web.HTTPMovedPermanently(location=str(target))


#: Frankfurter v1 under ``/frankfurter`` (no key) and the old host's 301s, outside its limit.
API = SimApi(
    name="frankfurter",
    base_path=f"{PREFIX}/v1",
    routes=(
        Route(f"{PREFIX}/v1/{{dates}}", _rates_answer, symbol=query_param("symbols")),
        Route(f"{OLD_HOST_PREFIX}/{{tail:.*}}", _moved, guarded=False),
    ),
    rate_limited=lambda limit, strikes: web.json_response(
        {"message": "rate limit exceeded"}, status=429
    ),
)
