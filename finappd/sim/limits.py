"""Admission control of the simulated API: a concurrency cap and a sliding-window rate limit.

Both say no the way Yahoo does, with a plain-text 429, and (unlike Yahoo) with a
``Retry-After`` header so the client's pause logic can be tested. Rejected
requests are never counted as in flight nor as admitted in the rate window.
"""

from __future__ import annotations

import math
from collections import deque

from finappd.sim.config import SimConfig, SimStats

__all__ = ["Gate"]


class Gate:
    """Decides per request whether it is admitted, and keeps in-flight and window counters."""

    def __init__(self, stats: SimStats) -> None:
        self.stats = stats
        self._admitted: deque[float] = deque()

    def admit(self, config: SimConfig, now: float) -> int | None:
        """Admit one request at monotonic ``now``: ``None``, or the Retry-After seconds of a 429."""
        stats = self.stats
        if config.max_concurrency is not None and stats.in_flight >= config.max_concurrency:
            return max(1, math.ceil(config.retry_after))
        if config.rate_limit is not None:
            limit, window = config.rate_limit
            admitted = self._admitted
            while admitted and admitted[0] <= now - window:
                admitted.popleft()
            if len(admitted) >= limit:
                wait = window - (now - admitted[0]) if admitted else window
                return max(1, math.ceil(wait))
            admitted.append(now)
            stats.max_in_window = max(stats.max_in_window, len(admitted))
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        return None

    def release(self) -> None:
        """Mark one admitted request as answered."""
        self.stats.in_flight -= 1

    def reset(self) -> None:
        """Forget the rate window (counters are reset on ``stats``)."""
        self._admitted.clear()
