"""Currency units: the ISO 4217 major unit of what a provider quoted, and the conversion to it.

Every price finappd stores is in the **major unit** of an ISO 4217 currency. Providers
quote some markets in a minor unit under a code of their own, case mattering: Yahoo
sends ``GBp`` (pence) for London, ``ZAc`` (cents) for Johannesburg, ``ILA`` (agorot)
for Tel Aviv and ``KWF`` (fils) for Kuwait; others spell pence ``GBX``/``GBx`` and
cents ``ZAC``. ``GBP`` (pounds) and ``GBp`` (pence) differ only in case, so codes are
compared exactly, never case-folded.

Conversion divides (``pence / 100``), which gives the correctly rounded float of the
true quotient, where multiplying by 0.01 would round twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from finappd.records import Bar, Dividend, Quote, make_bar

__all__ = ["MINOR_UNITS", "Unit", "bar_in", "bars_in", "dividend_in", "quote_in", "unit_of"]

#: Provider codes of minor units: code -> (ISO 4217 major currency, minor units per major).
MINOR_UNITS: dict[str, tuple[str, float]] = {
    "GBp": ("GBP", 100),
    "GBX": ("GBP", 100),
    "GBx": ("GBP", 100),
    "ZAc": ("ZAR", 100),
    "ZAC": ("ZAR", 100),
    "ILA": ("ILS", 100),
    "ILa": ("ILS", 100),
    "KWF": ("KWD", 1000),
}

_ISO = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Unit:
    """A quoted unit: its provider code, the ISO 4217 currency and how many make one major unit."""

    code: str
    currency: str
    per_major: float = 1

    @property
    def is_minor(self) -> bool:
        """Whether prices in this unit must be divided to be in ``currency``."""
        return self.per_major != 1

    def to_major(self, value: float) -> float:
        """``value`` in this unit as an amount of ``currency``."""
        return value if self.per_major == 1 else value / self.per_major


def unit_of(code: str | None) -> Unit | None:
    """The unit a provider's currency code means, or None when unknown or not a currency."""
    if code is None:
        return None
    return _unit_of(code)


@lru_cache(maxsize=1024)
def _unit_of(code: str) -> Unit | None:
    # Cached (a Unit is frozen, so one object serves every bar and ticker quoted in it).
    code = code.strip()
    if code in MINOR_UNITS:
        currency, per_major = MINOR_UNITS[code]
        return Unit(code, currency, per_major)
    if _ISO.match(code):
        return Unit(code, code)
    return None


def _scaled(value: float | None, unit: Unit) -> float | None:
    return None if value is None else unit.to_major(value)


def bar_in(bar: Bar, unit: Unit | None) -> Bar:
    """``bar`` (quoted in ``unit``) with its prices in the major unit and ``unit.currency``.

    ``None`` (the unit is unknown) leaves the prices and stores no currency.
    """
    if unit is None:
        return bar if bar.currency is None else replace(bar, currency=None)
    if not unit.is_minor:
        return bar if bar.currency == unit.currency else replace(bar, currency=unit.currency)
    per = unit.per_major
    # Built field by field: dataclasses.replace costs ~10x more, per bar of every run.
    return make_bar(
        bar.symbol,
        bar.ts,
        None if bar.open is None else bar.open / per,
        None if bar.high is None else bar.high / per,
        None if bar.low is None else bar.low / per,
        bar.close / per,
        None if bar.adj_close is None else bar.adj_close / per,
        bar.volume,
        bar.interval,
        bar.provisional,
        unit.currency,
        bar.info,
    )


def bars_in(bars: Sequence[Bar], unit: Unit | None) -> list[Bar]:
    """:func:`bar_in` of each of ``bars``."""
    label = None if unit is None else unit.currency
    if unit is None or not unit.is_minor:
        for bar in bars:  # a loop, not all(genexpr): this runs per ticker
            if bar.currency != label:
                break
        else:
            return list(bars)  # the usual case (USD answered as USD): nothing to copy
    return [bar_in(bar, unit) for bar in bars]


def quote_in(quote: Quote) -> Quote:
    """``quote`` with its price and previous close in the major unit of its ``currency``."""
    unit = unit_of(quote.currency)
    if unit is None:
        return quote
    return replace(
        quote,
        price=unit.to_major(quote.price),
        previous_close=_scaled(quote.previous_close, unit),
        currency=unit.currency,
    )


def dividend_in(dividend: Dividend) -> Dividend:
    """``dividend`` with its amount in the major unit of its ``currency``."""
    unit = unit_of(dividend.currency)
    if unit is None:
        return dividend
    return replace(dividend, amount=unit.to_major(dividend.amount), currency=unit.currency)
