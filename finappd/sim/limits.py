"""Admission control of the simulated API: a concurrency cap and sliding-window rate limits.

The server-wide cap and window (``SimConfig.max_concurrency``, ``rate_limit``) say no
with a plain-text 429 and (unlike most real APIs) a ``Retry-After`` header, so the
client's pause logic can be tested. Rejected requests are never counted as in flight
nor as admitted in the rate window. Each API's own window (``provider_limits``) is a
:class:`SlidingWindow` too, answered in that API's shape (:mod:`finappd.sim.routes`).

Every request that arrives, refused or not, is also counted in sliding windows of a
second, a minute and an hour (``SimStats.max_arrivals``): how hard a client pushed,
which is what a client's own rate limits promise to bound, 429 storms included.
"""

from __future__ import annotations

import math
from collections import deque

from finappd.sim.config import SimConfig, SimStats

__all__ = ["ARRIVAL_WINDOWS", "Gate", "SlidingWindow"]

#: Sliding windows (seconds) in which arrivals are counted for ``SimStats.max_arrivals``.
ARRIVAL_WINDOWS = (1.0, 60.0, 3600.0)


class SlidingWindow:
    """The admission times of the last requests: at most ``limit`` in any ``window`` seconds."""

    def __init__(self) -> None:
        self._admitted: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._admitted)

    def admit(self, limit: tuple[int, float], now: float) -> float | None:
        """Admit one request at ``now``: ``None``, or the seconds until the window has room."""
        count, window = limit
        admitted = self._admitted
        while admitted and admitted[0] <= now - window:
            admitted.popleft()
        if len(admitted) >= count:
            return window - (now - admitted[0]) if admitted else window
        admitted.append(now)
        return None

    def clear(self) -> None:
        """Forget every admission."""
        self._admitted.clear()


class Gate:
    """Decides per request whether it is admitted, and keeps in-flight and window counters."""

    def __init__(self, stats: SimStats) -> None:
        self.stats = stats
        self._window = SlidingWindow()
        self._arrivals: dict[float, deque[float]] = {w: deque() for w in ARRIVAL_WINDOWS}

    def arrive(self, now: float) -> None:
        """Count one request received at monotonic ``now`` in every arrival window."""
        peaks = self.stats.max_arrivals
        for window, arrived in self._arrivals.items():
            while arrived and arrived[0] <= now - window:
                arrived.popleft()
            arrived.append(now)
            key = f"{window:g}s"
            peaks[key] = max(peaks.get(key, 0), len(arrived))

    def admit(self, config: SimConfig, now: float) -> int | None:
        """Admit one request at monotonic ``now``: ``None``, or the Retry-After seconds of a 429."""
        stats = self.stats
        self.arrive(now)
        if config.max_concurrency is not None and stats.in_flight >= config.max_concurrency:
            return max(1, math.ceil(config.retry_after))
        if config.rate_limit is not None:
            wait = self._window.admit(config.rate_limit, now)
            if wait is not None:
                return max(1, math.ceil(wait))
            stats.max_in_window = max(stats.max_in_window, len(self._window))
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        return None

    def release(self) -> None:
        """Mark one admitted request as answered."""
        self.stats.in_flight -= 1

    def reset(self) -> None:
        """Forget the rate and arrival windows (counters are reset on ``stats``)."""
        self._window.clear()
        for arrived in self._arrivals.values():
            arrived.clear()
