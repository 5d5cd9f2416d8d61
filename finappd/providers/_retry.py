"""The retry policy: how many attempts, how long between them, how long a 429 pauses.

Backoff is exponential from ``backoff``, capped at ``backoff_max``, with full jitter
(a uniform draw below the cap) between attempts. A 429 without ``Retry-After`` pauses
the whole provider with equal jitter (half the cap plus half a draw), so the pause
never collapses to nothing; a pause longer than ``backoff_max`` is not waited out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from finappd.config import ProviderSettings

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries and backoff of one provider, in seconds."""

    retries: int
    backoff: float
    backoff_max: float

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> RetryPolicy:
        """The policy ``settings`` configure (``retries``, ``backoff``, ``backoff_max``)."""
        return cls(
            retries=settings.retries,
            backoff=settings.backoff.total_seconds(),
            backoff_max=settings.backoff_max.total_seconds(),
        )

    def cap(self, attempt: int) -> float:
        """The exponential backoff ceiling for ``attempt`` (0-based), capped at backoff_max."""
        return min(self.backoff_max, self.backoff * float(2 ** min(attempt, 30)))

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before the retry of ``attempt`` (0-based)."""
        return self.cap(attempt) * random.random()

    def pause_after_429(self, attempt: int, retry_after: float | None) -> float:
        """The provider-wide pause after a 429: ``Retry-After``, else equal jitter."""
        if retry_after is not None:
            return retry_after
        return self.delay(attempt) / 2 + self.cap(attempt) / 2

    def gives_up(self, attempt: int) -> bool:
        """Whether ``attempt`` (0-based) was the last one allowed."""
        return attempt >= self.retries
