"""Simulated ECB euro reference rates: which days are published, and each currency's rate.

Published on TARGET working days (no weekends, New Year, Good Friday, Easter Monday,
1 May, 25/26 December) at 16:00 Frankfurt time, from 1999-01-04; each currency's euro
rate is a reference level (about its 2024 value; the lev is pegged) moved by a damped
synthetic series of :mod:`finappd.sim.prices`. Every API serving FX fixes uses these,
so the same pair closes at the same rate whichever route serves it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from zoneinfo import ZoneInfo

from finappd.sim.prices import bar_on, symbol_key

__all__ = ["ECB_REFERENCE", "FIRST_PUBLICATION", "ecb_rate", "is_publication_day", "published"]

FIRST_PUBLICATION = date(1999, 1, 4)
_FRANKFURT = ZoneInfo("Europe/Berlin")
_PUBLISHED_AT = clock_time(16, 0)
_ANCHOR = date(2024, 1, 2)
#: Euro reference rates the synthetic series move around (about their 2024 levels).
ECB_REFERENCE: Mapping[str, float] = {
    "AUD": 1.65, "BGN": 1.9558, "BRL": 5.37, "CAD": 1.47, "CHF": 0.95, "CNY": 7.8,
    "CZK": 25.0, "DKK": 7.4575, "GBP": 0.86, "HKD": 8.5, "HUF": 390.0, "IDR": 17000.0,
    "ILS": 4.0, "INR": 90.0, "ISK": 150.0, "JPY": 160.0, "KRW": 1450.0, "MXN": 18.5,
    "MYR": 5.1, "NOK": 11.6, "NZD": 1.78, "PHP": 61.0, "PLN": 4.32, "RON": 4.97,
    "SEK": 11.4, "SGD": 1.45, "THB": 38.5, "TRY": 34.0, "USD": 1.08, "ZAR": 20.0,
}  # fmt: skip
_PEGGED = frozenset({"BGN"})


@lru_cache(maxsize=256)
def _easter(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    week = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * week) // 433
    month, day = divmod(h + week - 7 * m + 114, 31)
    return date(year, month, day + 1)


def is_publication_day(day: date) -> bool:
    """Whether the ECB publishes on ``day`` (a TARGET working day)."""
    if day.weekday() >= 5 or day < FIRST_PUBLICATION:
        return False
    easter = _easter(day.year)
    closed = {(1, 1), (5, 1), (12, 25), (12, 26)}
    return (day.month, day.day) not in closed and day not in (
        easter - timedelta(days=2),
        easter + timedelta(days=1),
    )


def published(on_or_before: date, now: float) -> date | None:
    """The last publication date on or before ``on_or_before`` already out at ``now``."""
    local_now = datetime.fromtimestamp(now, _FRANKFURT)
    latest = local_now.date()
    if local_now.time() < _PUBLISHED_AT:
        latest -= timedelta(days=1)
    day = min(on_or_before, latest)
    while day >= FIRST_PUBLICATION:
        if is_publication_day(day):
            return day
        day -= timedelta(days=1)
    return None


def ecb_rate(code: str, day: date, seed: int = 0) -> float:
    """Units of ``code`` per euro on ``day`` (1 for EUR), unrounded."""
    if code == "EUR":
        return 1.0
    reference = ECB_REFERENCE[code]
    if code in _PEGGED:
        return reference
    key = symbol_key(f"EUR{code}=X", seed)
    moved = math.log(bar_on(key, day).close) - math.log(bar_on(key, _ANCHOR).close)
    return reference * math.exp(0.15 * moved)
