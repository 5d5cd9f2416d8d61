"""Tests for finappd.providers.breaker: closed → open → half-open → closed, on an injected clock."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from finappd.errors import ProviderUnavailableError
from finappd.providers.breaker import Circuit, CircuitBreaker


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> Circuit:
    """The breaker's state, read through a call so each check sees the current one."""
    return breaker.state


def make(clock: Clock, threshold: int = 3, cooldown: float = 10.0) -> CircuitBreaker:
    """A breaker for provider 'p' on ``clock``."""
    return CircuitBreaker("p", threshold=threshold, cooldown=cooldown, clock=clock)


def test_opens_after_threshold_consecutive_failures_only() -> None:
    """Failures interrupted by a success never open it; threshold in a row does."""
    breaker = make(Clock())
    for _ in range(2):
        breaker.failure("HTTP 503")
    breaker.success()
    breaker.failure("HTTP 503")
    breaker.failure("HTTP 503")
    assert state(breaker) is Circuit.CLOSED
    with capture_logs() as logs:
        breaker.failure("timeout")
    assert state(breaker) is Circuit.OPEN
    assert [e["event"] for e in logs] == ["provider.circuit_open"]
    assert logs[0]["provider"] == "p"
    assert logs[0]["reason"] == "timeout"


def test_open_refuses_until_the_cooldown_then_lets_one_probe() -> None:
    """While open every call is refused; after the cool-down exactly one probe goes."""
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.failure("x")
    assert breaker.refuses()
    assert not breaker.acquire()
    assert breaker.retry_in() == 10.0
    clock.now += 10.0
    assert not breaker.refuses()
    with capture_logs() as logs:
        assert breaker.acquire()
    assert state(breaker) is Circuit.HALF_OPEN
    assert [e["event"] for e in logs] == ["provider.circuit_half_open"]
    assert breaker.refuses()
    assert not breaker.acquire()  # a second caller while the probe is out


def test_successful_probe_closes_and_failed_probe_reopens() -> None:
    """The probe's outcome decides: success closes (logged), failure opens for another cool-down."""
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.failure("x")
    clock.now += 10
    assert breaker.acquire()
    breaker.failure("still down")
    assert state(breaker) is Circuit.OPEN
    assert breaker.opened == 2
    assert breaker.retry_in() == 10.0
    clock.now += 10
    assert breaker.acquire()
    with capture_logs() as logs:
        breaker.success()
    assert state(breaker) is Circuit.CLOSED
    assert breaker.failures == 0
    assert [e["event"] for e in logs] == ["provider.circuit_closed"]


def test_abandoned_probe_frees_the_slot() -> None:
    """A probe that ends without an answer (cancelled) lets the next caller probe."""
    clock = Clock()
    breaker = make(clock, threshold=1)
    breaker.failure("x")
    clock.now += 10
    assert breaker.acquire()
    breaker.release()
    assert breaker.acquire()


def test_closed_breaker_always_acquires_and_repr_shows_state() -> None:
    """A closed breaker never refuses; repr names the provider, state and counts."""
    breaker = make(Clock())
    assert all(breaker.acquire() for _ in range(100))
    assert repr(breaker) == "<CircuitBreaker p closed failures=0/3 opened=0 cooldown=10s>"


def test_guard_refuses_fast_while_open_and_frees_an_unsettled_probe() -> None:
    """guard() raises unavailable while open; a probe block that raises leaves the next free."""
    clock = Clock()
    breaker = make(clock, threshold=1)
    with breaker.guard("SYM") as claim:
        claim.failure("HTTP 503")
    with pytest.raises(ProviderUnavailableError) as info, breaker.guard("SYM"):
        pass
    assert (info.value.provider, info.value.symbol) == ("p", "SYM")
    clock.now += 10
    with pytest.raises(RuntimeError), breaker.guard("SYM"):
        raise RuntimeError("classifier bug")  # no verdict: the probe is released
    with breaker.guard("SYM") as claim:
        claim.success()
    assert breaker.state is Circuit.CLOSED
