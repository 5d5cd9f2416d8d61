"""What one answer means to the retry loop: the status-only verdict and the retryable failure.

:func:`classify_status` is the default classifier (and what a provider's own ``classify``
falls back on); :class:`Retrying` carries a failure worth another attempt (a 429 or a
"slow down" body, a transient verdict, a timeout, a connection error) to the loop in
:mod:`~finappd.providers._polite`, which raises its ``error`` once retries are spent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from finappd.errors import (
    BadResponseError,
    PlanGatedError,
    ProviderError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.providers._http import Response, parse_retry_after
from finappd.providers.verdicts import Classified, Verdict

__all__ = ["FINAL_ERRORS", "Retrying", "classify_status"]

#: The error raised for a verdict that ends a call at once.
FINAL_ERRORS: dict[Verdict, type[ProviderError]] = {
    Verdict.NOT_FOUND: SymbolNotFoundError,
    Verdict.PLAN_GATED: PlanGatedError,
    Verdict.BAD: BadResponseError,
}


def classify_status(response: Response) -> Classified:
    """The status-only verdict: 2xx ok, 404 not found, 401/403 auth, 429, 5xx, other 4xx bad."""
    status = response.status
    if 200 <= status < 300:
        return Classified(Verdict.OK)
    reason = f"HTTP {status}"
    if status == 429:
        retry_after = parse_retry_after(response.retry_after, datetime.now(UTC))
        return Classified(Verdict.RATE_LIMITED, reason, retry_after)
    if status >= 500:
        return Classified(Verdict.TRANSIENT, reason)
    if status in (401, 403):
        return Classified(Verdict.AUTH, reason)
    if status == 404:
        return Classified(Verdict.NOT_FOUND, reason)
    return Classified(Verdict.BAD, reason)


class Retrying(Exception):
    """One attempt failed in a way worth retrying; ``error`` is raised when retries run out."""

    def __init__(
        self, error: ProviderError, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.rate_limited = rate_limited  # a 429 or "slow down" body: the provider pauses
        self.retry_after = retry_after

    @classmethod
    def from_verdict(
        cls,
        provider: str,
        symbol: str | None,
        response: Response,
        classified: Classified,
        message: str,
    ) -> Retrying:
        """The retryable failure for a RATE_LIMITED or TRANSIENT verdict."""
        status = response.status
        if classified.verdict is Verdict.RATE_LIMITED:
            error: ProviderError = RateLimitedError(
                message,
                provider=provider,
                symbol=symbol,
                status=status,
                retry_after=classified.retry_after,
            )
            return cls(error, rate_limited=True, retry_after=classified.retry_after)
        error = BadResponseError(message, provider=provider, symbol=symbol, status=status)
        return cls(error)
