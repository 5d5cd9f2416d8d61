"""Concurrency gauges shared by workflow steps and providers.

A :class:`Gauge` counts what is waiting and what is in flight, keeps the peaks,
and records durations, so that a run can end with one ``step.metrics`` or
``provider.metrics`` log line saying how busy each tier really was. Its waits are
also counted in cumulative :class:`Buckets`, the shape of a Prometheus histogram.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from types import TracebackType
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
        # The first bound >= value; past the last bound is the overflow bucket.
        self.counts[bisect_left(self.bounds, value)] += 1
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

    def wait(self) -> _Waiting:
        """Count the caller as waiting (for a semaphore, a limiter) while inside."""
        return _Waiting(self)

    def active(self) -> _Active:
        """Count the caller as in flight while inside; an exception counts as an error."""
        return _Active(self)

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


# The two blocks below run around every request and every ticker: plain context
# manager classes, as a generator-based @contextmanager costs several times more.


class _Waiting:
    """``with gauge.wait():`` counts the caller as waiting, then records how long it waited."""

    __slots__ = ("_gauge", "_started")

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._started = 0.0

    def __enter__(self) -> None:
        gauge = self._gauge
        gauge.waiting += 1
        if gauge.waiting > gauge.peak_waiting:
            gauge.peak_waiting = gauge.waiting
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        gauge = self._gauge
        gauge.waiting -= 1
        waited = time.perf_counter() - self._started
        gauge.waits.append(waited)
        gauge.wait_buckets.observe(waited)


class _Active:
    """``with gauge.active():`` counts the caller in flight; an exception counts as an error."""

    __slots__ = ("_gauge", "_started")

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._started = 0.0

    def __enter__(self) -> None:
        gauge = self._gauge
        gauge.calls += 1
        gauge.in_flight += 1
        if gauge.in_flight > gauge.peak_in_flight:
            gauge.peak_in_flight = gauge.in_flight
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        gauge = self._gauge
        if exc_type is not None:
            gauge.errors += 1
        gauge.in_flight -= 1
        gauge.durations.append(time.perf_counter() - self._started)
