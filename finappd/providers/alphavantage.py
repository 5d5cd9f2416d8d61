"""Alpha Vantage: daily bars, the latest quote and daily FX rates.

- **URL**: ``GET https://www.alphavantage.co/query?function=...&apikey=<key>``;
  ``TIME_SERIES_DAILY&symbol=IBM&outputsize=compact`` (the last 100 trading days: there is no
  date-range parameter, the range is filtered here; ``outputsize=full`` is premium and is
  asked for only when ``start`` is older than compact covers, so a free key answers
  PLAN_GATED and a fallback can serve it), ``GLOBAL_QUOTE&symbol=IBM`` and
  ``FX_DAILY&from_symbol=EUR&to_symbol=USD``. ``TIME_SERIES_DAILY_ADJUSTED`` is premium, so
  bars are raw (``adj_close`` None).
- **Auth**: the ``apikey`` query parameter only: the key is always in the URL, so only
  redacted URLs reach messages and logs.
- **Symbols**: ``IBM``, share classes with a dot (``BRK-B`` → ``BRK.B``), exchange suffixes
  ``.L`` → ``.LON``, ``.TO`` → ``.TRT``, ``.DE`` → ``.DEX`` **[unverified]**.
- **Timezone**: series are keyed by exchange-local date strings (``US/Eastern`` in the meta),
  newest first, every number a string (parsed once to float). ``GLOBAL_QUOTE`` carries only
  the latest trading *day*, so the quote is stamped at that day's 16:00 New York close, or
  now if earlier (the price is intraday then).
- **Limits**: free keys get 25 requests/day (since early 2024; earlier 5/minute and
  500/day) and no documented per-minute limit now; bursts get a "more sparingly (1 request
  per second)" answer. Defaults: 1 in flight, 1/second, 5/minute, 25/day, reset at
  midnight New York **[unverified]**: later than UTC's, so never early.
- **Errors**, all HTTP 200: ``Error Message`` "apikey is invalid or missing" (AUTH) or
  "Invalid API call" (NOT_FOUND: what a symbol it does not know gets); ``Information`` or
  (before 2024) ``Note``: "premium endpoint/feature" (PLAN_GATED), "frequency", "per
  minute/second", "sparingly", "burst" (RATE_LIMITED), "per day", "daily", "rate limit"
  (QUOTA_EXHAUSTED); ``{"Global Quote": {}}`` or ``{}`` (NOT_FOUND); only ``Meta Data``
  or an empty series (EMPTY); a non-JSON page (TRANSIENT).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from finappd.providers.base import BaseProvider, Capability, Classified, Limits, Response, Verdict
from finappd.records import Bar, FxRate, Quote

__all__ = [
    "AlphaVantageProvider",
    "av_symbol",
    "classify_payload",
    "outputsize_for",
    "parse_daily",
    "parse_fx_daily",
    "parse_quote",
]

_NEW_YORK = ZoneInfo("America/New_York")
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError)
_SUFFIXES = {"L": "LON", "TO": "TRT", "DE": "DEX"}
#: ``compact`` is 100 trading days; 130 calendar days stay inside it even with holidays.
COMPACT_DAYS = 130
_DATA_KEYS = ("Time Series (Daily)", "Time Series FX (Daily)")
_QUOTE_KEYS = ("Global Quote", "Global Quote - DATA DELAYED")
_SLOW_DOWN = ("frequency", "per minute", "per second", "sparingly", "burst")
_DAY_SPENT = ("per day", "daily", "rate limit", "requests per")


def av_symbol(symbol: str) -> str:
    """Alpha Vantage's symbol for a Yahoo-style ticker (``BRK-B`` → ``BRK.B``, ``.L`` → .LON)."""
    base, dot, suffix = symbol.rpartition(".")
    if dot and suffix.upper() in _SUFFIXES:
        return f"{base}.{_SUFFIXES[suffix.upper()]}"
    if not dot and symbol.count("-") == 1 and len(symbol.split("-")[1]) == 1:
        return symbol.replace("-", ".")
    return symbol


def outputsize_for(start: date, today: date) -> str:
    """``compact`` when it covers ``start`` (in New York's ``today``), else ``full`` (premium)."""
    return "compact" if start >= today - timedelta(days=COMPACT_DAYS) else "full"


def _message(text: str) -> Classified:
    """What an ``Information``/``Note`` message means."""
    lower = text.lower()
    short = text[:160]
    if "premium endpoint" in lower or "premium feature" in lower:
        return Classified(Verdict.PLAN_GATED, short)
    if any(word in lower for word in _SLOW_DOWN):
        retry_after = 1.0 if "per second" in lower else None
        return Classified(Verdict.RATE_LIMITED, short, retry_after)
    if any(word in lower for word in _DAY_SPENT):
        return Classified(Verdict.QUOTA_EXHAUSTED, short)
    if "apikey" in lower or "api key" in lower:
        return Classified(Verdict.AUTH, short)
    if "premium" in lower:
        return Classified(Verdict.PLAN_GATED, short)
    return Classified(Verdict.BAD, short)


def classify_payload(payload: object) -> Classified:
    """What a decoded Alpha Vantage body means (they all come with HTTP 200)."""
    if not isinstance(payload, dict):
        return Classified(Verdict.BAD, f"expected a JSON object, got {type(payload).__name__}")
    if not payload:
        return Classified(Verdict.NOT_FOUND, "empty object (unknown symbol or pair)")
    error = payload.get("Error Message")
    if isinstance(error, str):
        lower = error.lower()
        if "apikey" in lower:
            return Classified(Verdict.AUTH, error[:160])
        if "invalid api call" in lower:
            return Classified(Verdict.NOT_FOUND, error[:160])
        return Classified(Verdict.BAD, error[:160])
    for key in _QUOTE_KEYS:
        if key in payload:
            found = payload[key]
            return Classified(Verdict.OK if found else Verdict.NOT_FOUND, "" if found else key)
    for key in _DATA_KEYS:
        if key in payload:
            found = payload[key]
            return Classified(Verdict.OK if found else Verdict.EMPTY, "" if found else key)
    for key in ("Information", "Note"):
        if isinstance(payload.get(key), str):
            return _message(payload[key])
    if set(payload) == {"Meta Data"}:
        return Classified(Verdict.EMPTY, "only Meta Data (nothing in range)")
    return Classified(Verdict.BAD, f"unexpected keys {sorted(payload)[:4]}")


def _series(payload: Mapping[str, Any], key: str, start: date, end: date) -> list[tuple[date, Any]]:
    """``(date, values)`` of a date-keyed series within ``start..end``, ascending."""
    rows = []
    for text, values in payload[key].items():
        day = date.fromisoformat(text[:10])
        if start <= day <= end:
            rows.append((day, values))
    return sorted(rows, key=lambda row: row[0])


def parse_daily(payload: Mapping[str, Any], symbol: str, start: date, end: date) -> list[Bar]:
    """Bars of a TIME_SERIES_DAILY(_ADJUSTED) body dated in ``start..end``, ascending."""
    bars = []
    for day, values in _series(payload, "Time Series (Daily)", start, end):
        adjusted = "5. adjusted close" in values  # the adjusted variant renumbers volume to 6
        bars.append(
            Bar(
                symbol=symbol,
                ts=day,
                open=float(values["1. open"]),
                high=float(values["2. high"]),
                low=float(values["3. low"]),
                close=float(values["4. close"]),
                adj_close=float(values["5. adjusted close"]) if adjusted else None,
                volume=float(values["6. volume" if adjusted else "5. volume"]),
            )
        )
    return bars


def parse_quote(payload: Mapping[str, Any], symbol: str, now: datetime) -> Quote:
    """The Quote of a GLOBAL_QUOTE body, stamped at its trading day's close (or ``now``)."""
    fields = next(payload[key] for key in _QUOTE_KEYS if key in payload)
    day = date.fromisoformat(fields["07. latest trading day"])
    close = datetime.combine(day, time(16), _NEW_YORK).astimezone(UTC)
    previous = fields.get("08. previous close")
    return Quote(
        symbol=symbol,
        ts=min(close, now.astimezone(UTC)),
        price=float(fields["05. price"]),
        previous_close=float(previous) if previous else None,
    )


def parse_fx_daily(
    payload: Mapping[str, Any], base: str, quote: str, start: date, end: date
) -> list[FxRate]:
    """Daily closes of an FX_DAILY body dated in ``start..end``, ascending."""
    return [
        FxRate(base=base, quote=quote, day=day, rate=float(values["4. close"]))
        for day, values in _series(payload, "Time Series FX (Daily)", start, end)
    ]


class AlphaVantageProvider(BaseProvider):
    """Daily bars, quotes and FX from Alpha Vantage's ``/query``."""

    kind: ClassVar[str] = "alphavantage"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE, Capability.FX}
    )
    default_base_url: ClassVar[str] = "https://www.alphavantage.co"
    default_limits: ClassVar[Limits] = Limits(
        max_concurrency=1,
        rates=("1/second", "5/minute"),
        daily_quota=25,
        quota_tz="America/New_York",
    )
    requires_key: ClassVar[bool] = True
    # ``compact`` = the last 100 days; anything older is ``full``, which is premium.
    max_range_days: ClassVar[int | None] = 100

    def auth_params(self) -> Mapping[str, str]:
        """Alpha Vantage takes its key only in the URL (``apikey``)."""
        return {"apikey": self.api_key()}

    def map_symbol(self, symbol: str) -> str:
        """``BRK-B`` → ``BRK.B``, ``VOD.L`` → ``VOD.LON``, see the module docstring."""
        return av_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Alpha Vantage says everything with HTTP 200 JSON; other statuses go by status."""
        if response.status != 200:
            return super().classify(response)
        try:
            payload = response.json()
        except json.JSONDecodeError:
            head = response.text.lstrip()[:1]
            if not head or head == "<":
                return Classified(Verdict.TRANSIENT, "empty or HTML body instead of JSON")
            return Classified(Verdict.BAD, "body is not JSON")
        return classify_payload(payload)

    async def _query(
        self, params: Mapping[str, str], symbol: str
    ) -> tuple[Response, Mapping[str, Any] | None]:
        """The response of one ``/query`` call and its decoded body (None when EMPTY)."""
        response = await self.http.get(f"{self.base_url}/query", params=params, symbol=symbol)
        if response.verdict is Verdict.EMPTY:
            return response, None
        payload: Mapping[str, Any] = response.json()  # classify() saw it decode
        return response, payload

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for trading dates ``start..end`` inclusive (raw prices)."""
        if end < start:
            return []
        today = datetime.now(_NEW_YORK).date()
        params = {
            "function": "TIME_SERIES_DAILY",
            "symbol": self.api_symbol(symbol),
            "outputsize": outputsize_for(start, today),
        }
        response, payload = await self._query(params, symbol)
        if payload is None:
            return []
        try:
            return parse_daily(payload, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed TIME_SERIES_DAILY: {exc!r}") from exc

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol`` (GLOBAL_QUOTE)."""
        params = {"function": "GLOBAL_QUOTE", "symbol": self.api_symbol(symbol)}
        response, payload = await self._query(params, symbol)
        try:
            if payload is None:
                raise ValueError("no quote")
            return parse_quote(payload, symbol, datetime.now(UTC))
        except (*_MALFORMED, StopIteration) as exc:
            raise self._bad(response, symbol, f"malformed GLOBAL_QUOTE: {exc!r}") from exc

    async def fx_rates(
        self, base: str, quotes: Sequence[str], start: date, end: date
    ) -> list[FxRate]:
        """Daily closes of each ``base``/``quote`` pair for ``start..end`` (one call per pair)."""
        rates: list[FxRate] = []
        today = datetime.now(_NEW_YORK).date()
        for quote in quotes:
            pair = f"{base}{quote}"
            params = {
                "function": "FX_DAILY",
                "from_symbol": base,
                "to_symbol": quote,
                "outputsize": outputsize_for(start, today),
            }
            response, payload = await self._query(params, pair)
            if payload is None:
                continue
            try:
                rates.extend(parse_fx_daily(payload, base, quote, start, end))
            except _MALFORMED as exc:
                raise self._bad(response, pair, f"malformed FX_DAILY: {exc!r}") from exc
        return rates
