"""Frankfurter: the ECB's daily euro foreign-exchange reference rates, no key.

- **URL**: ``https://api.frankfurter.dev/v1`` (the frozen, ECB-only API; v2 blends 50+
  central banks and differs from the ECB in the 4th-5th decimal, so v1 is used). Rates of a
  date range: ``GET /v1/{start}..{end}?base=EUR&symbols=USD,GBP`` →
  ``{"amount": 1.0, "base": "EUR", "start_date", "end_date",
  "rates": {"2024-01-02": {"USD": 1.0956, …}, …}}``. The old hosts (``api.frankfurter.app``,
  ``frankfurter.app``) answer 301 to this one; redirects are followed.
- **Auth**: none; nothing secret in any URL.
- **Symbols**: ISO 4217 codes (~30 in the ECB set). A pair is written ``EUR/USD`` (base/quote,
  i.e. USD per one EUR); :meth:`FrankfurterProvider.map_symbol` also accepts Yahoo's
  ``EURUSD=X`` (and ``JPY=X``, which Yahoo means as USD/JPY) and bare ``EURUSD``.
- **Timezone**: dates are ECB publication dates (``YYYY-MM-DD``, TARGET working days,
  published ~16:00 CET): no weekends or holidays in a series. A range's ``start_date`` may
  snap *earlier* than asked (to the last publication on or before it), and a single-date
  request answers with the publication date on or before the asked one, so rows outside
  the asked range are dropped: an :class:`~finappd.records.FxRate` always carries the date
  the ECB published it, never a date that was asked for. Rates are per ``amount`` of the
  answer's ``base`` (recorded: ``amount=1000000`` multiplies every rate), so they are
  divided by it, and an answer in another base than the one asked for is refused.
- **Limits**: none documented; the answers are CDN-cached. Politeness default: 5 requests
  per second, 2 in flight.
- **Errors**: unknown currency or no data → 404 ``{"message": "not found"}``; same base and
  quote, bad amount or bad date → 422 ``{"message": "bad currency pair"}`` etc. (bad
  request); v2's "range too heavy" → 503 (transient).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import ClassVar

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
from finappd.records import FxRate

__all__ = ["FrankfurterProvider", "classify_frankfurter", "fx_pair", "parse_rates"]

_CODE = re.compile(r"^[A-Z]{3}$")
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError)


def fx_pair(symbol: str) -> tuple[str, str]:
    """``(base, quote)`` of ``EUR/USD``, ``EURUSD=X``, ``JPY=X`` (USD/JPY) or ``EURUSD``."""
    text = symbol.strip().upper()
    if "/" in text:
        base, _, quote = text.partition("/")
    else:
        pair = text.removesuffix("=X")
        if len(pair) == 3 and text.endswith("=X"):
            base, quote = "USD", pair
        else:
            base, quote = pair[:3], pair[3:]
    if not (_CODE.match(base) and _CODE.match(quote)):
        raise ValueError(f"not a currency pair: {symbol!r} (expected e.g. EUR/USD or EURUSD=X)")
    return base, quote


def parse_rates(
    payload: object, base: str, quotes: Sequence[str], start: date, end: date
) -> list[FxRate]:
    """Rates of ``quotes`` per one ``base`` published in ``start..end`` (range or one-date
    body). A body's rates are per ``amount`` of its own ``base`` (recorded: ``amount=1000000``
    multiplies every rate), so they are divided by it, and rates of another base are refused."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    answered = payload.get("base", base)
    if answered != base:
        raise ValueError(f"rates are per {answered!r}, {base!r} was asked for")
    amount = payload.get("amount", 1.0)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        raise TypeError(f"amount: expected a positive number, got {amount!r}")
    rates = payload["rates"]
    if not isinstance(rates, dict):
        raise TypeError(f"rates: expected an object, got {rates!r}")
    if "date" in payload:  # one-date body: {"date": ..., "rates": {"USD": ...}}
        rates = {payload["date"]: rates}
    wanted = set(quotes)
    out: list[FxRate] = []
    for day_text, by_quote in sorted(rates.items()):
        day = date.fromisoformat(day_text)
        if not start <= day <= end:
            continue  # the range's start snapped back to an earlier publication
        if not isinstance(by_quote, dict):
            raise TypeError(f"rates[{day_text}]: expected an object, got {by_quote!r}")
        for quote, rate in sorted(by_quote.items()):
            if quote not in wanted:
                continue
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise TypeError(f"rates[{day_text}][{quote}]: expected a number, got {rate!r}")
            out.append(FxRate(base, quote, day, float(rate) / amount))
    return out


def _message(text: str) -> str:
    try:
        payload = decode_json(text)
    except json.JSONDecodeError:
        return text[:100]
    message = payload.get("message") if isinstance(payload, dict) else None
    return message if isinstance(message, str) else text[:100]


def classify_frankfurter(response: Response, now: datetime) -> Classified:
    """Frankfurter's verdict: plain HTTP statuses with a ``message``; HTML or empty is transient."""
    status = response.status
    text = response.text.strip()
    reason = f"HTTP {status}: {_message(text)}" if status != 200 else "HTTP 200"
    if status == 404:
        return Classified(Verdict.NOT_FOUND, reason)
    if status == 429:
        return Classified(
            Verdict.RATE_LIMITED, reason, parse_retry_after(response.retry_after, now)
        )
    if status in (401, 403):
        # No key is ever sent, so a refusal is the CDN's (a block), not a credential problem.
        return Classified(Verdict.TRANSIENT, reason)
    if status >= 500:
        return Classified(Verdict.TRANSIENT, reason)
    if status >= 400:
        return Classified(Verdict.BAD, reason)
    if not text or not text.startswith("{"):
        return Classified(Verdict.TRANSIENT, "not a JSON object (outage page?)")
    return Classified(Verdict.OK)


class FrankfurterProvider(BaseProvider):
    """ECB reference rates per publication date from Frankfurter's v1 API (no key)."""

    kind: ClassVar[str] = "frankfurter"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.FX})
    default_base_url: ClassVar[str] = "https://api.frankfurter.dev/v1"
    # No documented limit: a polite default well under what a CDN-cached API shrugs off.
    default_limits: ClassVar[Limits] = Limits(max_concurrency=2, rates=("5/second",))
    requires_key: ClassVar[bool] = False
    headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}

    def map_symbol(self, symbol: str) -> str:
        """A pair ticker (``EURUSD=X``, ``JPY=X``, ``EURUSD``, ``eur/usd``) as ``EUR/USD``."""
        try:
            return "/".join(fx_pair(symbol))
        except ValueError as exc:
            raise self._not_found(symbol, str(exc)) from exc

    def classify(self, response: Response) -> Classified:
        """Frankfurter's verdicts (:func:`classify_frankfurter`) at the ledger's clock."""
        return classify_frankfurter(response, self.ledger.clock())

    async def fx_rates(
        self, base: str, quotes: Sequence[str], start: date, end: date
    ) -> list[FxRate]:
        """Rates of ``quotes`` per one ``base`` on each ECB publication date in ``start..end``."""
        base = base.upper()
        wanted = [q for q in dict.fromkeys(q.upper() for q in quotes) if q != base]
        if not wanted or end < start:
            return []  # base == quote is Frankfurter's 422; its rate is 1 by definition
        label = f"{base}/{','.join(wanted)}"
        response = await self.http.get(
            f"{self.base_url}/{start.isoformat()}..{end.isoformat()}",
            params={"base": base, "symbols": ",".join(wanted)},
            symbol=label,
        )
        try:
            return parse_rates(response.json(), base, wanted, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, label, f"malformed rates: {exc!r}") from exc
