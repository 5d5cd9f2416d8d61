"""Stooq CSV download: daily bars and the latest quote (best effort: Stooq blocks many daemons).

- **URL**: ``GET https://stooq.com/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD&apikey=<key>``
  → CSV ``Date,Open,High,Low,Close,Volume`` ascending (recorded: indices such as ``^spx``
  have a ``Volume``, FX pairs have none; volumes may be fractional, adjusted); Stooq's Polish
  site names the columns ``Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen`` (recorded),
  read the same;
  latest bar: ``GET https://stooq.com/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv&apikey=<key>`` →
  ``Symbol,Date,Time,Open,High,Low,Close,Volume`` with ``N/D`` for an unknown symbol (the
  ``e=json`` variant emits invalid JSON when volume is missing, so CSV it is).
- **Auth**: since ~March 2026 an ``apikey`` query parameter (issued behind a CAPTCHA); it
  is in the URL, so only redacted URLs reach messages and logs. No dividends/splits.
- **Symbols**: lowercase with a market suffix: ``AAPL`` → ``aapl.us``, ``BRK-B`` →
  ``brk-b.us``, ``VOD.L`` → ``vod.uk``, ``7203.T`` → ``7203.jp``, ``SAP.DE`` → ``sap.de``,
  ``0700.HK`` → ``700.hk``; indices ``^GSPC`` → ``^spx`` (``^DJI`` → ``^dji``, ``^GDAXI``
  → ``^dax``, other ``^X`` lowercased); FX ``EURUSD=X`` → ``eurusd``; crypto ``BTC-USD`` →
  ``btc.v``. A ticker already in Stooq's form (lowercase with its suffix) is kept.
- **Timezone**: ``Date`` is the exchange-local trading date (no time, no zone): used as is.
  The quote's ``Date``/``Time`` are Warsaw time (Stooq is Polish) **[unverified]**.
- **Limits**: an undisclosed, "low" daily cap per key/IP; pandas-datareader paused 0.1 s
  between calls. Defaults: 1 in flight, 1/second, no local daily quota (the cap is
  unknown); "Exceeded the daily hits limit" parks the provider until midnight Warsaw.
- **Errors** are all HTTP 200 bodies: ``No data`` (unknown symbol *or* a range without
  trading days: NOT_FOUND when the range spans a full week of weekdays, else EMPTY);
  ``Exceeded the daily hits limit`` (QUOTA_EXHAUSTED); an HTML page asking for an API key
  (AUTH); an HTML proof-of-work bot wall (AUTH too: retrying cannot pass it and only adds
  to the abuse count, so the provider is disabled for the run with one clear error); any
  other HTML page or an empty body (TRANSIENT: an outage).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

import yarl

from finappd.providers.base import BaseProvider, Capability, Classified, Limits, Response, Verdict
from finappd.records import Bar, Quote

__all__ = [
    "StooqProvider",
    "classify_body",
    "parse_daily_csv",
    "parse_quote_csv",
    "stooq_symbol",
]

_WARSAW = ZoneInfo("Europe/Warsaw")
_MALFORMED = (TypeError, ValueError, KeyError, IndexError)
#: Yahoo-style suffix → Stooq market suffix.
_SUFFIXES = {".L": ".uk", ".T": ".jp", ".DE": ".de", ".HK": ".hk", ".BD": ".hu", ".US": ".us"}
_NATIVE_SUFFIXES = frozenset({"us", "uk", "jp", "de", "hk", "hu", "f", "b", "v", "pl"})
_INDICES = {"^GSPC": "^spx", "^SPX": "^spx", "^DJI": "^dji", "^GDAXI": "^dax", "^IXIC": "^ndq"}
_DAILY_LIMIT = "exceeded the daily hits limit"
#: The daily CSV's Polish column names (stooq.pl, recorded) → the English ones.
_POLISH_COLUMNS = {
    "Data": "Date",
    "Otwarcie": "Open",
    "Najwyzszy": "High",
    "Najnizszy": "Low",
    "Zamkniecie": "Close",
    "Wolumen": "Volume",
}
#: A range with this many weekdays always has trading days, so "No data" means "no symbol".
_FULL_WEEK = 5


def stooq_symbol(symbol: str) -> str:
    """Stooq's symbol for a Yahoo-style ticker (``BRK-B`` → ``brk-b.us``, ``^GSPC`` → ``^spx``)."""
    upper = symbol.upper()
    if upper in _INDICES:
        return _INDICES[upper]
    if upper.startswith("^"):
        return symbol.lower()
    if upper.endswith("=X"):
        return upper[:-2].lower()
    if upper.endswith("-USD") and upper.count("-") == 1:
        return f"{upper[:-4].lower()}.v"
    base, dot, suffix = symbol.rpartition(".")
    if dot and symbol == symbol.lower() and suffix in _NATIVE_SUFFIXES:
        return symbol  # already Stooq's form
    if dot and f".{suffix.upper()}" in _SUFFIXES:
        if suffix.upper() == "HK":
            base = base.lstrip("0") or "0"  # Stooq drops Hong Kong's leading zeros
        return f"{base.lower()}{_SUFFIXES['.' + suffix.upper()]}"
    if dot:
        return symbol.lower()  # an exchange Stooq may not carry: a per-ticker override fixes it
    return f"{symbol.lower()}.us"


def _weekdays(start: date, end: date) -> int:
    days = (end - start).days + 1
    if days <= 0:
        return 0
    full, extra = divmod(days, 7)
    return full * 5 + sum(1 for i in range(extra) if (start.weekday() + i) % 7 < 5)


def _no_data(url: str) -> Classified:
    """``No data`` is "unknown symbol" over a full week of weekdays, else an empty range."""
    query = yarl.URL(url).query
    try:
        first = datetime.strptime(query["d1"], "%Y%m%d").replace(tzinfo=UTC).date()
        last = datetime.strptime(query["d2"], "%Y%m%d").replace(tzinfo=UTC).date()
    except (KeyError, ValueError):
        return Classified(Verdict.NOT_FOUND, "No data (unknown symbol)")
    if _weekdays(first, last) >= _FULL_WEEK:
        return Classified(Verdict.NOT_FOUND, "No data over a full week (unknown symbol)")
    return Classified(Verdict.EMPTY, "No data in a range without a full week")


def classify_body(text: str, url: str) -> Classified:
    """What a Stooq HTTP 200 body means (``url`` is the redacted request URL)."""
    head = text.lstrip("\ufeff").strip()
    lower = head[:4096].lower()
    if not head:
        return Classified(Verdict.TRANSIENT, "empty body")
    if head.startswith(("Date,", "Data,")):
        if len(head.splitlines()) < 2:
            return Classified(Verdict.EMPTY, "CSV header without rows")
        return Classified(Verdict.OK)
    if head.startswith("Symbol,"):
        rows = head.splitlines()[1:]
        if not rows or rows[0].split(",")[1:2] == ["N/D"]:
            return Classified(Verdict.NOT_FOUND, "quote is N/D (unknown symbol)")
        return Classified(Verdict.OK)
    if lower.startswith("no data"):
        return _no_data(url)
    if _DAILY_LIMIT in lower:
        return Classified(Verdict.QUOTA_EXHAUSTED, "Exceeded the daily hits limit")
    if lower.startswith("<") or "<html" in lower:
        if "__verify" in lower or "proof-of-work" in lower or "proof of work" in lower:
            return Classified(Verdict.AUTH, "bot wall (proof-of-work page): Stooq refuses us")
        if "apikey" in lower or "api key" in lower:
            return Classified(Verdict.AUTH, "HTML API-key page: apikey missing or refused")
        return Classified(Verdict.TRANSIENT, "HTML page instead of CSV (outage?)")
    return Classified(Verdict.BAD, f"unexpected body {head[:60]!r}")


def _float(text: str) -> float | None:
    return None if text in ("", "N/D", "null") else float(text)


def parse_daily_csv(text: str, symbol: str, start: date, end: date) -> list[Bar]:
    """Bars of a ``/q/d/l/`` CSV (English or Polish column names) whose date is in
    ``start..end``, ascending, one per date."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    columns = [_POLISH_COLUMNS.get(name, name) for name in next(reader, [])]
    bars: dict[date, Bar] = {}
    for values in reader:
        if not values:
            continue  # a blank line
        row = dict(zip(columns, values, strict=False))
        day = date.fromisoformat(row["Date"])
        close = _float(row["Close"])
        if close is None or not start <= day <= end:
            continue
        bars[day] = Bar(
            symbol=symbol,
            ts=day,
            open=_float(row["Open"]),
            high=_float(row["High"]),
            low=_float(row["Low"]),
            close=close,
            adj_close=None,  # Stooq's series are already adjusted; there is no raw close
            volume=_float(row.get("Volume") or ""),
        )
    return [bars[day] for day in sorted(bars)]


def parse_quote_csv(text: str, symbol: str) -> Quote:
    """The quote of the first row of a ``/q/l/`` CSV; ``Date``/``Time`` read as Warsaw time."""
    row = next(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    stamp = f"{row['Date']} {row['Time']}"
    local = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_WARSAW)
    price = _float(row["Close"])
    if price is None:
        raise ValueError("quote has no Close")
    return Quote(symbol=symbol, ts=local.astimezone(UTC), price=price)


class StooqProvider(BaseProvider):
    """Daily bars and quotes from Stooq's CSV download."""

    kind: ClassVar[str] = "stooq"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DAILY_BARS, Capability.QUOTE}
    )
    default_base_url: ClassVar[str] = "https://stooq.com"
    default_limits: ClassVar[Limits] = Limits(
        max_concurrency=1, rates=("1/second",), quota_tz="Europe/Warsaw"
    )
    requires_key: ClassVar[bool] = True

    def auth_params(self) -> Mapping[str, str]:
        """Stooq takes its key only in the URL (``apikey``)."""
        return {"apikey": self.api_key()}

    def map_symbol(self, symbol: str) -> str:
        """Lowercase with a market suffix (``aapl.us``), see the module docstring."""
        return stooq_symbol(symbol)

    def classify(self, response: Response) -> Classified:
        """Stooq says everything with HTTP 200 bodies; other statuses go by status."""
        if response.status != 200:
            return super().classify(response)
        return classify_body(response.text, response.url)

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars of ``symbol`` for trading dates ``start..end`` inclusive."""
        if end < start:
            return []
        response = await self.http.get(
            f"{self.base_url}/q/d/l/",
            params={
                "s": self.api_symbol(symbol),
                "i": "d",
                "d1": start.strftime("%Y%m%d"),
                "d2": end.strftime("%Y%m%d"),
            },
            symbol=symbol,
        )
        if response.verdict is Verdict.EMPTY:
            return []
        try:
            return parse_daily_csv(response.text, symbol, start, end)
        except _MALFORMED as exc:
            raise self._bad(response, symbol, f"malformed CSV: {exc!r}") from exc

    async def quote(self, symbol: str) -> Quote:
        """The latest bar's close of ``symbol`` (delayed; Stooq has no real-time feed)."""
        response = await self.http.get(
            f"{self.base_url}/q/l/",
            params={"s": self.api_symbol(symbol), "f": "sd2t2ohlcv", "h": "", "e": "csv"},
            symbol=symbol,
        )
        try:
            return parse_quote_csv(response.text, symbol)
        except (*_MALFORMED, StopIteration) as exc:
            raise self._bad(response, symbol, f"malformed quote CSV: {exc!r}") from exc
