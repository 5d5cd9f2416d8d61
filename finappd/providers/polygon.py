"""Polygon.io, renamed Massive on 2025-10-30: daily aggregates, previous close, dividends, splits.

- **URL**: ``https://api.massive.com`` (``api.polygon.io`` still served):
  ``GET /v2/aggs/ticker/{T}/range/1/day/{YYYY-MM-DD}/{YYYY-MM-DD}?adjusted=true&sort=asc
  &limit=50000`` (bars ``o,h,l,c,v,vw,n,t``; split-adjusted only, so ``close`` is
  split-adjusted and ``adj_close`` None); ``GET /v2/aggs/ticker/{T}/prev`` (the previous
  session's bar, served as the quote: free plans have no live price);
  ``GET /v3/reference/dividends`` and ``/v3/reference/splits`` filtered by ticker and date.
- **Auth**: header ``Authorization: Bearer <key>`` (as the official client does); the
  ``apiKey`` query form is not used, so the key is never in a URL.
- **Pagination**: ``next_url`` (with a ``cursor``, without the key) is never followed
  blindly: at most ``MAX_PAGES`` pages per call, each one its own polite request, and only
  on the same origin as ``base_url`` (the bearer key must not go elsewhere). With
  ``limit=50000`` one daily page covers 137 years, so a ``next_url`` is not expected; one
  left unfollowed is logged (``provider.next_url_not_followed``) and the pages read are used.
- **Symbols**: ``AAPL``, share classes with a dot (``BRK-B`` → ``BRK.B``), indices
  ``^GSPC`` → ``I:SPX``, FX ``EURUSD=X`` → ``C:EURUSD``, crypto ``BTC-USD`` → ``X:BTCUSD``.
- **Timezone**: ``t`` is epoch **milliseconds** of the bar start: 00:00 New York for US
  stocks and indices (1577941200000 = 2020-01-02 05:00 UTC), 00:00 UTC for FX (``C:``)
  and crypto (``X:``; recorded: 1672531200000 = 2023-01-01 00:00 UTC for X:BTCUSD); the
  date is ``t``'s date in that zone (for stocks never the UTC date).
- **Limits**: free ("Basic") 5 requests/minute, ~2 years of history, end of day only:
  asking for today before it ends is refused, so ``end`` is clamped to the last finished
  New York day (today after 20:00). Defaults: 1 in flight, 5/minute.
- **Errors**: 429 JSON ``status: ERROR`` (RATE_LIMITED, no Retry-After); 401 ``API Key was
  not provided`` / unknown key (AUTH); 403 ``status: NOT_AUTHORIZED`` "not entitled", "plan
  doesn't include this data timeframe" (PLAN_GATED, so a fallback can serve it); HTTP 200
  ``status`` ``OK`` or ``DELAYED`` (both success). ``resultsCount: 0`` without ``results``
  is an unknown ticker *or* a range without trading days (indistinguishable): NOT_FOUND when
  the range spans a full week of weekdays, else EMPTY; empty reference lists are EMPTY.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from urllib.parse import quote as urlquote
from zoneinfo import ZoneInfo

import structlog
import yarl

from finappd.providers._http import decode_json
from finappd.providers.base import (
    BaseProvider,
    Capability,
    Classified,
    Limits,
    Response,
    Verdict,
    redact_url,
)
from finappd.records import Bar, Dividend, Quote, Split

__all__ = [
    "MAX_PAGES",
    "PolygonProvider",
    "bar_tz",
    "classify_polygon",
    "last_served_day",
    "parse_aggs",
    "parse_dividends",
    "parse_prev",
    "parse_splits",
    "polygon_symbol",
]

log = structlog.get_logger(__name__)

MAX_PAGES = 3
_NEW_YORK = ZoneInfo("America/New_York")
_MALFORMED = (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError)
_INDICES = {"^GSPC": "I:SPX", "^DJI": "I:DJI", "^IXIC": "I:COMP", "^NDX": "I:NDX"}
_FULL_WEEK = 5
#: The hour (New York) after which the free plan serves today's bar.
_EOD_HOUR = 20


def polygon_symbol(symbol: str) -> str:
    """Polygon's ticker for a Yahoo-style one (``BRK-B`` → ``BRK.B``, ``^GSPC`` → ``I:SPX``)."""
    upper = symbol.upper()
    if upper[:2] in ("I:", "C:", "X:", "O:"):
        return upper
    if upper in _INDICES:
        return _INDICES[upper]
    if upper.startswith("^"):
        return f"I:{upper[1:]}"
    if upper.endswith("=X"):
        return f"C:{upper[:-2]}"
    head, dash, tail = upper.partition("-")
    if dash and tail == "USD":
        return f"X:{head}USD"
    if dash and len(tail) == 1:
        return f"{head}.{tail}"
    return upper


def bar_tz(ticker: str) -> ZoneInfo:
    """The zone whose midnight starts a daily bar: UTC for FX (``C:``) and crypto (``X:``),
    else New York (stocks, indices)."""
    return ZoneInfo("UTC") if ticker.startswith(("C:", "X:")) else _NEW_YORK


def last_served_day(now: datetime) -> date:
    """The last New York day the free plan serves at ``now``: today after 20:00, else yesterday."""
    local = now.astimezone(_NEW_YORK)
    return local.date() if local.hour >= _EOD_HOUR else local.date() - timedelta(days=1)


def _weekdays(start: date, end: date) -> int:
    return sum(1 for i in range((end - start).days + 1) if (start + timedelta(i)).weekday() < 5)


def _path_day(text: str) -> date:
    """A ``from``/``to`` path segment (``YYYY-MM-DD``, or epoch ms as in ``next_url``) as a day."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, _NEW_YORK).date()
    return date.fromisoformat(text)


def _no_results(path: str) -> Classified:
    """No aggregates: "unknown ticker" over a full week of weekdays, else an empty range."""
    parts = path.split("/")
    if parts[-1] == "prev":
        return Classified(Verdict.NOT_FOUND, "no previous bar (unknown ticker)")
    try:
        first, last = _path_day(parts[-2]), _path_day(parts[-1])
    except (IndexError, ValueError, OverflowError):
        return Classified(Verdict.NOT_FOUND, "resultsCount 0 (unknown ticker)")
    if _weekdays(first, last) >= _FULL_WEEK:
        return Classified(Verdict.NOT_FOUND, "resultsCount 0 over a full week (unknown ticker)")
    return Classified(Verdict.EMPTY, "resultsCount 0 in a range without a full week")


def classify_polygon(status: int, text: str, url: str) -> Classified | None:
    """Polygon's verdict for a response, or None where the status alone decides."""
    try:
        payload: Any = decode_json(text)
    except json.JSONDecodeError:
        payload = None
    fields = payload if isinstance(payload, dict) else {}
    message = str(fields.get("message") or fields.get("error") or "")[:160]
    if fields.get("status") == "NOT_AUTHORIZED" or (status == 403 and "plan" in message):
        return Classified(Verdict.PLAN_GATED, message or "NOT_AUTHORIZED")
    if status == 401:
        return Classified(Verdict.AUTH, message or "HTTP 401")
    if status != 200:
        return None
    if payload is None:
        head = text.lstrip()[:1]
        if not head or head == "<":
            return Classified(Verdict.TRANSIENT, "empty or HTML body instead of JSON")
        return Classified(Verdict.BAD, "body is not JSON")
    if fields.get("status") not in ("OK", "DELAYED"):
        return Classified(Verdict.BAD, f"status {fields.get('status')!r}: {message}")
    path = yarl.URL(url).path
    if not fields.get("results"):
        if "/v2/aggs/" in path:
            return _no_results(path)
        return Classified(Verdict.EMPTY, "no results")
    return Classified(Verdict.OK)


def parse_aggs(
    payload: Mapping[str, Any], symbol: str, start: date, end: date, tz: ZoneInfo
) -> list[Bar]:
    """Bars of an aggregates body whose date (``t`` ms in ``tz``) is in ``start..end``."""
    bars: dict[date, Bar] = {}
    for row in payload.get("results") or []:
        day = datetime.fromtimestamp(row["t"] / 1000, tz).date()
        if not start <= day <= end:
            continue
        volume = row.get("v")
        bars[day] = Bar(
            symbol=symbol,
            ts=day,
            open=float(row["o"]),
            high=float(row["h"]),
            low=float(row["l"]),
            close=float(row["c"]),
            adj_close=None,  # adjusted=true is split-only: there is no dividend-adjusted close
            volume=float(volume) if volume is not None else None,
        )
    return [bars[day] for day in sorted(bars)]


def parse_prev(payload: Mapping[str, Any], symbol: str, tz: ZoneInfo) -> Quote:
    """The previous session's close as a Quote, stamped at 16:00 New York of its day."""
    row = payload["results"][0]
    day = datetime.fromtimestamp(row["t"] / 1000, tz).date()
    ts = datetime.combine(day, time(16), _NEW_YORK).astimezone(UTC)
    return Quote(symbol=symbol, ts=ts, price=float(row["c"]), currency="USD")


def parse_dividends(payload: Mapping[str, Any], symbol: str) -> list[Dividend]:
    """Cash dividends of a ``/v3/reference/dividends`` body."""
    return [
        Dividend(
            symbol=symbol,
            ex_date=date.fromisoformat(row["ex_dividend_date"]),
            amount=float(row["cash_amount"]),
            currency=row.get("currency"),
        )
        for row in payload.get("results") or []
    ]


def parse_splits(payload: Mapping[str, Any], symbol: str) -> list[Split]:
    """Splits of a ``/v3/reference/splits`` body (``split_from:1, split_to:20`` is 20:1)."""
    return [
        Split(
            symbol=symbol,
            ex_date=date.fromisoformat(row["execution_date"]),
            numerator=float(row["split_to"]),
            denominator=float(row["split_from"]),
        )
        for row in payload.get("results") or []
    ]


class PolygonProvider(BaseProvider):
    """Daily bars, previous close and corporate actions from Polygon/Massive."""

    kind: ClassVar[str] = "polygon"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE, Capability.ACTIONS}
    )
    default_base_url: ClassVar[str] = "https://api.massive.com"
    default_limits: ClassVar[Limits] = Limits(max_concurrency=1, rates=("5/minute",))
    requires_key: ClassVar[bool] = True
    max_range_days: ClassVar[int | None] = 730  # the free plan's ~2 years of history

    def auth_headers(self) -> Mapping[str, str]:
        """The key travels as a bearer token, never in the URL."""
        return {"Authorization": f"Bearer {self.api_key()}"}

    def map_symbol(self, symbol: str) -> str:
        """``BRK-B`` → ``BRK.B``, ``^GSPC`` → ``I:SPX``, ``EURUSD=X`` → ``C:EURUSD``…"""
        return polygon_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Polygon's body rules first (NOT_AUTHORIZED, resultsCount 0), then the status."""
        found = classify_polygon(response.status, response.text, response.url)
        return found if found is not None else super().classify(response)

    async def _pages(
        self, url: str, params: Mapping[str, str], symbol: str
    ) -> tuple[Response, list[Mapping[str, Any]]]:
        """The last response and every page's body, following ``next_url`` a bounded number
        of times on the same origin (an EMPTY first page gives no bodies)."""
        response = await self.http.get(url, params=params, symbol=symbol)
        pages: list[Mapping[str, Any]] = []
        origin = yarl.URL(self.base_url).origin()
        while response.verdict is Verdict.OK:
            payload = response.json()  # classify() saw it decode
            pages.append(payload)
            next_url = payload.get("next_url")
            if not next_url:
                break
            if len(pages) >= MAX_PAGES or yarl.URL(next_url).origin() != origin:
                log.warning(
                    "provider.next_url_not_followed",
                    provider=self.name,
                    symbol=symbol,
                    pages=len(pages),
                    next_url=redact_url(next_url),
                )
                break
            response = await self.http.get(next_url, symbol=symbol)
        return response, pages

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for ``start..end``, ``end`` clamped to the last served day."""
        end = min(end, last_served_day(datetime.now(UTC)))
        if end < start:
            return []
        ticker = self.api_symbol(symbol)
        path = f"/v2/aggs/ticker/{urlquote(ticker, safe=':.')}/range/1/day/{start}/{end}"
        params = {"adjusted": "true", "sort": "asc", "limit": "50000"}
        response, pages = await self._pages(f"{self.base_url}{path}", params, symbol)
        try:
            bars = {
                b.ts: b for p in pages for b in parse_aggs(p, symbol, start, end, bar_tz(ticker))
            }
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed aggregates: {exc!r}") from exc
        return [bars[day] for day in sorted(bars)]

    async def quote(self, symbol: str) -> Quote:
        """The previous session's close of ``symbol`` (``/prev``; free plans have no live price)."""
        ticker = self.api_symbol(symbol)
        url = f"{self.base_url}/v2/aggs/ticker/{urlquote(ticker, safe=':.')}/prev"
        response = await self.http.get(url, symbol=symbol)
        try:
            return parse_prev(response.json(), symbol, bar_tz(ticker))
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed previous close: {exc!r}") from exc

    async def actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Dividend], list[Split]]:
        """Dividends going ex and splits executed in ``start..end`` (two requests)."""
        ticker = self.api_symbol(symbol)
        dividends: list[Dividend] = []
        splits: list[Split] = []
        for kind, field in (("dividends", "ex_dividend_date"), ("splits", "execution_date")):
            params = {
                "ticker": ticker,
                f"{field}.gte": start.isoformat(),
                f"{field}.lte": end.isoformat(),
                "order": "asc",
                "sort": field,
                "limit": "1000",
            }
            url = f"{self.base_url}/v3/reference/{kind}"
            response, pages = await self._pages(url, params, symbol)
            try:
                for page in pages:
                    if kind == "dividends":
                        dividends.extend(parse_dividends(page, symbol))
                    else:
                        splits.extend(parse_splits(page, symbol))
            except _MALFORMED as exc:
                raise self._bad(response, symbol, f"malformed {kind}: {exc!r}") from exc
        return dividends, splits
