"""Concurrency gauges shared by workflow steps and providers.

A :class:`Gauge` counts what is waiting and what is in flight, keeps the peaks,
and records durations, so that a run can end with one ``step.metrics`` or
``provider.metrics`` log line saying how busy each tier really was. Its waits are
also counted in cumulative :class:`Buckets`, the shape of a Prometheus histogram.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["WAIT_BOUNDS", "Buckets", "Gauge", "percentile"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0..100) of ``values``, or None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


#: Timings kept per gauge for percentiles; a daemon runs for months, so they are bounded.
SAMPLES = 8192


#: Upper bounds (seconds) of the wait buckets: a slot at once, a rate window, a 429 pause.
WAIT_BOUNDS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)


class Buckets:
    """Every observation since start, counted per upper bound (a histogram's raw counts)."""

    def __init__(self, bounds: tuple[float, ...] = WAIT_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound it does not exceed."""
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), -1)
        self.counts[index] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count of observations <= le)`` pairs, ending with ``+Inf``."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


class Gauge:
    """In-flight and waiting counters with peaks, call counts and recent timings."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.errors = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.waiting = 0
        self.peak_waiting = 0
        self.durations: deque[float] = deque(maxlen=SAMPLES)
        self.waits: deque[float] = deque(maxlen=SAMPLES)
        self.wait_buckets = Buckets()

    def __repr__(self) -> str:
        return (
            f"<Gauge {self.name} calls={self.calls} errors={self.errors} "
            f"in_flight={self.in_flight}/{self.peak_in_flight} "
            f"waiting={self.waiting}/{self.peak_waiting}>"
        )

    @contextmanager
    def wait(self) -> Iterator[None]:
        """Count the caller as waiting (for a semaphore, a limiter) while inside."""
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.waiting -= 1
            waited = time.perf_counter() - started
            self.waits.append(waited)
            self.wait_buckets.observe(waited)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Count the caller as in flight while inside; an exception counts as an error."""
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self.errors += 1
            raise
        finally:
            self.in_flight -= 1
            self.durations.append(time.perf_counter() - started)

    def summary(self) -> dict[str, Any]:
        """The figures for a ``*.metrics`` log line (times in milliseconds)."""
        return {
            "calls": self.calls,
            "errors": self.errors,
            "peak_in_flight": self.peak_in_flight,
            "peak_waiting": self.peak_waiting,
            "p50_ms": _ms(percentile(self.durations, 50)),
            "p95_ms": _ms(percentile(self.durations, 95)),
            "wait_p50_ms": _ms(percentile(self.waits, 50)),
            "wait_p95_ms": _ms(percentile(self.waits, 95)),
        }
