"""CoinGecko API v3: crypto latest prices and close-only daily bars, by coin id.

- **URL**: ``https://api.coingecko.com/api/v3`` (keyless or Demo key);
  ``https://pro-api.coingecko.com/api/v3`` for a Pro key. Latest price:
  ``GET /simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true`` →
  ``{"bitcoin": {"usd": 83749, "last_updated_at": <epoch s>}}``. History:
  ``GET /coins/{id}/market_chart/range?vs_currency=usd&from=<epoch s>&to=<epoch s>`` →
  ``{"prices": [[<epoch ms>, price], …], "market_caps": […], "total_volumes": […]}``.
- **Auth**: header ``x-cg-demo-api-key`` (Demo); when ``base_url`` is the ``pro-api.`` host,
  header ``x-cg-pro-api-key``. Never the ``x_cg_*`` query form. The key is optional
  (keyless public access has lower, variable limits).
- **Symbols**: CoinGecko wants coin *ids*, not tickers (``btc`` is ambiguous), so the mapping
  is declared: Yahoo-style ``BTC-USD`` → ``bitcoin/usd`` through :data:`COIN_IDS`, the quote
  currency lowercased as ``vs_currency``. A ticker already in id form (``bitcoin``,
  ``bitcoin/eur``) passes through; any other ticker needs a per-ticker override in config
  (``"PEPE-USD" = "pepe/usd"``), else it is "not found" without a request.
- **Timezone and bars**: there is no OHLC per day on the free tier, only price samples
  (epoch *milliseconds*, UTC). Granularity is automatic (5-minute ≤ 1 day, hourly 2-90 days,
  daily beyond 90 days), so the request window is widened to 91 days when the 365-day
  history cap allows, and the result trimmed. A daily sample at 00:00 UTC of day D+1 is the
  *close of UTC day D* (the convention of Yahoo's ``BTC-USD``); with hourly samples, the one
  nearest to midnight (within 30 minutes) stands in. Bars are close-only: open/high/low/
  adj_close are None, volume is the rolling 24 h volume at the close sample (the UTC day's
  volume in the quote currency). The **last sample is the live price at request time**,
  not a close, and is dropped unless it sits exactly on a midnight.
- **Limits**: Demo ≈ **30 calls/minute** and **10,000 calls/month**; history for Demo and
  keyless callers only reaches **365 days** back (older → 401 error 10012, plan-gated).
- **Errors**: 429 ``{"status": {"error_code": 429, …}}`` → rate limited; 401 with
  ``error_code`` 10012 (range beyond 365 days) or 10005 (Pro-only endpoint) → plan-gated,
  other 401 (10002 missing key, 10010/10011 wrong key for the host) → auth; unknown id →
  ``{}`` from simple/price (HTTP 200) or 404 ``{"error": "coin not found"}`` from
  ``/coins/{id}/…``; 5xx → transient.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import yarl

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
from finappd.records import Bar, Quote

__all__ = [
    "COIN_IDS",
    "CoinGeckoProvider",
    "classify_coingecko",
    "coin_of",
    "parse_market_chart",
    "parse_simple_price",
    "range_window",
]

#: Ticker (Yahoo's base currency code) → CoinGecko coin id; overrides in config add more.
COIN_IDS: Mapping[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "USDT": "tether",
    "USDC": "usd-coin",
    "BNB": "binancecoin",
    "SOL": "solana",
    "XRP": "ripple",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "TRX": "tron",
    "AVAX": "avalanche-2",
    "DOT": "polkadot",
    "LINK": "chainlink",
    "LTC": "litecoin",
    "BCH": "bitcoin-cash",
    "XLM": "stellar",
    "XMR": "monero",
    "ATOM": "cosmos",
}
_DAY_MS = 86_400_000
_NEAR_MIDNIGHT_MS = 30 * 60 * 1000
_DAILY_SPAN = timedelta(days=91)  # CoinGecko answers daily samples for ranges over 90 days
_HISTORY_CAP = timedelta(days=364)  # Demo/keyless: 365 days; a day of margin
_ID_FORM = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z]{3,5})?$")
_TICKER_FORM = re.compile(r"^([A-Z0-9]+)-([A-Z]{3,5})$")
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, OverflowError)


def coin_of(symbol: str) -> tuple[str, str] | None:
    """``(coin id, vs currency)`` of ``BTC-USD`` or of the id form ``bitcoin/usd``, or None."""
    text = symbol.strip()
    match = _TICKER_FORM.match(text.upper())
    if match and match[1] in COIN_IDS:
        return COIN_IDS[match[1]], match[2].lower()
    if _ID_FORM.match(text):
        coin, _, vs = text.partition("/")
        return coin, vs or "usd"
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def range_window(start: date, end: date, now: datetime) -> tuple[int, int]:
    """``from``/``to`` epoch seconds for closes of ``start..end``, widened to daily granularity.

    The close of day D is sampled at 00:00 UTC of D+1, so the window runs from the day after
    ``start`` to the day after ``end`` (an hour of margin each side). It is stretched back to
    91 days, but never past the 365-day history cap, which an unstretched window may cross
    (and then get its plan-gated answer).
    """
    first = _midnight(start + timedelta(days=1)) - timedelta(hours=1)
    last = _midnight(end + timedelta(days=1)) + timedelta(hours=1)
    widened = min(first, max(last - _DAILY_SPAN, now - _HISTORY_CAP))
    return int(widened.timestamp()), int(last.timestamp())


def _pairs(payload: Mapping[str, Any], key: str) -> list[tuple[int, float]]:
    series = payload.get(key, [])
    if not isinstance(series, list):
        raise TypeError(f"{key}: expected an array, got {series!r}")
    pairs: list[tuple[int, float]] = []
    for item in series:
        if not isinstance(item, list) or len(item) != 2 or item[1] is None:
            continue
        stamp, value = item
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise TypeError(f"{key}: expected [epoch ms, value], got {item!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{key}: expected [epoch ms, value], got {item!r}")
        pairs.append((int(stamp), float(value)))
    return pairs


def parse_market_chart(payload: object, symbol: str, start: date, end: date) -> list[Bar]:
    """Close-only daily bars in ``start..end`` from a ``market_chart`` body (see module doc)."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    prices = _pairs(payload, "prices")
    volumes = dict(_pairs(payload, "total_volumes"))
    if prices and prices[-1][0] % _DAY_MS:
        prices = prices[:-1]  # the live price at request time, not a close
    best: dict[date, tuple[int, int, float]] = {}  # day -> (distance, stamp, close)
    for stamp, price in prices:
        midnight = round(stamp / _DAY_MS) * _DAY_MS
        distance = abs(stamp - midnight)
        if distance > _NEAR_MIDNIGHT_MS:
            continue
        day = datetime.fromtimestamp(midnight / 1000, UTC).date() - timedelta(days=1)
        if start <= day <= end and (day not in best or distance < best[day][0]):
            best[day] = (distance, stamp, price)
    return [
        Bar(symbol, day, None, None, None, close, None, volumes.get(stamp))
        for day, (_, stamp, close) in sorted(best.items())
    ]


def parse_simple_price(payload: object, coin: str, vs: str, symbol: str) -> Quote | None:
    """The quote of ``coin`` in ``vs`` from a ``simple/price`` body; None when it is absent."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    entry = payload.get(coin)
    if not isinstance(entry, dict) or entry.get(vs) is None:
        return None
    price = entry[vs]
    stamp = entry["last_updated_at"]
    for value in (price, stamp):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected numbers, got {entry!r}")
    return Quote(symbol, datetime.fromtimestamp(stamp, UTC), float(price), vs.upper())


def _error_code(text: str) -> tuple[int | None, str]:
    """``(error_code, error_message)`` of CoinGecko's error bodies (nested or not)."""
    try:
        payload = decode_json(text)
    except json.JSONDecodeError:
        return None, text[:100]
    if not isinstance(payload, dict):
        return None, ""
    inner = payload.get("error")
    holder = inner if isinstance(inner, dict) else payload
    status = holder.get("status")
    if isinstance(status, dict):
        code = status.get("error_code")
        message = status.get("error_message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            message if isinstance(message, str) else "",
        )
    return None, inner if isinstance(inner, str) else ""


def classify_coingecko(response: Response, now: datetime) -> Classified:
    """CoinGecko's verdict: 429 status JSON, 401 codes (10012 → plan-gated), ``{}`` → not found."""
    status = response.status
    text = response.text.strip()
    # Only error-sized bodies are parsed here; data bodies are parsed once, by the caller.
    code, message = _error_code(text) if status != 200 or len(text) < 1024 else (None, "")
    reason = f"HTTP {status}" + (f" error {code}" if code else "") + f": {message[:160]}"
    if status == 429 or code == 429:
        return Classified(
            Verdict.RATE_LIMITED, reason, parse_retry_after(response.retry_after, now)
        )
    if status in (401, 403):
        if code in (10005, 10012):
            return Classified(Verdict.PLAN_GATED, reason)
        return Classified(Verdict.AUTH, reason)
    if status == 404:
        return Classified(Verdict.NOT_FOUND, reason)
    if status >= 500:
        return Classified(Verdict.TRANSIENT, f"HTTP {status}")
    if status >= 400:
        return Classified(Verdict.BAD, reason)
    if not text:
        return Classified(Verdict.TRANSIENT, "empty body")
    if not text.startswith("{"):
        return Classified(Verdict.TRANSIENT, "not a JSON object (outage page?)")
    if text.replace(" ", "") == "{}":
        return Classified(Verdict.NOT_FOUND, "unknown coin id (empty object)")
    if code is not None:
        return Classified(Verdict.BAD, reason)
    if _unknown_coin(message):  # recorded with no status shown: not found whatever it is
        return Classified(Verdict.NOT_FOUND, reason)
    return Classified(Verdict.OK)


def _unknown_coin(message: str) -> bool:
    """``{"error": "Could not find coin with the given id"}`` (or "coin not found")."""
    lower = message.lower()
    return "could not find" in lower or "not found" in lower


class CoinGeckoProvider(BaseProvider):
    """Close-only daily bars and latest prices of coins from CoinGecko, by coin id."""

    kind: ClassVar[str] = "coingecko"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CRYPTO, Capability.QUOTE, Capability.DAILY_BARS}
    )
    default_base_url: ClassVar[str] = "https://api.coingecko.com/api/v3"
    default_limits: ClassVar[Limits] = Limits(
        max_concurrency=2, rates=("30/minute",), monthly_quota=10_000
    )
    requires_key: ClassVar[bool] = False
    headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    max_range_days: ClassVar[int | None] = 365  # Demo/keyless history reaches 365 days back

    @property
    def pro(self) -> bool:
        """Whether ``base_url`` is the Pro host (``pro-api.coingecko.com``): Pro key header."""
        return (yarl.URL(self.base_url).host or "").startswith("pro-api.")

    def auth_headers(self) -> Mapping[str, str]:
        """The key, if any, in ``x-cg-demo-api-key`` (or ``x-cg-pro-api-key`` on the Pro host)."""
        if self.settings.api_key is None:
            return {}
        header = "x-cg-pro-api-key" if self.pro else "x-cg-demo-api-key"
        return {header: self.api_key()}

    def map_symbol(self, symbol: str) -> str:
        """``BTC-USD`` → ``bitcoin/usd`` (:data:`COIN_IDS`); unknown tickers are not found."""
        coin = coin_of(symbol)
        if coin is None:
            raise self._not_found(
                symbol,
                f"no CoinGecko coin id declared for {symbol!r}; add "
                f'providers.{self.name}.symbols."{symbol}" = "<coin id>/<vs currency>"',
            )
        return "/".join(coin)

    def classify(self, response: Response) -> Classified:
        """CoinGecko's verdicts (:func:`classify_coingecko`) at the ledger's clock."""
        return classify_coingecko(response, self.ledger.clock())

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Close-only bars of UTC days ``start..end`` (a day's close is its 00:00 UTC+1 sample)."""
        if end < start:
            return []
        coin, vs = self._coin(symbol)
        first, last = range_window(start, end, self.ledger.clock())
        response = await self.http.get(
            f"{self.base_url}/coins/{quote(coin, safe='')}/market_chart/range",
            params={"vs_currency": vs, "from": str(first), "to": str(last)},
            symbol=symbol,
        )
        try:
            return parse_market_chart(response.json(), symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed market_chart: {exc!r}") from exc

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol`` in its vs currency (``/simple/price``)."""
        coin, vs = self._coin(symbol)
        response = await self.http.get(
            f"{self.base_url}/simple/price",
            params={"ids": coin, "vs_currencies": vs, "include_last_updated_at": "true"},
            symbol=symbol,
        )
        try:
            found = parse_simple_price(response.json(), coin, vs, symbol)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed simple/price: {exc!r}") from exc
        if found is None:
            raise self._not_found(
                symbol, f"no {vs} price for coin {coin!r} (from {response.url})", response.status
            )
        return found

    def _coin(self, symbol: str) -> tuple[str, str]:
        """``(coin id, vs currency)`` to request for a flow ticker (override or declared map)."""
        coin = coin_of(self.api_symbol(symbol))
        if coin is None:
            raise self._not_found(symbol, f"symbol override for {symbol!r} is not '<coin id>/<vs>'")
        return coin
