"""Yahoo Finance chart API: daily bars.

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
- **Errors**: unknown symbol → 404 (sometimes 200) with ``chart.error.code == "Not Found"``;
  range before first trade → 400 ``"Data doesn't exist …"`` and too-old intraday → 422, both
  meaning "no bars"; an outage is an HTML "Will be right back" page (retried as transient).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

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
from finappd.records import Bar

__all__ = ["YahooProvider", "chart_window", "parse_chart", "trading_date"]

_CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
_MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)


def chart_window(start: date, end: date) -> tuple[int, int]:
    """``period1``/``period2`` epoch seconds covering ``start..end`` in any exchange timezone."""
    # A day of margin before start: far-east sessions open on the previous UTC day.
    period1 = datetime.combine(start - timedelta(days=1), time(), UTC)
    period2 = datetime.combine(end + timedelta(days=1), time(), UTC)
    return int(period1.timestamp()), int(period2.timestamp())


def trading_date(timestamp: float, tz: tzinfo) -> date:
    """The exchange-local trading date of a daily bar stamped ``timestamp`` (epoch seconds)."""
    local = datetime.fromtimestamp(timestamp, tz)
    if local.hour == 23:  # a midnight bar shifted back by Yahoo's DST bug
        local += timedelta(hours=1)
    return local.date()


def _range_params(start: date, end: date, *, events: str) -> dict[str, str]:
    """The chart query for local trading dates ``start..end``."""
    period1, period2 = chart_window(start, end)
    return {
        "period1": str(period1),
        "period2": str(period2),
        "interval": "1d",
        "events": events,
        "includePrePost": "false",
    }


@dataclass(frozen=True, slots=True)
class _Chart:
    """One chart result and the response it came in (for error messages)."""

    response: Response
    data: Mapping[str, Any]


def _exchange_tz(meta: Mapping[str, Any]) -> tzinfo:
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str) and name:
        return ZoneInfo(name)
    offset = meta.get("gmtoffset")
    if isinstance(offset, int):
        return timezone(timedelta(seconds=offset))
    raise ValueError("meta has neither exchangeTimezoneName nor gmtoffset")


def _series(container: object, key: str) -> list[Any]:
    """``container[0][key]`` of Yahoo's ``[{key: [...]}]`` wrapping, or ``[]`` when absent."""
    if not isinstance(container, list) or not container or not isinstance(container[0], dict):
        return []
    values = container[0].get(key)
    return values if isinstance(values, list) else []


def _at(values: list[Any], index: int) -> float | None:
    value = values[index] if index < len(values) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def parse_chart(result: Mapping[str, Any], symbol: str, start: date, end: date) -> list[Bar]:
    """Bars of one chart ``result`` whose local trading date is in ``start..end``, ascending."""
    timestamps = result.get("timestamp")
    if not timestamps:  # no bars in the range: meta only
        return []
    tz = _exchange_tz(result["meta"])
    indicators = result.get("indicators") or {}
    quotes = indicators.get("quote")
    opens, highs = _series(quotes, "open"), _series(quotes, "high")
    lows, closes = _series(quotes, "low"), _series(quotes, "close")
    volumes = _series(quotes, "volume")
    adjcloses = _series(indicators.get("adjclose"), "adjclose")
    bars: dict[date, Bar] = {}
    for i, stamp in enumerate(timestamps):
        close = _at(closes, i)
        if close is None or stamp is None:  # halted day, fund, or the in-progress bar
            continue
        day = trading_date(stamp, tz)
        if not start <= day <= end:
            continue
        # Yahoo sometimes repeats a day (yfinance#573); the later row is the fresher one.
        bars[day] = Bar(
            symbol=symbol,
            ts=day,
            open=_at(opens, i),
            high=_at(highs, i),
            low=_at(lows, i),
            close=close,
            adj_close=_at(adjcloses, i),
            volume=_at(volumes, i),
        )
    return [bars[day] for day in sorted(bars)]


class YahooProvider(BaseProvider):
    """Daily bars, the latest quote (chart ``meta``) and dividends/splits from Yahoo's chart API."""

    kind: ClassVar[str] = "yahoo"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE, Capability.ACTIONS}
    )
    default_base_url: ClassVar[str] = "https://query2.finance.yahoo.com"
    default_limits: ClassVar[Limits] = Limits(max_concurrency=2, rates=("1/second",))
    headers: ClassVar[Mapping[str, str]] = {
        "User-Agent": _CHROME_UA,
        "Accept": "application/json,text/plain,*/*",
        "Accept-Language": "en-US,en;q=0.9",
    }

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for local trading dates ``start..end`` inclusive."""
        if end < start:
            return []
        result = await self._chart(symbol, _range_params(start, end, events="div,splits"))
        if result is None:
            return []
        try:
            return parse_chart(result.data, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(result.response, symbol, f"malformed chart: {exc!r}") from exc

    def classify(self, response: Response) -> Classified:
        """Yahoo's answers: chart.error codes, 429 plain text, HTML outage pages."""
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
            payload = json.loads(response.text)
        except json.JSONDecodeError:
            # A 2xx non-JSON body is reported by the parser, chained to the decode error.
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
        verdict = classify_status(response)
        if verdict.verdict is Verdict.AUTH and isinstance(payload, dict):
            finance = payload.get("finance")
            if isinstance(finance, dict) and isinstance(finance.get("error"), dict):
                description = str(finance["error"].get("description") or "")
                return Classified(Verdict.AUTH, f"unauthorized: {description}")
        return verdict

    def _bad(self, response: Response, symbol: str, reason: str) -> BadResponseError:
        return self._fail(
            BadResponseError(
                f"{self.name}: {reason} (HTTP {response.status} from {response.url})",
                provider=self.name,
                symbol=symbol,
                status=response.status,
            )
        )

    async def _chart(self, symbol: str, params: Mapping[str, str]) -> _Chart | None:
        """GET the chart of ``symbol``: its first result, or None when the range is empty."""
        response = await self._get(
            f"{self.base_url}/v8/finance/chart/{quote(self.api_symbol(symbol), safe='')}",
            params=params,
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return None
        try:
            payload = json.loads(response.text)
        except json.JSONDecodeError as exc:
            raise self._bad(response, symbol, f"body is not JSON: {exc}") from exc
        chart = payload.get("chart") if isinstance(payload, dict) else None
        if not isinstance(chart, dict):
            raise self._bad(response, symbol, "JSON has no 'chart' object")
        result = chart.get("result")
        if not isinstance(result, list) or not result or not isinstance(result[0], dict):
            raise self._bad(response, symbol, "chart has neither a result nor an error")
        return _Chart(response, result[0])
