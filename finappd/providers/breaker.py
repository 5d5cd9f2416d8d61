"""A circuit breaker per provider: stop calling an API that keeps failing, probe it later.

``closed`` → (``threshold`` consecutive transient failures: timeouts, connection
errors, 5xx, outage pages) → ``open``: every call fails fast without a request →
(``cooldown`` elapsed) → ``half_open``: exactly one probe request is let through,
the others still fail fast → the probe succeeds: ``closed``; it fails: ``open``
again for another cool-down. Any answer that is not transient (even "not found")
counts as a success: the API is up. Transitions are logged.

The polite client sends each request inside :meth:`CircuitBreaker.guard`, which
claims the request (or raises :class:`~finappd.errors.ProviderUnavailableError`)
and frees the claim when the block ends without a verdict (cancelled, a bug).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

import structlog

from finappd.errors import ProviderUnavailableError

__all__ = ["Circuit", "CircuitBreaker", "Claim"]

log = structlog.get_logger(__name__)


class Circuit(StrEnum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Claim:
    """One request let through by the breaker (a context manager); report its answer once.

    A block that ends without a report (cancelled, raised) releases the claim, so a
    half-open probe is never lost.
    """

    __slots__ = ("_breaker", "settled")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self.settled = False

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.settled:
            self._breaker.release()

    def success(self) -> None:
        """The API answered (anything but a transient failure)."""
        self.settled = True
        self._breaker.success()

    def failure(self, reason: str) -> None:
        """A transient failure: timeout, connection error, 5xx, outage page."""
        self.settled = True
        self._breaker.failure(reason)


class CircuitBreaker:
    """Counts consecutive transient failures of one provider and opens after ``threshold``."""

    def __init__(
        self,
        provider: str,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.threshold = threshold
        self.cooldown = cooldown
        self.state = Circuit.CLOSED
        self.failures = 0  # consecutive
        self.opened = 0  # how many times it opened
        self._clock = clock
        self._opened_at = 0.0
        self._probing = False

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.provider} {self.state} failures={self.failures}/"
            f"{self.threshold} opened={self.opened} cooldown={self.cooldown:g}s>"
        )

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        if self.state is not Circuit.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def refuses(self) -> bool:
        """Whether a call now would fail fast (open and cooling down, or a probe is out)."""
        if self.state is Circuit.OPEN:
            return self.retry_in() > 0
        return self.state is Circuit.HALF_OPEN and self._probing

    def unavailable(self, symbol: str | None = None) -> ProviderUnavailableError:
        """The fail-fast error of an open circuit (or of a half-open one already probing)."""
        return ProviderUnavailableError(
            f"{self.provider}: circuit {self.state} after {self.failures} consecutive "
            f"failures; next probe in {self.retry_in():.0f}s",
            provider=self.provider,
            symbol=symbol,
        )

    def guard(self, symbol: str | None = None) -> Claim:
        """Claim one request, for ``with breaker.guard(symbol) as claim:``; raise
        :meth:`unavailable` at once when the breaker refuses it.

        Inside, the caller reports the answer on the :class:`Claim`; a block that ends
        without one (cancelled, raised) releases the claim.
        """
        if not self.acquire():
            raise self.unavailable(symbol)
        return Claim(self)

    def acquire(self) -> bool:
        """Claim the right to send one request now; False means fail fast."""
        if self.state is Circuit.CLOSED:
            return True
        if self.state is Circuit.OPEN:
            if self.retry_in() > 0:
                return False
            self.state = Circuit.HALF_OPEN
            log.warning("provider.circuit_half_open", provider=self.provider)
        if self._probing:
            return False
        self._probing = True
        return True

    def release(self) -> None:
        """The claimed request ended without an answer either way (e.g. it was cancelled)."""
        self._probing = False

    def success(self) -> None:
        """The API answered; close the breaker."""
        self._probing = False
        self.failures = 0
        if self.state is not Circuit.CLOSED:
            self.state = Circuit.CLOSED
            log.info("provider.circuit_closed", provider=self.provider)

    def failure(self, reason: str) -> None:
        """A transient failure; open after ``threshold`` in a row, or when a probe fails."""
        self._probing = False
        self.failures += 1
        if self.state is Circuit.HALF_OPEN or (
            self.state is Circuit.CLOSED and self.failures >= self.threshold
        ):
            self.state = Circuit.OPEN
            self.opened += 1
            self._opened_at = self._clock()
            log.warning(
                "provider.circuit_open",
                provider=self.provider,
                failures=self.failures,
                cooldown_s=self.cooldown,
                reason=reason,
            )
