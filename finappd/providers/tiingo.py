"""Tiingo end-of-day API: daily bars (raw and adjusted) and the dividends/splits inline in them.

- **URL**: ``GET https://api.tiingo.com/tiingo/daily/{ticker}/prices?startDate=YYYY-MM-DD
  &endDate=YYYY-MM-DD&format=json&resampleFreq=daily`` → a JSON array, one object per
  trading day: ``date``, raw ``open/high/low/close/volume``, ``adjOpen…adjClose/adjVolume``,
  ``divCash`` (cash dividend going ex that day) and ``splitFactor`` (1.0 on most days).
- **Auth**: header ``Authorization: Token <key>`` (the key never goes in the URL; the
  ``token=`` query form exists but is not used). A key is required.
- **Symbols**: lowercase, share classes with a dash: ``BRK-B`` and ``BRK.B`` → ``brk-b``.
  US listings only here; anything else needs a per-ticker override in config.
- **Timezone**: ``date`` is the trading date rendered as midnight UTC
  (``2015-01-02T00:00:00.000Z``): the date part *is* the exchange-local trading date.
  Converting it to US/Eastern would shift every bar to the previous day, so it is never
  converted.
- **Limits** (free plan, sources disagree): ~50 requests/hour, ~1000/day, and 500 *unique
  symbols* per month. The unique-symbol limit is documented here, not enforced: Tiingo
  answers with its own "symbol look up" message when it is hit, classified as quota
  exhausted until the first of the next month.
- **Errors**: unknown ticker → 404 ``{"detail":"Error: Ticker 'X' not found"}`` (HTTP 200
  plain text with ``format=csv``); bad key → 401 ``{"detail":"Invalid token."}`` (some see
  403 with body ``None``); hourly limit → 429 JSON ``detail``; daily limit and the monthly
  symbol limit → often HTTP 200 *plain text* (hydrosquall/tiingo-python#45), newer reports
  429; maintenance → HTTP 200 HTML. A known ticker with no bars in range → ``[]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, ClassVar
from urllib.parse import quote

from finappd.providers._http import decode_json
from finappd.providers.base import (
    BaseProvider,
    Capability,
    Classified,
    Limits,
    Response,
    Verdict,
    parse_retry_after,
)
from finappd.records import Bar, Dividend, Split

__all__ = [
    "TiingoProvider",
    "classify_tiingo",
    "parse_actions",
    "parse_daily",
    "row_date",
    "split_ratio",
    "tiingo_symbol",
]

_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, OverflowError, ZeroDivisionError)


def tiingo_symbol(symbol: str) -> str:
    """Tiingo's spelling of a ticker: lowercase, share class after a dash (``brk-b``)."""
    return symbol.strip().lower().replace(".", "-")


def row_date(text: str) -> date:
    """The trading date of a row's ``date`` (midnight UTC ISO-8601): its date part, unconverted."""
    return date.fromisoformat(text[:10])


def split_ratio(factor: float) -> tuple[float, float]:
    """``(numerator, denominator)`` of a ``splitFactor``: 4.0 → (4, 1), 0.5 → (1, 2)."""
    if factor <= 0:
        raise ValueError(f"splitFactor must be positive, got {factor!r}")
    ratio = Fraction(factor).limit_denominator(10_000)
    return float(ratio.numerator), float(ratio.denominator)


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _rows(payload: object, start: date, end: date) -> list[tuple[date, Mapping[str, Any]]]:
    """``(trading date, row)`` in ``start..end``, ascending, one per date (the later row wins)."""
    if not isinstance(payload, list):
        raise TypeError(f"expected a JSON array of daily rows, got {type(payload).__name__}")
    by_day: dict[date, Mapping[str, Any]] = {}
    for row in payload:
        if not isinstance(row, dict):
            raise TypeError(f"expected a row object, got {row!r}")
        day = row_date(row["date"])
        if start <= day <= end:
            by_day[day] = row
    return sorted(by_day.items())


def parse_daily(payload: object, symbol: str, start: date, end: date) -> list[Bar]:
    """Bars of a daily-prices array: raw OHLCV with ``adjClose``; days without a close skipped."""
    bars: list[Bar] = []
    for day, row in _rows(payload, start, end):
        close = _number(row, "close")
        if close is None:
            continue
        bars.append(
            Bar(
                symbol=symbol,
                ts=day,
                open=_number(row, "open"),
                high=_number(row, "high"),
                low=_number(row, "low"),
                close=close,
                adj_close=_number(row, "adjClose"),
                volume=_number(row, "volume"),
            )
        )
    return bars


def parse_actions(
    payload: object, symbol: str, start: date, end: date
) -> tuple[list[Dividend], list[Split]]:
    """Dividends (``divCash`` ≠ 0) and splits (``splitFactor`` ≠ 1) of a daily-prices array."""
    dividends: list[Dividend] = []
    splits: list[Split] = []
    for day, row in _rows(payload, start, end):
        cash = _number(row, "divCash")
        if cash:
            dividends.append(Dividend(symbol=symbol, ex_date=day, amount=cash, currency="USD"))
        factor = _number(row, "splitFactor")
        if factor is not None and factor != 1.0:
            numerator, denominator = split_ratio(factor)
            splits.append(Split(symbol, day, numerator, denominator))
    return dividends, splits


def _seconds_to_next_hour(now: datetime) -> float:
    top = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return (top - now).total_seconds()


def _limit_message(text: str, header_wait: float | None, now: datetime) -> Classified | None:
    """The verdict of one of Tiingo's limit messages (hour / day / month symbols), else None."""
    lowered = text.lower()
    if "symbol look up" in lowered or "symbols for this month" in lowered:
        return Classified(Verdict.QUOTA_EXHAUSTED, "monthly unique-symbol limit")
    if "daily request allocation" in lowered:
        # No retry_after: Tiingo does not say when its day ends, so the quota ledger's
        # reset (quota_reset_tz, UTC by default) decides how long the provider is parked.
        return Classified(Verdict.QUOTA_EXHAUSTED, "daily request allocation")
    if "hourly request allocation" in lowered:
        # The hour is assumed to be a clock hour: retrying sooner only burns requests.
        wait = header_wait if header_wait is not None else _seconds_to_next_hour(now)
        return Classified(Verdict.RATE_LIMITED, "hourly request allocation", wait)
    return None


def _detail(text: str) -> str | None:
    """The ``detail`` string of a JSON error body, or None."""
    if not text.startswith("{"):
        return None  # not an error object (and data arrays are not parsed twice)
    try:
        payload = decode_json(text)
    except json.JSONDecodeError:
        return None
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return detail if isinstance(detail, str) else None


def classify_tiingo(response: Response, now: datetime) -> Classified:
    """Tiingo's verdict on one response: its limit texts arrive as 429 JSON *or* 200 plain text."""
    status = response.status
    text = response.text.strip()
    header_wait = parse_retry_after(response.retry_after, now)
    detail = _detail(text)
    message = detail if detail is not None else text[:300]
    if status in (401, 403):
        return Classified(Verdict.AUTH, f"HTTP {status}: {message[:100]}")
    if status >= 500:
        return Classified(Verdict.TRANSIENT, f"HTTP {status}")
    limit = _limit_message(message, header_wait, now)
    if limit is not None:
        return limit
    if status == 429:
        return Classified(Verdict.RATE_LIMITED, f"HTTP 429: {message[:100]}", header_wait)
    if status == 404:
        return Classified(Verdict.NOT_FOUND, message[:200])
    if status >= 400:
        return Classified(Verdict.BAD, f"HTTP {status}: {message[:100]}")
    if not text:
        return Classified(Verdict.TRANSIENT, "empty body")
    if text.startswith("<") or "html" in response.content_type:
        return Classified(Verdict.TRANSIENT, "HTML page instead of JSON (maintenance)")
    if not text.startswith("[") and "not found" in message.lower():
        return Classified(Verdict.NOT_FOUND, message[:200])  # the CSV-style plain-text answer
    if text == "[]":
        return Classified(Verdict.EMPTY)
    if text.startswith("["):
        return Classified(Verdict.OK)
    return Classified(Verdict.BAD, f"unexpected body: {message[:100]!r}")


class TiingoProvider(BaseProvider):
    """Daily bars (raw OHLCV plus ``adjClose``) and dividends/splits from Tiingo."""

    kind: ClassVar[str] = "tiingo"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.ACTIONS}
    )
    default_base_url: ClassVar[str] = "https://api.tiingo.com"
    default_limits: ClassVar[Limits] = Limits(max_concurrency=2, rates=("50/hour", "1000/day"))
    requires_key: ClassVar[bool] = True
    headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    max_range_days: ClassVar[int | None] = 3650  # no documented cap; keeps answers small

    def auth_headers(self) -> Mapping[str, str]:
        """The key travels in ``Authorization: Token <key>``, never in the URL."""
        return {"Authorization": f"Token {self.api_key()}"}

    def map_symbol(self, symbol: str) -> str:
        """``BRK-B``/``BRK.B`` → ``brk-b``: lowercase, share class after a dash."""
        return tiingo_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Tiingo's verdicts (:func:`classify_tiingo`) at the ledger's clock."""
        return classify_tiingo(response, self.ledger.clock())

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for trading dates ``start..end`` inclusive."""
        if end < start:
            return []
        response, payload = await self._prices(symbol, start, end)
        try:
            return parse_daily(payload, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed daily prices: {exc!r}") from exc

    async def bars_and_actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Bar], tuple[list[Dividend], list[Split]] | None]:
        """Bars and the ``divCash``/``splitFactor`` actions of ``start..end``, one request."""
        if end < start:
            return [], ([], [])
        response, payload = await self._prices(symbol, start, end)
        try:
            bars = parse_daily(payload, symbol, start, end)
            return bars, parse_actions(payload, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed daily prices: {exc!r}") from exc

    async def actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Dividend], list[Split]]:
        """Dividends and splits of ``symbol`` going ex in ``start..end`` (same request as bars)."""
        if end < start:
            return [], []
        response, payload = await self._prices(symbol, start, end)
        try:
            return parse_actions(payload, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed daily prices: {exc!r}") from exc

    async def _prices(self, symbol: str, start: date, end: date) -> tuple[Response, object]:
        """GET the daily prices of ``symbol``: the response and its JSON (``[]`` when empty)."""
        ticker = quote(self.api_symbol(symbol), safe="")
        response = await self.http.get(
            f"{self.base_url}/tiingo/daily/{ticker}/prices",
            params={
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "format": "json",
                "resampleFreq": "daily",
            },
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return response, []
        try:
            return response, response.json()
        except json.JSONDecodeError as exc:
            raise self._bad(response, symbol, f"body is not JSON: {exc}") from exc
