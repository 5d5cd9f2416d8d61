"""What one answer means to the retry loop: the status-only verdict, the retryable failure, the act.

:func:`classify_status` is the default classifier (and what a provider's own ``classify``
falls back on); :func:`judge` acts on a verdict (return the response, disable, park or
raise); :class:`Retrying` carries a failure worth another attempt (a 429 or a "slow
down" body, a transient verdict, a timeout, a connection error) to the polite client's
loop (:mod:`~finappd.providers._polite`), which raises its ``error`` once retries are spent.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from finappd.errors import (
    AuthError,
    BadResponseError,
    PlanGatedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
    SymbolNotFoundError,
)
from finappd.providers._http import Response, parse_retry_after
from finappd.providers._refusals import Refusals
from finappd.providers.verdicts import Classified, Verdict

__all__ = ["FINAL_ERRORS", "Retrying", "classify_status", "judge"]

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
        """The retryable failure for a RATE_LIMITED or TRANSIENT verdict.

        A transient 5xx ends, once retries are spent, as a :class:`ServerError`; a
        transient 2xx-4xx (an outage page, a cut-off body) as a :class:`BadResponseError`.
        """
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
        kind = ServerError if status >= 500 else BadResponseError
        return cls(kind(message, provider=provider, symbol=symbol, status=status))


def judge(
    name: str,
    response: Response,
    classified: Classified,
    symbol: str | None,
    refusals: Refusals,
) -> Response:
    """Act on a verdict: return the response (OK/EMPTY), or raise, disable or park."""
    verdict = classified.verdict
    if verdict is Verdict.OK:
        return response
    if verdict is Verdict.EMPTY:
        return dataclasses.replace(response, verdict=verdict)
    reason = classified.reason or f"HTTP {response.status}"
    message = f"{name}: {reason} (HTTP {response.status} from {response.url})"
    status = response.status
    if verdict in (Verdict.RATE_LIMITED, Verdict.TRANSIENT):
        raise Retrying.from_verdict(name, symbol, response, classified, message)
    if verdict is Verdict.AUTH:
        refusals.disable(message)
        raise AuthError(message, provider=name, symbol=symbol, status=status)
    if verdict is Verdict.QUOTA_EXHAUSTED:
        which = "monthly" if "month" in reason.lower() else "daily"
        refusals.park_until_reset(which, reason, classified.retry_after)
        raise QuotaExhaustedError(
            message, provider=name, symbol=symbol, status=status, period=which
        )
    raise FINAL_ERRORS[verdict](message, provider=name, symbol=symbol, status=status)
