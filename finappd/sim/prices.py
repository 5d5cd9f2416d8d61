"""Deterministic synthetic daily bars: each day's price is a pure function of (symbol, day).

Why not a plain cumulative random walk: the value of a day must not depend on the
requested range, and a walk anchored at an epoch costs O(days since epoch) per
request (or megabytes of cache per symbol at 20,000 symbols). Instead the log
price is multi-scale value noise: at each scale (2, 8, 32 … 2048 days) random
knots are drawn from a hash of (symbol, scale, knot index) and interpolated, with
amplitude growing like sqrt(scale), plus a small drift. That behaves like a
random walk over the horizons a test or chart looks at, is anchored nowhere, and
costs a dozen integer hashes per day, so a 10-day request takes well under 1 ms.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from finappd.sim.exchanges import exchange_of

__all__ = ["SimBar", "bar_on", "symbol_key", "synthetic_bars"]

_MASK = (1 << 64) - 1
# The drift is anchored here, so recent prices sit near the 10..500 centre.
_EPOCH = date(2015, 1, 2).toordinal()
_DRIFT_PER_DAY = 0.03 / 365.25
_ADJ_REFERENCE = date(2030, 1, 1).toordinal()
# (period in days, amplitude of log price): amplitude ~ 1.2 % * sqrt(period).
_SCALES: tuple[tuple[int, float], ...] = tuple(
    (period, 0.012 * math.sqrt(period)) for period in (2, 8, 32, 128, 512, 2048)
)
_DAILY_JITTER = 0.004


@dataclass(frozen=True, slots=True)
class SimBar:
    """One synthetic daily bar (exchange-local trading day)."""

    day: date
    open: float
    high: float
    low: float
    close: float
    adj_close: float
    volume: int


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(x: int) -> float:
    """A hash mapped to a float in [-1, 1)."""
    return (_mix(x) >> 11) * (2.0 / (1 << 53)) - 1.0


@lru_cache(maxsize=262144)
def _knot(x: int) -> float:
    """:func:`_unit` of a knot: neighbouring days interpolate between the same knots."""
    return _unit(x)


@lru_cache(maxsize=65536)
def symbol_key(symbol: str, seed: int = 0) -> int:
    """The 64-bit key of a symbol's series: stable across processes (crc32, not ``hash()``)."""
    return _mix(zlib.crc32(symbol.encode()) | ((seed & 0xFFFFFFFF) << 32))


def _base_log_price(key: int) -> float:
    """Log of the series' centre price, uniform in log space over 10..500."""
    u = (_unit(key ^ 0xB5) + 1.0) / 2.0
    return math.log(10.0) + u * math.log(50.0)


@lru_cache(maxsize=262144)
def _log_close(key: int, ordinal: int) -> float:
    level = _base_log_price(key) + _DRIFT_PER_DAY * (ordinal - _EPOCH)
    for index, (period, amplitude) in enumerate(_SCALES):
        knot, offset = divmod(ordinal, period)
        salt = (key ^ ((index + 1) * 0xD1B54A32D192ED03)) & _MASK
        left = _knot(salt + knot)
        right = _knot(salt + knot + 1)
        level += amplitude * (left + (right - left) * (offset / period))
    return level + _DAILY_JITTER * _unit(key + ordinal * 0x9FB21C651E98DF25)


# Cached (it is pure): a 20k-symbol fan-out asks for the same ~10 days of every symbol on
# every run, and computing a bar is ~70 % of the simulator's CPU per request otherwise.
@lru_cache(maxsize=262144)
def bar_on(key: int, day: date) -> SimBar:
    """The bar of the series ``key`` on ``day`` (any day; the caller picks trading days)."""
    ordinal = day.toordinal()
    close = math.exp(_log_close(key, ordinal))
    previous = math.exp(_log_close(key, ordinal - 1))
    gap = 1.0 + 0.003 * _unit(key ^ (ordinal * 0xA24BAED4963EE407))
    opened = previous * gap
    wick_up = 1.0 + 0.008 * abs(_unit(key ^ (ordinal * 0x9E6C63D0676A9A99)))
    wick_down = 1.0 - 0.008 * abs(_unit(key ^ (ordinal * 0x5851F42D4C957F2D)))
    # Adjusted close: a 1.5 %/year dividend adjustment back from a fixed date,
    # so it too depends on the day only.
    years_back = max(0.0, (_ADJ_REFERENCE - ordinal) / 365.25)
    adj = close * 0.985**years_back
    volume_scale = 1e5 * 100.0 ** ((_unit(key ^ 0x70) + 1.0) / 2.0)
    volume = int(volume_scale * (1.0 + 0.5 * _unit(key ^ (ordinal * 0x2545F4914F6CDD1D))))
    o, c = round(opened, 4), round(close, 4)
    return SimBar(
        day=day,
        open=o,
        high=max(round(max(opened, close) * wick_up, 4), o, c),
        low=max(min(round(min(opened, close) * wick_down, 4), o, c), 0.0001),
        close=c,
        adj_close=round(adj, 4),
        volume=max(volume, 0),
    )


def trading_days(start: date, end: date, *, weekends: bool) -> list[date]:
    """Days from ``start`` to ``end`` inclusive, Mon-Fri unless ``weekends``."""
    days: list[date] = []
    day = start
    one = timedelta(days=1)
    while day <= end:
        if weekends or day.weekday() < 5:
            days.append(day)
        day += one
    return days


def synthetic_bars(symbol: str, start: date, end: date, *, seed: int = 0) -> list[SimBar]:
    """Deterministic daily bars of ``symbol`` for trading days in [start, end]."""
    key = symbol_key(symbol, seed)
    weekends = exchange_of(symbol)[2]
    return [bar_on(key, day) for day in trading_days(start, end, weekends=weekends)]
