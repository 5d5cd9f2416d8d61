"""Finnhub: the latest quote (free) and daily candles (premium).

- **URL**: ``https://finnhub.io/api/v1`` (the Python client uses ``api.finnhub.io``):
  ``GET /quote?symbol=AAPL`` → ``{"c","d","dp","h","l","o","pc","t"}``;
  ``GET /stock/candle?symbol=AAPL&resolution=D&from=<epoch s>&to=<epoch s>`` → parallel
  arrays ``t,o,h,l,c,v`` with ``"s":"ok"``. Candles are premium since 2023/2024: a free key
  gets HTTP 403, classified PLAN_GATED so a flow's fallback serves the bars instead.
- **Auth**: header ``X-Finnhub-Token`` (the ``token`` query form is not used, so the key
  is never in a URL).
- **Symbols**: US ``AAPL``, share classes with a dot (``BRK-B`` → ``BRK.B``), foreign
  listings with Yahoo-like suffixes (``VOD.L``, licence-gated) kept as they are.
- **Timezone**: quote ``t`` is epoch seconds UTC of the last update. Daily candle ``t`` is
  00:00 **UTC** of the trading date since mid-2021 (Finnhub-API#449: "changed from new york
  to GMT"), 00:00 or the open in exchange time before (1569297600 = 2019-09-24 04:00 UTC
  = 00:00 New York, as recorded): a stamp on a UTC midnight is dated by UTC, any other by
  its date in the exchange timezone, from the suffix (New York without one).
- **Limits**: 60 calls/minute on the free plan plus a 30/second cap on every plan; no daily
  cap. Defaults: 4 in flight, 30/second, 60/minute.
- **Errors**: ``API limit reached…`` is RATE_LIMITED, with HTTP 429 or HTTP 200 (both are
  recorded), except "API limit reached. Please sign up…" that a missing key gets: AUTH;
  403/401 ``{"error":"You don't have access to this resource."}`` is PLAN_GATED (premium
  endpoint or market), other 401/403 AUTH. An
  unknown symbol's quote is HTTP 200 with ``c``, ``pc`` and ``t`` all 0: NOT_FOUND (else
  it would be stored as a price of 0). ``{"s":"no_data"}`` (HTTP 200, some see 404) means
  an unknown symbol *or* a range without trading days: NOT_FOUND when the range spans a
  full week of weekdays, else EMPTY.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import yarl

from finappd.providers._http import decode_json
from finappd.providers.base import BaseProvider, Capability, Classified, Limits, Response, Verdict
from finappd.records import Bar, Quote

__all__ = [
    "FinnhubProvider",
    "candle_window",
    "classify_finnhub",
    "exchange_tz",
    "finnhub_symbol",
    "parse_candles",
    "parse_quote",
]

_MALFORMED = (TypeError, ValueError, KeyError, IndexError, OverflowError)
_ZONES = {
    "L": "Europe/London",
    "T": "Asia/Tokyo",
    "TO": "America/Toronto",
    "AX": "Australia/Sydney",
    "DE": "Europe/Berlin",
    "PA": "Europe/Paris",
    "HK": "Asia/Hong_Kong",
}
_NEW_YORK = "America/New_York"
_FULL_WEEK = 5
_DAY_SECONDS = 86_400


def finnhub_symbol(symbol: str) -> str:
    """Finnhub's symbol for a Yahoo-style ticker (``BRK-B`` → ``BRK.B``; suffixes kept)."""
    head, dash, share_class = symbol.partition("-")
    if dash and "." not in symbol and len(share_class) == 1:
        return f"{head}.{share_class}"
    return symbol


def exchange_tz(api_symbol: str) -> ZoneInfo:
    """The exchange timezone of a Finnhub symbol, from its suffix (New York without one)."""
    _, dot, suffix = api_symbol.rpartition(".")
    return ZoneInfo(_ZONES.get(suffix.upper(), _NEW_YORK) if dot else _NEW_YORK)


def candle_window(start: date, end: date) -> tuple[int, int]:
    """``from``/``to`` epoch seconds covering ``start..end`` in any exchange timezone."""
    first = datetime.combine(start - timedelta(days=1), time(), UTC)
    last = datetime.combine(end + timedelta(days=1), time(), UTC)
    return int(first.timestamp()), int(last.timestamp())


def _weekdays(start: date, end: date) -> int:
    return sum(1 for i in range((end - start).days + 1) if (start + timedelta(i)).weekday() < 5)


def _no_data(url: str) -> Classified:
    """``no_data`` is "unknown symbol" over a full week of weekdays, else an empty range."""
    query = yarl.URL(url).query
    try:
        first = datetime.fromtimestamp(int(query["from"]), UTC).date() + timedelta(days=1)
        last = datetime.fromtimestamp(int(query["to"]), UTC).date() - timedelta(days=1)
    except (KeyError, ValueError):
        return Classified(Verdict.NOT_FOUND, "no_data (unknown symbol)")
    if _weekdays(first, last) >= _FULL_WEEK:
        return Classified(Verdict.NOT_FOUND, "no_data over a full week (unknown symbol)")
    return Classified(Verdict.EMPTY, "no_data in a range without a full week")


def classify_finnhub(status: int, text: str, url: str) -> Classified | None:
    """Finnhub's verdict for a response, or None where the status alone decides."""
    lower = text[:2048].lower()
    try:
        payload: Any = decode_json(text)
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and payload.get("s") == "no_data":
        return _no_data(url)
    if "api limit reached" in lower and "sign up" in lower:
        return Classified(Verdict.AUTH, "API limit reached: please sign up (no API key sent)")
    if status in (401, 403) and "access" in lower:
        return Classified(Verdict.PLAN_GATED, "You don't have access to this resource")
    if status != 200:
        return None
    if "api limit reached" in lower:  # the rate limit, sent with HTTP 200 too
        return Classified(Verdict.RATE_LIMITED, "API limit reached (HTTP 200)")
    if not isinstance(payload, dict):
        head = text.lstrip()[:1]
        if not head or head == "<":
            return Classified(Verdict.TRANSIENT, "empty or HTML body instead of JSON")
        return Classified(Verdict.BAD, "body is not a JSON object")
    if "error" in payload:
        return Classified(Verdict.BAD, str(payload["error"])[:160])
    if payload.get("s") == "ok":
        return Classified(Verdict.OK)
    if "c" in payload and "t" in payload:  # a quote
        if _all_zero(payload):
            return Classified(Verdict.NOT_FOUND, "quote is all zeros (unknown symbol)")
        return Classified(Verdict.OK)
    return Classified(Verdict.BAD, f"unexpected keys {sorted(payload)[:4]}")


def _all_zero(payload: Mapping[str, Any]) -> bool:
    return all(payload.get(key) in (0, 0.0, None) for key in ("c", "pc", "t"))


def parse_quote(payload: Mapping[str, Any], symbol: str) -> Quote:
    """The Quote of a ``/quote`` body (``t`` epoch seconds UTC of the last update)."""
    price = payload["c"]
    previous = payload.get("pc")
    return Quote(
        symbol=symbol,
        ts=datetime.fromtimestamp(int(payload["t"]), UTC),
        price=float(price),
        previous_close=float(previous) if previous else None,
    )


def _candle_day(stamp: int, tz: ZoneInfo) -> date:
    if stamp % _DAY_SECONDS == 0:
        return datetime.fromtimestamp(stamp, UTC).date()
    return datetime.fromtimestamp(stamp, tz).date()


def parse_candles(
    payload: Mapping[str, Any], symbol: str, start: date, end: date, tz: ZoneInfo
) -> list[Bar]:
    """Bars of a ``/stock/candle`` body whose trading date is in ``start..end``.

    A stamp on a UTC midnight (Finnhub's convention since 2021) is dated by UTC; any other
    (00:00 or the open in exchange time, the older convention) by its date in ``tz``.
    """
    stamps = payload["t"]
    columns = {key: payload.get(key) or [] for key in ("o", "h", "l", "c", "v")}
    for key, values in columns.items():
        if len(values) not in (0, len(stamps)):
            raise ValueError(f"column {key!r} has {len(values)} values for {len(stamps)} stamps")
    bars: dict[date, Bar] = {}
    for i, stamp in enumerate(stamps):
        day = _candle_day(int(stamp), tz)
        if not start <= day <= end:
            continue
        value = {key: float(v[i]) if v else None for key, v in columns.items()}
        close = value["c"]
        if close is None:
            continue
        bars[day] = Bar(symbol, day, value["o"], value["h"], value["l"], close, None, value["v"])
    return [bars[day] for day in sorted(bars)]


class FinnhubProvider(BaseProvider):
    """Quotes (and, on paid plans, daily candles) from Finnhub."""

    kind: ClassVar[str] = "finnhub"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.QUOTE, Capability.DAILY_BARS}
    )
    default_base_url: ClassVar[str] = "https://finnhub.io/api/v1"
    default_limits: ClassVar[Limits] = Limits(max_concurrency=4, rates=("30/second", "60/minute"))
    requires_key: ClassVar[bool] = True

    def auth_headers(self) -> Mapping[str, str]:
        """The key travels in ``X-Finnhub-Token``, never in the URL."""
        return {"X-Finnhub-Token": self.api_key()}

    def map_symbol(self, symbol: str) -> str:
        """``BRK-B`` → ``BRK.B``; everything else as is."""
        return finnhub_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Finnhub's body rules first (all-zero quote, no_data, no access), then the status."""
        found = classify_finnhub(response.status, response.text, response.url)
        return found if found is not None else super().classify(response)

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol`` (``/quote``)."""
        response = await self.http.get(
            f"{self.base_url}/quote", params={"symbol": self.api_symbol(symbol)}, symbol=symbol
        )
        try:
            return parse_quote(response.json(), symbol)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed quote: {exc!r}") from exc

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily candles of ``symbol`` for ``start..end`` (premium: free keys get PLAN_GATED)."""
        if end < start:
            return []
        api_symbol = self.api_symbol(symbol)
        first, last = candle_window(start, end)
        response = await self.http.get(
            f"{self.base_url}/stock/candle",
            params={"symbol": api_symbol, "resolution": "D", "from": str(first), "to": str(last)},
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return []
        try:
            payload = response.json()
            return parse_candles(payload, symbol, start, end, exchange_tz(api_symbol))
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed candles: {exc!r}") from exc
