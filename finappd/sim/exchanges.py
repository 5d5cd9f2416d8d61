"""Which exchange a symbol trades on, read from its suffix: timezone, session open, listing.

The simulator's canonical symbols (every API maps its own spelling to them) carry
the exchange in a suffix. A chart API stamps a daily bar with the session open in
exchange-local time, so the simulator needs, per symbol, the exchange timezone, the
opening time and whether it trades at weekends (crypto). The suffix rules: ``.T``
Tokyo, ``.L`` London (quoted in pence, ``GBp``), ``.JO`` Johannesburg (in cents,
``ZAc``), ``.PA`` Paris, ``.DE`` Xetra, ``.SW`` SIX, ``.HK`` Hong Kong, ``.AX`` Sydney,
``.TO`` Toronto, ``-USD`` crypto (UTC days), ``=X`` FX, everything else New York.
Currencies and ``exchangeName`` codes are the ones Yahoo's chart ``meta`` sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["Listing", "exchange_of", "listing_of"]


@dataclass(frozen=True, slots=True)
class Listing:
    """Where and how a symbol trades, as the simulator reports it in a chart's ``meta``."""

    tz_name: str
    open_time: time
    trades_weekends: bool
    exchange_name: str
    currency: str
    instrument_type: str

    @property
    def tz(self) -> ZoneInfo:
        """The exchange timezone."""
        return _zone(self.tz_name)


# (suffix, tz, open, weekends, exchangeName, currency); checked in order.
_SUFFIXES: tuple[tuple[str, str, time, bool, str, str], ...] = (
    (".TO", "America/Toronto", time(9, 30), False, "TOR", "CAD"),
    (".AX", "Australia/Sydney", time(10, 0), False, "ASX", "AUD"),
    (".T", "Asia/Tokyo", time(9, 0), False, "JPX", "JPY"),
    (".L", "Europe/London", time(8, 0), False, "LSE", "GBp"),
    (".JO", "Africa/Johannesburg", time(9, 0), False, "JNB", "ZAc"),
    (".PA", "Europe/Paris", time(9, 0), False, "PAR", "EUR"),
    (".DE", "Europe/Berlin", time(9, 0), False, "GER", "EUR"),
    (".SW", "Europe/Zurich", time(9, 0), False, "EBS", "CHF"),
    (".HK", "Asia/Hong_Kong", time(9, 30), False, "HKG", "HKD"),
    ("-USD", "UTC", time(0, 0), True, "CCC", "USD"),
)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def listing_of(symbol: str) -> Listing:
    """The listing facts (timezone, open, currency, exchange) the simulator uses for ``symbol``."""
    upper = symbol.upper()
    for suffix, tz, opens, weekends, exchange, currency in _SUFFIXES:
        if upper.endswith(suffix):
            kind = "CRYPTOCURRENCY" if suffix == "-USD" else "EQUITY"
            return Listing(tz, opens, weekends, exchange, currency, kind)
    if upper.endswith("=X"):
        # EURUSD=X quotes USD per EUR; JPY=X is USD/JPY, so the currency is JPY.
        pair = upper[:-2]
        currency = pair[3:6] if len(pair) == 6 else pair[:3]
        return Listing("Europe/London", time(0, 0), False, "CCY", currency, "CURRENCY")
    kind = "INDEX" if upper.startswith("^") else "EQUITY"
    exchange = "SNP" if kind == "INDEX" else "NMS"
    return Listing("America/New_York", time(9, 30), False, exchange, "USD", kind)


def exchange_of(symbol: str) -> tuple[str, time, bool]:
    """``(tz_name, session open time, trades_weekends)`` for a canonical symbol."""
    listing = listing_of(symbol)
    return listing.tz_name, listing.open_time, listing.trades_weekends
