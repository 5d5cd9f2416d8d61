"""What a provider's body classifier may say about a response, and what a provider can do.

Most market-data APIs answer "slow down", "no such symbol" or "not on your plan"
with HTTP 200, so every response passes a classifier (``BaseProvider.classify``)
whose :class:`Verdict` the base class turns into an action: parse, return nothing,
raise, pause, park, disable, or retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Capability", "Classified", "Verdict"]


class Verdict(StrEnum):
    """One response's meaning, decided by the provider's classifier."""

    OK = "ok"  # parse it
    EMPTY = "empty"  # a valid answer with no data in range: the provider returns []
    NOT_FOUND = "not_found"  # SymbolNotFoundError, no retry; a fallback may serve it
    RATE_LIMITED = "rate_limited"  # provider-wide pause (Retry-After, else backoff), retry
    QUOTA_EXHAUSTED = "quota_exhausted"  # park until the quota resets, no retry
    AUTH = "auth"  # AuthError; the provider is disabled for the rest of the run
    PLAN_GATED = "plan_gated"  # PlanGatedError, no retry; a fallback may serve it
    TRANSIENT = "transient"  # retry with backoff; counts toward the circuit breaker
    BAD = "bad"  # BadResponseError, no retry


class Capability(StrEnum):
    """A kind of data a provider can serve; flows ask for one."""

    DAILY_BARS = "daily_bars"
    QUOTE = "quote"
    FX = "fx"
    CRYPTO = "crypto"
    ACTIONS = "actions"


@dataclass(frozen=True, slots=True)
class Classified:
    """A verdict with a short human reason (never a key or an unredacted URL)."""

    verdict: Verdict
    reason: str = ""
    retry_after: float | None = None  # seconds, when the body or headers say so
