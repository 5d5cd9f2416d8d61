"""The simulator's knobs (``SimConfig``), counters (``SimStats``) and clocks (``Clocks``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from finappd.sim.faults import FaultPlan

__all__ = ["Clocks", "SimConfig", "SimStats"]


@dataclass(slots=True)
class SimConfig:
    """How the simulated API behaves; mutable and read per request, so tests may change it live."""

    latency: float = 0.0
    """Seconds every admitted request sleeps before it is answered."""
    max_concurrency: int | None = None
    """Requests allowed in flight at once; one more gets a plain-text 429."""
    rate_limit: tuple[int, float] | None = None
    """``(requests, window seconds)`` admitted per sliding window; one more gets a 429."""
    retry_after: float = 1.0
    """Seconds announced in ``Retry-After`` on a concurrency 429 (sent as int, at least 1)."""
    unknown_symbols: frozenset[str] = frozenset()
    """Symbols every API answers as unknown, in its own way (as any symbol starting ``ZZZ``)."""
    null_symbols: frozenset[str] = frozenset()
    """Symbols whose last bar is ``null`` in every array."""
    provider_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Per API (its provider kind, the name of its module here): ``(requests, window seconds)``;
    one more is refused in that API's own rate-limit shape (not the plain-text 429)."""
    seed: int = 0
    """Changes every synthetic series at once; 0 is the default universe."""
    faults: FaultPlan | None = None
    """Errors, hangs, resets and bad bodies to inject (:mod:`finappd.sim.faults`)."""
    splits: dict[str, tuple[date, int, int]] = field(default_factory=dict)
    """Per chart symbol, a split ``(ex_date, numerator, denominator)``: once it has gone ex,
    the chart API lists it in ``events.splits`` and divides every older price by the ratio."""


@dataclass(slots=True)
class SimStats:
    """Counters of the requests the simulator received (control endpoints excluded)."""

    requests: int = 0
    served: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    rejected_429: int = 0
    not_found: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    max_in_window: int = 0
    max_arrivals: dict[str, int] = field(default_factory=dict)
    """Most requests received (admitted or refused) in any sliding window: "1s", "60s", "3600s"."""
    api_refused: dict[str, int] = field(default_factory=dict)
    """Requests an API's own window (``provider_limits``) refused, per API, in any shape."""

    def reset(self) -> None:
        """Zero the counters; requests still in flight stay counted as in flight."""
        self.requests = self.served = self.rejected_429 = self.not_found = 0
        self.max_in_window = 0
        self.max_arrivals = {}
        self.api_refused = {}
        self.peak_in_flight = self.in_flight
        self.by_status = {}

    def record(self, status: int) -> None:
        """Count one answered request by its HTTP status."""
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == 200:
            self.served += 1
        elif status == 404:
            self.not_found += 1
        elif status == 429:
            self.rejected_429 += 1

    def as_json(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict (status codes become string keys)."""
        data = asdict(self)
        data["by_status"] = {str(code): count for code, count in sorted(self.by_status.items())}
        return data


@dataclass(frozen=True, slots=True)
class Clocks:
    """The simulator's time: tests inject fakes to move windows on without sleeping."""

    wall: Callable[[], float] = time.time
    """Epoch seconds: "now" of every payload (which bars exist, what a quote says)."""
    monotonic: Callable[[], float] = time.monotonic
    """Seconds the rate windows and arrival counters count in."""
