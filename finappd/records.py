"""Typed market-data records, decided once: floats for prices, dates for trading days.

Prices are ``float`` because SQLite stores REAL and every reader (pandas, the
app) works in floats; providers that send decimal strings are parsed once.
A daily bar's ``ts`` is the exchange-local trading ``date``; an intraday bar's
``ts`` is a tz-aware UTC ``datetime``. ``provisional`` marks a bar of a session that
was still open when it was fetched: its numbers will change until the close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

__all__ = ["Bar", "Dividend", "FxRate", "Quote", "Split"]


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

    def ts_text(self) -> str:
        """``YYYY-MM-DD`` for a daily bar, ISO-8601 UTC for an intraday one."""
        if isinstance(self.ts, datetime):
            return self.ts.astimezone(UTC).isoformat()
        return self.ts.isoformat()


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
