"""Admission: what a request waits for before it is sent, in order.

The provider-wide :class:`Pause` after a 429, the semaphore (``max_concurrency``),
the quota ledger (its day read once, before the semaphore; then checked and counted
synchronously under it, see :mod:`~finappd.providers.quota`) and the rate windows
(:class:`~finappd.providers.limits.RateWindows`). Time is injected (``clock`` and
``sleep``), as in the windows and the breaker, so a test of a pause needs no real wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from finappd.errors import QuotaExhaustedError, RateLimitedError
from finappd.providers._refusals import Refusals
from finappd.providers.limits import RateWindows
from finappd.providers.quota import QuotaLedger

__all__ = ["Admission", "Pause", "SharedAdmission", "Sleep"]

#: ``asyncio.sleep``'s shape: tests pass one that moves their clock instead.
Sleep = Callable[[float], Awaitable[None]]


class Pause:
    """The provider-wide hold after a 429: no request is sent before it ends."""

    def __init__(
        self,
        name: str,
        *,
        longest: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.longest = longest  # a pause longer than this fails fast (backoff_max)
        self._clock = clock
        self._sleep = sleep
        self._until = 0.0  # clock() before which nothing is sent

    def __repr__(self) -> str:
        return f"<Pause {self.name} remaining={self.remaining():.1f}s>"

    def remaining(self) -> float:
        """Seconds until the pause ends (0 when not paused)."""
        return max(0.0, self._until - self._clock())

    def extend(self, seconds: float) -> None:
        """Hold back every request for ``seconds`` from now (never shortens a pause)."""
        self._until = max(self._until, self._clock() + seconds)

    async def wait(self, symbol: str | None) -> None:
        """Sleep out the pause; one longer than ``longest`` raises RateLimitedError at once."""
        while (remaining := self.remaining()) > 0:
            if remaining > self.longest:
                raise RateLimitedError(
                    f"{self.name}: paused for {remaining:.0f}s after a 429",
                    provider=self.name,
                    symbol=symbol,
                    retry_after=remaining,
                )
            await self._sleep(remaining)


@dataclass(frozen=True, slots=True)
class SharedAdmission:
    """The limits a provider shares with other daemons (``finappd.coord``): ``admit`` waits
    for the shared rate windows and counts the shared quota, when it has either;
    ``take``/``give`` hold one of its ``max_concurrency_total`` request slots, when it has
    that limit."""

    admit: Callable[[], Awaitable[None]] | None = None
    take: Callable[[], Awaitable[None]] | None = None
    give: Callable[[], None] | None = None


class Admission:
    """Pause, semaphore, quota and rate windows of one provider, taken in that order."""

    def __init__(
        self,
        refusals: Refusals,
        pause: Pause,
        ledger: QuotaLedger,
        windows: RateWindows,
        *,
        max_concurrency: int,
    ) -> None:
        self.refusals = refusals
        self.pause = pause
        self.ledger = ledger
        self.windows = windows
        self.semaphore = asyncio.Semaphore(max_concurrency)
        #: The limits shared with other daemons (``finappd.coord``), each taken after
        #: this daemon's own: the slot after the semaphore, the windows after its windows.
        self.shared: SharedAdmission | None = None

    def __repr__(self) -> str:
        return f"<Admission {self.semaphore!r} {self.windows!r} {self.pause!r}>"

    async def acquire(self, symbol: str | None) -> None:
        """Wait for pause, semaphore, quota and windows; on return the semaphore is held.

        The quota ledger's one read per quota day is awaited before the semaphore; under
        it the budget is checked and counted synchronously (its write goes behind), so a
        slot never waits on SQLite.
        """
        self.refusals.check(symbol)
        await self.pause.wait(symbol)
        while True:
            await self.ledger.refresh()
            await self.semaphore.acquire()
            try:
                self.refusals.check(symbol)  # things may have changed while this caller waited
                try:
                    counted = self.ledger.take_now(symbol)
                except QuotaExhaustedError as exc:
                    self.refusals.park_until_reset(exc.period, str(exc))
                    raise exc from None
                if counted:
                    if self.shared is not None and self.shared.take is not None:
                        await self.shared.take()
                    try:
                        await self._windows(symbol)
                    except BaseException:
                        self._give()
                        raise
                    return
            except BaseException:
                self.semaphore.release()
                raise
            # The quota day turned while this caller waited: read it outside the semaphore.
            self.semaphore.release()

    async def _windows(self, symbol: str | None) -> None:
        """This daemon's rate windows, then the shared ones; after a 429, once more."""
        while True:
            await self.windows.acquire()
            await self._shared()
            if self.pause.remaining() <= 0:
                return
            # A 429 arrived while this caller waited: sleep it out, then queue again for
            # the windows so the callers released by the pause do not burst.
            await self.pause.wait(symbol)

    def _give(self) -> None:
        """Free the shared request slot, when the provider shares ``max_concurrency_total``."""
        if self.shared is not None and self.shared.give is not None:
            self.shared.give()

    async def _shared(self) -> None:
        """The shared limits' admission; a quota all daemons spent parks this provider."""
        if self.shared is None or self.shared.admit is None:
            return
        try:
            await self.shared.admit()
        except QuotaExhaustedError as exc:
            self.refusals.park_until_reset(exc.period, str(exc))
            raise

    def release(self) -> None:
        """Free the semaphore slot (and the shared request slot) :meth:`acquire` took."""
        self._give()
        self.semaphore.release()
