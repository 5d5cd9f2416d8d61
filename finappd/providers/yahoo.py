"""Yahoo Finance chart API: daily bars, the latest quote, dividends and splits.

- **URL**: ``GET https://query2.finance.yahoo.com/v8/finance/chart/{SYMBOL}?period1=<epoch s>
  &period2=<epoch s>&interval=1d&events=div,splits&includePrePost=false`` (``query1`` is
  interchangeable). Undocumented and unsupported by Yahoo; shape known from yfinance/beanprice.
- **Auth**: none for the chart endpoint (no key, no crumb). Yahoo blocks non-browser
  clients with 429s, so browser-like headers (Chrome User-Agent, ``Accept``) are sent.
- **Symbols**: Yahoo's own — ``AAPL``, ``BRK-B``, ``^GSPC``, ``EURUSD=X``, ``BTC-USD``,
  ``GC=F``, exchange suffixes ``.TO``, ``.L``, ``.T``, ``.DE``…; percent-encoded in the path.
- **Timezone**: ``timestamp`` is epoch seconds UTC of the *session open*; the trading date is
  the local date in ``meta.exchangeTimezoneName`` (never the UTC date). Crypto days are UTC.
  A "midnight" bar stamped 23:00 the previous day (Yahoo DST bug, yfinance PR #1048) is
  moved forward to its day.
- **Limits**: undocumented, per IP; treat as ~1 request/s with 1-2 in flight. A 429 has a
  plain-text body (``Too Many Requests``), no ``Retry-After``, and blocks can last hours.
- **Errors**: unknown symbol → 404 (sometimes 200) with ``chart.error.code == "Not Found"``,
  or HTTP 200 with a meta-only result whose ``firstTradeDate`` is null (recorded: ``^VXAPL``)
  — both not found, so a fallback is tried;
  range before first trade → 400 ``"Data doesn't exist …"`` and too-old intraday → 422, both
  meaning "no bars"; an outage is an HTML "Will be right back" page, an empty body, or JSON
  that is cut off or not a chart (all retried as transient, PROVIDERS.md §10.3).
- **Quote**: the chart call with ``range=1d`` (crumb-free, unlike ``/v7/finance/quote``):
  ``meta.regularMarketPrice`` at ``meta.regularMarketTime``, ``meta.currency``.
- **Actions**: the chart call's ``events=div,splits``: ``events.dividends``/``events.splits``
  keyed by epoch strings, dated like bars (exchange-local date of the event stamp).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar
from urllib.parse import quote

from finappd.errors import BadResponseError
from finappd.providers.base import (
    BaseProvider,
    Capability,
    Classified,
    Limits,
    Response,
    Verdict,
    classify_status,
)
from finappd.providers.yahoo_chart import (
    MALFORMED,
    chart_window,
    exchange_tz,
    parse_chart,
    parse_events,
    parse_quote,
    range_params,
    trading_date,
)
from finappd.records import Bar, Dividend, Quote, Split

__all__ = ["YahooProvider", "chart_window", "parse_chart", "trading_date"]

_CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


@dataclass(frozen=True, slots=True)
class _Chart:
    """One chart result and the response it came in (for error messages)."""

    response: Response
    data: Mapping[str, Any]


def _chart_shape(payload: object) -> str | None:
    """What is wrong with a chart payload that has no error, or None when it looks right."""
    chart = payload.get("chart") if isinstance(payload, dict) else None
    if not isinstance(chart, dict):
        return "JSON has no 'chart' object"
    result = chart.get("result")
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        return "chart has neither a result nor an error"
    try:
        exchange_tz(result[0]["meta"])
        if not isinstance(result[0].get("timestamp", []), list):
            raise TypeError(f"timestamp is {type(result[0]['timestamp']).__name__}, not a list")
    except MALFORMED as exc:
        return f"malformed chart: {exc!r}"
    return None


def _no_series(result: Mapping[str, Any]) -> bool:
    """A meta-only result (no timestamps) whose ``firstTradeDate`` is null: Yahoo's HTTP 200
    answer for a symbol it has no series for, i.e. not found (a known symbol's range without
    trading days also comes meta-only, but with its first trade date)."""
    meta = result["meta"]
    return (
        not result.get("timestamp") and "firstTradeDate" in meta and meta["firstTradeDate"] is None
    )


class YahooProvider(BaseProvider):
    """Daily bars, the latest quote (chart ``meta``) and dividends/splits from Yahoo's chart API."""

    kind: ClassVar[str] = "yahoo"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE, Capability.ACTIONS, Capability.CRYPTO}
    )
    default_base_url: ClassVar[str] = "https://query2.finance.yahoo.com"
    default_limits: ClassVar[Limits] = Limits(max_concurrency=2, rates=("1/second",))
    max_range_days: ClassVar[int | None] = 3650  # ~10 years of daily bars per chart call
    headers: ClassVar[Mapping[str, str]] = {
        "User-Agent": _CHROME_UA,
        "Accept": "application/json,text/plain,*/*",
        "Accept-Language": "en-US,en;q=0.9",
    }

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for local trading dates ``start..end`` inclusive."""
        if end < start:
            return []
        result = await self._chart(symbol, range_params(start, end, events="div,splits"))
        if result is None:
            return []
        try:
            return parse_chart(result.data, symbol, start, end)
        except MALFORMED as exc:
            raise self._bad(result.response, symbol, f"malformed chart: {exc!r}") from exc

    async def bars_and_actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Bar], tuple[list[Dividend], list[Split]] | None]:
        """Bars and ``events`` (dividends, splits) of ``start..end`` from one chart call."""
        if end < start:
            return [], ([], [])
        result = await self._chart(symbol, range_params(start, end, events="div,splits"))
        if result is None:
            return [], ([], [])
        try:
            bars = parse_chart(result.data, symbol, start, end)
            return bars, parse_events(result.data, symbol, start, end)
        except MALFORMED as exc:
            raise self._bad(result.response, symbol, f"malformed chart: {exc!r}") from exc

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol`` from the chart's ``meta`` (one crumb-free call)."""
        result = await self._chart(symbol, {"range": "1d", "interval": "1d"})
        if result is None:
            raise self._bad_response(symbol, "no quote: the chart is empty")
        try:
            return parse_quote(result.data, symbol)
        except MALFORMED as exc:
            raise self._bad(result.response, symbol, f"no quote in meta: {exc!r}") from exc

    async def actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Dividend], list[Split]]:
        """Dividends and splits of ``symbol`` going ex in ``start..end`` (chart ``events``)."""
        if end < start:
            return [], []
        result = await self._chart(symbol, range_params(start, end, events="div,splits"))
        if result is None:
            return [], []
        try:
            return parse_events(result.data, symbol, start, end)
        except MALFORMED as exc:
            raise self._bad(result.response, symbol, f"malformed events: {exc!r}") from exc

    def classify(self, response: Response) -> Classified:
        """Yahoo's answers: chart.error codes, 429 plain text, HTML, empty or garbled bodies."""
        status = response.status
        if status == 429 or status >= 500:
            return classify_status(response)
        head = response.text[:4096].lstrip()
        if status < 400:
            if not head:
                return Classified(Verdict.TRANSIENT, "empty body")
            if "html" in response.content_type or head.startswith("<") or "right back" in head:
                return Classified(Verdict.TRANSIENT, "HTML page instead of JSON (outage or block)")
        try:
            payload = response.json()
        except json.JSONDecodeError as exc:
            if status < 400:  # usually a cut-off answer or an error page in disguise
                return Classified(Verdict.TRANSIENT, f"body is not JSON: {exc}")
            return classify_status(response)
        chart = payload.get("chart") if isinstance(payload, dict) else None
        error = chart.get("error") if isinstance(chart, dict) else None
        if error:
            fields = error if isinstance(error, dict) else {"description": error}
            code = str(fields.get("code") or "")
            description = str(fields.get("description") or "")
            if code == "Not Found":
                return Classified(Verdict.NOT_FOUND, f"symbol not found: {description}")
            if description.startswith("Data doesn't exist") or status == 422:
                return Classified(Verdict.EMPTY, description)  # before the first trade
            if status in (401, 403):
                return Classified(Verdict.AUTH, f"{code}: {description}")
            return Classified(Verdict.BAD, f"chart error {code}: {description}")
        if status >= 400:
            verdict = classify_status(response)
            finance = payload.get("finance") if isinstance(payload, dict) else None
            if verdict.verdict is Verdict.AUTH and isinstance(finance, dict):
                description = str((finance.get("error") or {}).get("description") or "")
                return Classified(Verdict.AUTH, f"unauthorized: {description}")
            return verdict
        if (problem := _chart_shape(payload)) is not None:
            return Classified(Verdict.TRANSIENT, problem)
        if _no_series(payload["chart"]["result"][0]):
            return Classified(Verdict.NOT_FOUND, "no series: meta only, firstTradeDate null")
        return Classified(Verdict.OK)

    def _bad_response(
        self, symbol: str, reason: str, status: int | None = None
    ) -> BadResponseError:
        return self.http.fail(
            BadResponseError(
                f"{self.name}: {reason}", provider=self.name, symbol=symbol, status=status
            )
        )

    async def _chart(self, symbol: str, params: Mapping[str, str]) -> _Chart | None:
        """GET the chart of ``symbol``: its first result, or None when the range is empty."""
        response = await self.http.get(
            f"{self.base_url}/v8/finance/chart/{quote(self.api_symbol(symbol), safe='')}",
            params=params,
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return None
        # classify() has checked that this is JSON with a chart result.
        return _Chart(response, response.json()["chart"]["result"][0])
