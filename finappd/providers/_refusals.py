"""Why a provider sends nothing now: its key was refused, its quota is spent, its circuit is open.

Each is provider-wide state shared by every flow using the provider instance: a
refused key disables the provider for the rest of the run (``new_run`` forgets it),
a spent quota parks it until the quota resets, and an open circuit breaker refuses
until its cool-down ends. :meth:`Refusals.check` turns the state into the fail-fast
error of a call that would be refused, before anything is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from finappd.errors import AuthError, QuotaExhaustedError
from finappd.providers.breaker import CircuitBreaker
from finappd.providers.quota import QuotaLedger

__all__ = ["Refusals"]

log = structlog.get_logger(__name__)


class Refusals:
    """One provider's disabled / parked state, and the check every call passes first."""

    def __init__(self, name: str, ledger: QuotaLedger, breaker: CircuitBreaker) -> None:
        self.name = name
        self.ledger = ledger
        self.breaker = breaker
        self.parked_until: datetime | None = None  # UTC; quota spent until then
        self.disabled: str | None = None  # why the key was refused this run

    def __repr__(self) -> str:
        parked = self.parked_until.isoformat() if self.parked_until else None
        return f"<Refusals {self.name} disabled={self.disabled is not None} parked={parked}>"

    def new_run(self) -> None:
        """Forget a refused key: each run gives the provider one fresh try."""
        self.disabled = None

    def disable(self, reason: str) -> None:
        """Send nothing more this run: the key was refused (logged once)."""
        if self.disabled is None:
            self.disabled = reason
            log.error("provider.auth_failed", provider=self.name, reason=reason)

    def park(self, until: datetime, reason: str) -> None:
        """Send nothing more until ``until`` (UTC): the quota is spent."""
        if self.parked_until is None or until > self.parked_until:
            self.parked_until = until
            log.warning(
                "provider.parked", provider=self.name, until=until.isoformat(), reason=reason
            )

    def park_until_reset(
        self,
        which: str,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        """Park until the ``which`` ("daily"/"monthly") quota resets, or for ``retry_after`` s."""
        until = self.ledger.resets_at(which)
        if retry_after is not None:
            until = self.ledger.clock() + timedelta(seconds=retry_after)
        self.park(until, reason)

    def check(self, symbol: str | None) -> None:
        """Fail fast, sending nothing, while disabled, parked or the breaker is open."""
        if self.disabled is not None:
            message = f"{self.name}: disabled for this run after its key was refused"
            raise AuthError(message, provider=self.name, symbol=symbol)
        if self.parked_until is not None:
            if self.ledger.clock() < self.parked_until:
                raise QuotaExhaustedError(
                    f"{self.name}: parked until {self.parked_until.isoformat()} (quota spent)",
                    provider=self.name,
                    symbol=symbol,
                )
            self.parked_until = None
            log.info("provider.unparked", provider=self.name)
        if self.breaker.refuses():
            raise self.breaker.unavailable(symbol)
