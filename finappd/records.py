"""Typed market-data records, decided once: floats for prices, dates for trading days.

Prices are ``float`` because SQLite stores REAL and every reader (pandas, the
app) works in floats; providers that send decimal strings are parsed once.
A daily bar's ``ts`` is the exchange-local trading ``date``; an intraday bar's
``ts`` is a tz-aware UTC ``datetime``. ``provisional`` marks a bar of a session that
was still open when it was fetched: its numbers will change until the close.

A bar's ``info`` is what the answer it came in said about the instrument (currency
or quoted unit, name, type, exchange, timezone, ISIN): one shared object per answer,
so it costs a pointer per bar and no request. Neither it nor ``currency`` takes part
in comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime

__all__ = ["Bar", "Dividend", "FxRate", "InstrumentInfo", "Quote", "Split", "make_bar"]


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """What one provider answer said about an instrument; None where it said nothing.

    ``currency`` is the provider's code exactly as sent (``GBp`` is pence, ``GBP``
    pounds); ``instrument_type`` and ``exchange`` are the provider's own words
    (Yahoo ``EQUITY``/``LSE``), mapped to finappd's vocabulary by ``finappd.instruments``;
    ``mic`` is an ISO 10383 code where the provider names one (Twelve Data ``mic_code``).
    """

    currency: str | None = None
    name: str | None = None
    instrument_type: str | None = None
    exchange: str | None = None
    mic: str | None = None
    timezone: str | None = None
    isin: str | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar of one symbol."""

    symbol: str
    ts: date | datetime
    open: float | None
    high: float | None
    low: float | None
    close: float
    adj_close: float | None
    volume: float | None
    interval: str = "1d"
    provisional: bool = False
    #: The currency of the prices: the provider's code as sent (``GBp``) until the write
    #: converts the bar to the major unit, an ISO 4217 code (``GBP``) once stored.
    # Outside ==: a bar is the same bar whatever its unit label says (tests written from
    # payloads compare prices); units are asserted where they are decided (test_units).
    currency: str | None = field(default=None, compare=False)
    info: InstrumentInfo | None = field(default=None, compare=False, repr=False)

    def ts_text(self) -> str:
        """``YYYY-MM-DD`` for a daily bar, ISO-8601 UTC for an intraday one."""
        if isinstance(self.ts, datetime):
            return self.ts.astimezone(UTC).isoformat()
        return self.ts.isoformat()


# Each field's slot setter. A frozen dataclass's __init__ sets every field through
# object.__setattr__, i.e. a type lookup per field; the slot's own setter skips it.
(
    _set_symbol, _set_ts, _set_open, _set_high, _set_low, _set_close, _set_adj_close,
    _set_volume, _set_interval, _set_provisional, _set_currency, _set_info,
) = (Bar.__dict__[f.name].__set__ for f in fields(Bar))  # fmt: skip
_new = object.__new__


def make_bar(
    symbol: str,
    ts: date | datetime,
    open: float | None,
    high: float | None,
    low: float | None,
    close: float,
    adj_close: float | None,
    volume: float | None,
    interval: str,
    provisional: bool,
    currency: str | None,
    info: InstrumentInfo | None,
) -> Bar:
    """``Bar(...)`` with every field given, in order: the same frozen object, built in
    half the time (parsers make one per row of every answer; Bar has no __post_init__)."""
    bar: Bar = _new(Bar)
    _set_symbol(bar, symbol)
    _set_ts(bar, ts)
    _set_open(bar, open)
    _set_high(bar, high)
    _set_low(bar, low)
    _set_close(bar, close)
    _set_adj_close(bar, adj_close)
    _set_volume(bar, volume)
    _set_interval(bar, interval)
    _set_provisional(bar, provisional)
    _set_currency(bar, currency)
    _set_info(bar, info)
    return bar


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest price of one symbol at ``ts`` (tz-aware UTC)."""

    symbol: str
    ts: datetime
    price: float
    currency: str | None = None
    previous_close: float | None = None


@dataclass(frozen=True, slots=True)
class Dividend:
    """A cash dividend of ``amount`` per share, going ex on ``ex_date``."""

    symbol: str
    ex_date: date
    amount: float
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Split:
    """A split of ``numerator``:``denominator`` (4:1 means one share became four)."""

    symbol: str
    ex_date: date
    numerator: float
    denominator: float


@dataclass(frozen=True, slots=True)
class FxRate:
    """``rate`` units of ``quote`` per one ``base`` on ``day`` (the publisher's date)."""

    base: str
    quote: str
    day: date
    rate: float
