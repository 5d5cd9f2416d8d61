"""A provider's limits: defaults per API, config overrides, and the windows that enforce them.

Each provider class declares :class:`Limits` from PROVIDERS.md; the config overrides
any of them (``max_concurrency``, ``rate``/``rates``, ``daily_quota``,
``monthly_quota``, ``quota_reset_tz``), and :func:`effective_limits` merges the two.
Rate windows shorter than a day (second, minute, hour) are enforced in memory by
:class:`RateWindows`; a ``N/day`` or ``N/month`` window is a quota, kept in SQLite by
the quota ledger (:mod:`finappd.providers.quota`) so a restart does not reset it.

Why not ``aiolimiter``: its leaky bucket lets ``N`` requests through at once and then
refills continuously, so a fresh ``AsyncLimiter(8, 60)`` admits 15 requests in the
first minute, which is exactly the 429 that Twelve Data's or Polygon's per-minute
counter answers. :class:`RateWindows` keeps the send times of the last ``N`` requests
per window (a sliding log), so no window ever holds more than ``N``, bursts included.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from finappd.config import DAY, MONTH, ProviderSettings, Rate

__all__ = ["HEADROOM", "Limits", "RateWindows", "effective_limits"]

#: Windows are kept this much longer than declared: requests sent exactly one window
#: apart can arrive closer together than that after network jitter.
HEADROOM = 1.02


def _rate(value: Rate | str) -> Rate:
    return value if isinstance(value, Rate) else Rate.model_validate(value)


@dataclass(frozen=True, slots=True)
class Limits:
    """Concurrency, rate windows and quotas of one provider (``rates`` may be strings)."""

    max_concurrency: int = 4
    rates: Sequence[Rate | str] = ()
    daily_quota: int | None = None
    monthly_quota: int | None = None
    quota_tz: str = "UTC"  # quotas reset at midnight in this timezone
    _windows: tuple[Rate, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = tuple(_rate(r) for r in self.rates)
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "_windows", rates)

    def windows(self) -> tuple[Rate, ...]:
        """The rate windows shorter than a day, enforced in memory."""
        return tuple(r for r in self._windows if r.period < DAY)

    def daily(self) -> int | None:
        """Requests allowed per quota day: the lowest of ``daily_quota`` and any N/day rate."""
        return _lowest(self.daily_quota, (r.count for r in self._windows if r.period == DAY))

    def monthly(self) -> int | None:
        """Requests allowed per calendar month: ``monthly_quota`` or an N/month rate."""
        return _lowest(self.monthly_quota, (r.count for r in self._windows if r.period == MONTH))

    def describe(self) -> dict[str, Any]:
        """JSON-able effective limits, as ``check-config`` shows them."""
        return {
            "max_concurrency": self.max_concurrency,
            "rates": [str(r) for r in self.windows()],
            "daily_quota": self.daily(),
            "monthly_quota": self.monthly(),
            "quota_reset": f"00:00 {self.quota_tz}",
        }


def _lowest(first: int | None, others: Iterable[int]) -> int | None:
    values = [v for v in (first, *others) if v is not None]
    return min(values) if values else None


def effective_limits(defaults: Limits, settings: ProviderSettings) -> Limits:
    """``defaults`` with every limit the config sets replacing the provider's own."""
    given = settings.model_fields_set
    rates: Sequence[Rate | str] = defaults.rates
    if "rates" in given:
        rates = settings.rates or ()
    elif "rate" in given:  # the shorthand; an explicit None means "no rate windows"
        rates = () if settings.rate is None else (settings.rate,)
    return Limits(
        max_concurrency=settings.max_concurrency or defaults.max_concurrency,
        rates=rates,
        daily_quota=settings.daily_quota if "daily_quota" in given else defaults.daily_quota,
        monthly_quota=(
            settings.monthly_quota if "monthly_quota" in given else defaults.monthly_quota
        ),
        quota_tz=settings.quota_reset_tz or defaults.quota_tz,
    )


class RateWindows:
    """Sliding-window logs: a request is admitted when every window has room for it."""

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rates = tuple(rates)
        self._periods = [r.period * headroom for r in self.rates]
        self._sent: list[deque[float]] = [deque() for _ in self.rates]
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()  # FIFO: callers are admitted in arrival order
        self.waits = 0

    def __repr__(self) -> str:
        windows = ", ".join(
            f"{rate}: {len(sent)}" for rate, sent in zip(self.rates, self._sent, strict=True)
        )
        return f"<RateWindows {windows or 'unlimited'} waits={self.waits}>"

    def delay(self, now: float) -> float:
        """Seconds until every window has room at monotonic ``now`` (0 when it has now)."""
        wait = 0.0
        for rate, period, sent in zip(self.rates, self._periods, self._sent, strict=True):
            while sent and sent[0] <= now - period:
                sent.popleft()
            if len(sent) >= rate.count:
                wait = max(wait, sent[0] + period - now)
        return wait

    async def acquire(self) -> None:
        """Wait until every window has room, then count one request in all of them at once."""
        if not self.rates:
            return
        async with self._lock:
            while (wait := self.delay(self._clock())) > 0:
                self.waits += 1
                await self._sleep(wait)
            now = self._clock()
            for sent in self._sent:
                sent.append(now)
