"""Twelve Data REST API: daily bars, latest quote and daily FX rates, one credit per call.

- **URL**: ``GET https://api.twelvedata.com/time_series?symbol=AAPL&interval=1day
  &start_date=YYYY-MM-DD&end_date=YYYY-MM-DD&order=asc&outputsize=5000&timezone=Exchange``
  → ``{"meta": {...}, "values": [{"datetime", "open", …, "volume"}], "status": "ok"}`` with
  **every number a string**; ``GET /quote?symbol=AAPL`` → one flat object (``close`` is the
  latest price, ``previous_close``, ``currency``, ``timestamp``/``last_quote_at`` epoch s).
  FX is the same ``time_series`` with ``symbol=EUR/USD`` (no ``volume``).
- **Auth**: header ``Authorization: apikey <key>``, so the key stays out of URLs (the usual
  ``apikey=`` query form works too and is redacted from every logged URL; the header form
  is documented by Twelve Data but marked unverified in PROVIDERS.md §7 — if it were ever
  refused, the 401 disables the provider with one clear error). A key is required.
- **Symbols**: ``AAPL``; share classes with a dot (``BRK-B`` → ``BRK.B``); pairs with a slash:
  Yahoo's ``EURUSD=X`` → ``EUR/USD``, ``BTC-USD`` → ``BTC/USD`` (a dash followed by three or
  more letters is a pair, by one or two a share class). Other exchanges need an override.
- **Timezone**: ``datetime`` is a local string in the exchange's timezone (only
  ``meta.exchange_timezone`` names it): for daily bars its date part is the trading date.
  ``end_date`` is sent one day late and the result filtered, because whether the API treats
  it as inclusive is not pinned down. Rows come newest-first by default (``order=asc`` is
  asked anyway) and duplicate datetimes have been seen: sorted and de-duplicated here.
- **Adjustment**: daily bars are split-adjusted, not dividend-adjusted; ``adj_close`` is None.
- **Limits** (Basic, free): **8 credits/minute and 800 credits/day**, the day resetting at
  00:00 UTC. Each symbol costs a credit even inside a batch call, so nothing is batched.
- **Errors**: ``{"code": <int>, "message": "...", "status": "error"}`` with HTTP 200 *or*
  the code as HTTP status: 429 "…for the current minute…" → rate limited until the next
  minute; 429 about the day → quota exhausted until 00:00 UTC; 401 → auth; 400/404
  "**symbol** not found" or "**symbol** or **figi** parameter is missing or invalid"
  (recorded for a fund no longer served) → not found; "not available with your plan"
  (403/404) → plan-gated; 400 "No data is available on the specified dates" → no bars;
  ≥500 → transient.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

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
from finappd.providers.spec import ProviderSpec
from finappd.records import Bar, FxRate, InstrumentInfo, Quote

__all__ = [
    "TwelveDataProvider",
    "classify_twelvedata",
    "parse_quote",
    "parse_time_series",
    "rates_of",
    "series_info",
    "twelvedata_symbol",
]

_PAIR = re.compile(r"^([A-Z0-9]+)-([A-Z]{3,5})$")
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, OverflowError)


def twelvedata_symbol(symbol: str) -> str:
    """Twelve Data's spelling of a Yahoo-style ticker (``BRK-B`` → ``BRK.B``, FX/crypto ``A/B``)."""
    text = symbol.strip().upper()
    if "/" in text:
        return text
    if text.endswith("=X"):
        pair = text[:-2]
        # Yahoo's ``JPY=X`` is USD/JPY; ``EURUSD=X`` is EUR/USD.
        return f"USD/{pair}" if len(pair) == 3 else f"{pair[:3]}/{pair[3:]}"
    if match := _PAIR.match(text):
        return f"{match[1]}/{match[2]}"
    return text.replace("-", ".")


def _number(row: Mapping[str, Any], key: str) -> float | None:
    """A numeric field sent as a string (or a number); missing or empty is None."""
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{key}: expected a numeric string, got {value!r}")
    return float(value)


def _meta_text(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def series_info(payload: Mapping[str, Any]) -> InstrumentInfo | None:
    """What a ``time_series`` ``meta`` says of the instrument (currency, venue, MIC, type).

    A pair's ``meta`` names its currencies in words (``currency_quote: "US Dollar"``)
    instead of a ``currency``: its prices are in the quote currency, the code after the
    slash of its ``symbol`` (``EUR/USD``).
    """
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        return None
    symbol = _meta_text(meta, "symbol") or ""
    quote = symbol.partition("/")[2] if "currency_quote" in meta else ""
    return InstrumentInfo(
        currency=_meta_text(meta, "currency") or (quote if len(quote) == 3 else None),
        instrument_type=_meta_text(meta, "type"),
        exchange=_meta_text(meta, "exchange"),
        mic=_meta_text(meta, "mic_code"),
        timezone=_meta_text(meta, "exchange_timezone"),
    )


def parse_time_series(payload: object, symbol: str, start: date, end: date) -> list[Bar]:
    """Daily bars of a ``time_series`` body in ``start..end``, ascending, one per date."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    values = payload.get("values", [])
    if not isinstance(values, list):
        raise TypeError(f"values: expected an array, got {values!r}")
    by_day: dict[date, Bar] = {}
    info = series_info(payload)
    for row in values:
        if not isinstance(row, dict):
            raise TypeError(f"expected a row object, got {row!r}")
        day = date.fromisoformat(str(row["datetime"])[:10])
        close = _number(row, "close")
        if close is None or not start <= day <= end:
            continue
        by_day[day] = Bar(
            symbol=symbol,
            ts=day,
            open=_number(row, "open"),
            high=_number(row, "high"),
            low=_number(row, "low"),
            close=close,
            adj_close=None,
            volume=_number(row, "volume"),
            currency=None if info is None else info.currency,
            info=info,
        )
    return [by_day[day] for day in sorted(by_day)]


def rates_of(bars: list[Bar], base: str, quote: str) -> list[FxRate]:
    """FX rates (``quote`` per one ``base``) from the daily bars of the pair ``base/quote``."""
    return [FxRate(base, quote, bar.ts, bar.close) for bar in bars if isinstance(bar.ts, date)]


def parse_quote(payload: object, symbol: str) -> Quote:
    """The latest price of a ``/quote`` body: ``close`` at ``last_quote_at``, else ``timestamp``."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    price = _number(payload, "close")
    if price is None:
        raise ValueError("quote has no close")
    stamp = payload.get("last_quote_at") or payload["timestamp"]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise TypeError(f"timestamp: expected epoch seconds, got {stamp!r}")
    currency = payload.get("currency")
    return Quote(
        symbol=symbol,
        ts=datetime.fromtimestamp(stamp, UTC),
        price=price,
        currency=currency if isinstance(currency, str) and currency else None,
        previous_close=_number(payload, "previous_close"),
    )


def _seconds_to_next_minute(now: datetime) -> float:
    top = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return max(1.0, (top - now).total_seconds())


def _seconds_to_midnight_utc(now: datetime) -> float:
    utc = now.astimezone(UTC)
    midnight = datetime.combine(utc.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (midnight - utc).total_seconds()


def _error_of(text: str) -> tuple[int | None, str] | None:
    """``(code, message)`` of a ``{"status": "error", ...}`` body, else None."""
    if '"error"' not in text:
        return None  # a data body: not parsed twice
    try:
        payload = decode_json(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or payload.get("status") != "error":
        return None
    code = payload.get("code")
    message = payload.get("message")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else "",
    )


def _bad_symbol(message: str) -> bool:
    """``**symbol** or **figi** parameter is missing or invalid`` (recorded for a fund no
    longer served): the symbol is unknown, as with "symbol not found"."""
    return "symbol" in message and "missing or invalid" in message


def classify_twelvedata(response: Response, now: datetime) -> Classified:
    """Twelve Data's verdict: the body's ``code`` decides, whatever the HTTP status says."""
    text = response.text.strip()
    header_wait = parse_retry_after(response.retry_after, now)
    error = _error_of(text)
    if error is None:
        status = response.status
        if status == 429:
            return Classified(Verdict.RATE_LIMITED, "HTTP 429", header_wait)
        if status in (401, 403):
            return Classified(Verdict.AUTH, f"HTTP {status}")
        if status >= 500:
            return Classified(Verdict.TRANSIENT, f"HTTP {status}")
        if status >= 400:
            return Classified(Verdict.NOT_FOUND if status == 404 else Verdict.BAD, f"HTTP {status}")
        if not text:
            return Classified(Verdict.TRANSIENT, "empty body")
        if not text.startswith("{"):
            return Classified(Verdict.TRANSIENT, "not a JSON object (outage page?)")
        return Classified(Verdict.OK)
    code, message = error
    code = code if code is not None else response.status
    lowered = message.lower()
    reason = f"code {code}: {message[:160]}"
    if code == 429:
        if "minute" not in lowered and ("day" in lowered or "daily" in lowered):
            return Classified(Verdict.QUOTA_EXHAUSTED, reason, _seconds_to_midnight_utc(now))
        wait = header_wait if header_wait is not None else _seconds_to_next_minute(now)
        return Classified(Verdict.RATE_LIMITED, reason, wait)
    if code == 401:
        return Classified(Verdict.AUTH, reason)
    if "plan" in lowered and ("not available" in lowered or "upgrade" in lowered):
        return Classified(Verdict.PLAN_GATED, reason)
    if "no data is available" in lowered:
        return Classified(Verdict.EMPTY, reason)
    if code in (400, 404) and ("not found" in lowered or _bad_symbol(lowered)):
        return Classified(Verdict.NOT_FOUND, reason)
    if code == 403:
        return Classified(Verdict.PLAN_GATED, reason)
    if code >= 500:
        return Classified(Verdict.TRANSIENT, reason)
    return Classified(Verdict.BAD, reason)


SPEC = ProviderSpec(
    kind="twelvedata",
    capabilities=frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE, Capability.FX, Capability.CRYPTO}
    ),
    base_url="https://api.twelvedata.com",
    limits=Limits(max_concurrency=2, rates=("8/minute", "800/day"), quota_tz="UTC"),
    requires_key=True,
    max_range_days=5000,  # outputsize caps at 5000 rows per call
    adjustment="split",
    secret_params=frozenset({"apikey"}),  # the query form works too; redacted if seen
    headers={"Accept": "application/json"},
)


class TwelveDataProvider(BaseProvider):
    """Daily bars (stocks, FX and crypto pairs), latest quotes and FX rates from Twelve Data."""

    spec = SPEC

    def auth_headers(self) -> Mapping[str, str]:
        """The key travels in ``Authorization: apikey <key>``, not in the URL."""
        return {"Authorization": f"apikey {self.api_key()}"}

    def map_symbol(self, symbol: str) -> str:
        """``BRK-B`` → ``BRK.B``, ``EURUSD=X`` → ``EUR/USD``, ``BTC-USD`` → ``BTC/USD``."""
        return twelvedata_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Twelve Data's verdicts (:func:`classify_twelvedata`) at the ledger's clock."""
        return classify_twelvedata(response, self.ledger.clock())

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for exchange-local dates ``start..end`` inclusive."""
        if end < start:
            return []
        return await self._series(self.api_symbol(symbol), symbol, start, end)

    async def fx_rates(
        self, base: str, quotes: Sequence[str], start: date, end: date
    ) -> list[FxRate]:
        """Daily closes of each ``base/quote`` pair, one credit (request) per pair, in order."""
        rates: list[FxRate] = []
        for quote in dict.fromkeys(q.upper() for q in quotes):
            if quote == base.upper() or end < start:
                continue
            pair = f"{base.upper()}/{quote}"
            rates.extend(rates_of(await self._series(pair, pair, start, end), base.upper(), quote))
        return rates

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol`` from ``/quote``."""
        response = await self.http.get(
            f"{self.base_url}/quote", params={"symbol": self.api_symbol(symbol)}, symbol=symbol
        )
        try:
            return parse_quote(response.json(), symbol)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed quote: {exc!r}") from exc

    async def _series(self, api_symbol: str, symbol: str, start: date, end: date) -> list[Bar]:
        """One ``time_series`` request for ``start..end``: its bars, named ``symbol``."""
        response = await self.http.get(
            f"{self.base_url}/time_series",
            params={
                "symbol": api_symbol,
                "interval": "1day",
                "start_date": start.isoformat(),
                # A day late, then filtered: whether end_date is inclusive is not pinned down.
                "end_date": (end + timedelta(days=1)).isoformat(),
                "order": "asc",
                "outputsize": "5000",
                "timezone": "Exchange",
            },
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return []
        try:
            return parse_time_series(response.json(), symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed time_series: {exc!r}") from exc
