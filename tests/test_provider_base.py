"""Tests for finappd.providers.base: the politeness machinery every provider shares."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import CallbackResult, aioresponses
from structlog.testing import capture_logs

from finappd.config import Rate
from finappd.errors import (
    AuthError,
    BadResponseError,
    PlanGatedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
    SymbolNotFoundError,
)
from finappd.providers.base import (
    BaseProvider,
    Classified,
    Response,
    Verdict,
    classify_status,
)
from finappd.records import Bar
from tests.test_provider_support import FakeClock, provider_factory

BASE = "http://127.0.0.1:9"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class ProbeProvider(BaseProvider):
    """A provider whose only job is to GET a path through the base machinery."""

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Never used: these tests call fetch()."""
        raise NotImplementedError

    async def fetch(self, path: str, **params: str) -> Response:
        """GET ``path`` politely: the base classifies it (by status) and raises for errors."""
        return await self.http.get(f"{self.base_url}{path}", params=params or None, symbol="SYM")


MakeProbe = Callable[..., ProbeProvider]


@pytest.fixture
async def make_probe() -> AsyncIterator[MakeProbe]:
    """Build probe providers with fast backoff; close their sessions afterwards."""
    async with provider_factory(
        ProbeProvider, "probe", retries=2, base_url=BASE, rate=None
    ) as factory:
        yield factory


async def test_semaphore_caps_requests_in_flight(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """Twenty concurrent calls against max_concurrency=3 never have more than 3 in flight."""
    provider = make_probe(max_concurrency=3)
    in_flight = peak = 0

    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/x", callback=slow, repeat=True)
    await asyncio.gather(*(provider.fetch("/x") for _ in range(20)))
    assert peak == 3
    assert provider.http.gauge.peak_in_flight == 3
    assert provider.http.gauge.peak_waiting >= 17 - 3
    assert provider.http.requests == 20


async def test_429_with_retry_after_pauses_the_whole_provider(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """After a 429 with Retry-After, no request of the provider is sent until the pause ends."""
    clock = FakeClock()
    provider = make_probe(max_concurrency=5, clock=clock)
    limited = asyncio.Event()
    sent: list[tuple[float, str]] = []

    def first_limited(url: Any, **kwargs: Any) -> CallbackResult:
        sent.append((clock(), url.path))
        if not limited.is_set():
            limited.set()
            return CallbackResult(
                status=429,
                body="Too Many Requests",
                content_type="text/plain",
                headers={"Retry-After": "1"},
            )
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/first", callback=first_limited, repeat=True)
    mocked.get(f"{BASE}/other", callback=first_limited, repeat=True)
    first = asyncio.create_task(provider.fetch("/first"))
    await limited.wait()
    limited_at = sent[0][0]
    await asyncio.sleep(0)
    assert provider.http.pause.remaining() > 0.5
    await asyncio.gather(first, *(provider.fetch("/other") for _ in range(4)))
    later = sent[1:]
    assert len(later) == 5
    assert all(at >= limited_at + 0.95 for at, _ in later)
    assert (provider.http.rate_limited, provider.http.retries, provider.http.requests) == (1, 1, 6)


async def test_429_without_retry_after_pauses_with_backoff(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """A 429 without Retry-After still pauses the provider (backoff with jitter), then retries."""
    clock = FakeClock()
    provider = make_probe(backoff=timedelta(milliseconds=100), clock=clock)
    mocked.get(f"{BASE}/x", status=429, body="Too Many Requests", content_type="text/plain")
    mocked.get(f"{BASE}/x", status=200, body="ok")
    started = clock()
    response = await provider.fetch("/x")
    assert response.text == "ok"
    assert clock() - started >= 0.05  # equal jitter: at least half of 100 ms
    assert (provider.http.rate_limited, provider.http.retries) == (1, 1)


async def test_429_every_time_raises_rate_limited_after_retries(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """A 429 on every attempt ends in RateLimitedError once retries are spent."""
    provider = make_probe(retries=2)
    mocked.get(f"{BASE}/x", status=429, body="Too Many Requests", repeat=True)
    with pytest.raises(RateLimitedError) as info:
        await provider.fetch("/x")
    assert (info.value.status, info.value.provider, info.value.symbol) == (429, "probe", "SYM")
    assert (provider.http.requests, provider.http.retries, provider.http.rate_limited) == (3, 2, 3)
    assert provider.http.errors == 1


async def test_long_retry_after_fails_fast_and_parks_the_provider(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """A Retry-After beyond backoff_max raises at once and later calls fail without sending."""
    provider = make_probe(backoff_max=timedelta(seconds=2))
    mocked.get(f"{BASE}/x", status=429, body="slow down", headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitedError) as info:
        await provider.fetch("/x")
    assert info.value.retry_after == 3600
    with pytest.raises(RateLimitedError) as again:
        await provider.fetch("/x")
    assert again.value.retry_after is not None
    assert again.value.retry_after > 3500
    assert provider.http.requests == 1


async def test_rate_limiter_spaces_requests(make_probe: MakeProbe, mocked: aioresponses) -> None:
    """With rate 1 per 50 ms, six requests are sent at least ~50 ms apart (in real time)."""
    provider = make_probe(rate=Rate(count=1, period=0.05), max_concurrency=6)
    sent: list[float] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        sent.append(time.monotonic())
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/x", callback=record, repeat=True)
    await asyncio.gather(*(provider.fetch("/x") for _ in range(6)))
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) == 6
    assert min(gaps) >= 0.04
    assert provider.http.gauge.summary()["wait_p95_ms"] >= 150


async def test_server_too_slow_raises_timeout_after_retries(make_probe: MakeProbe) -> None:
    """A server slower than read_timeout gives ProviderTimeoutError after the retries."""

    async def sleepy(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", sleepy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        provider = make_probe(
            base_url=str(server.make_url("")), read_timeout=timedelta(milliseconds=50), retries=1
        )
        with pytest.raises(ProviderTimeoutError) as info:
            await provider.fetch("/slow")
        assert isinstance(info.value.__cause__, TimeoutError)
        assert (provider.http.requests, provider.http.retries, provider.http.errors) == (2, 1, 1)
    finally:
        await server.close()


async def test_connection_errors_are_retried_then_raised(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """A connection error is retried and, once retries are spent, raised as ProviderError."""
    provider = make_probe(retries=1)
    mocked.get(f"{BASE}/x", exception=aiohttp.ClientConnectionError("refused"), repeat=True)
    with pytest.raises(ProviderError) as info:
        await provider.fetch("/x")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)
    assert provider.http.retries == 1


async def test_5xx_then_200_succeeds_with_a_retry(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """A 503 followed by a 200 returns the 200 and counts one retry."""
    provider = make_probe()
    mocked.get(f"{BASE}/x", status=503, body="unavailable")
    mocked.get(f"{BASE}/x", status=200, body="ok")
    assert (await provider.fetch("/x")).text == "ok"
    assert (provider.http.requests, provider.http.retries, provider.http.errors) == (2, 1, 0)


async def test_5xx_every_time_raises_server_error_with_redacted_url(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """Persistent 500s raise ServerError (kind server_error) whose message hides the API key."""
    provider = make_probe(retries=1)
    mocked.get(f"{BASE}/x?apikey=SECRET123", status=500, body="boom", repeat=True)
    with pytest.raises(ServerError) as info:
        await provider.fetch("/x", apikey="SECRET123")
    assert (info.value.status, info.value.kind, info.value.group) == (500, "server_error", "server")
    assert provider.http.retries == 1
    assert "SECRET123" not in str(info.value)
    assert "apikey=REDACTED" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthError), (403, AuthError), (404, SymbolNotFoundError)]
)
async def test_client_errors_are_not_retried(
    make_probe: MakeProbe, mocked: aioresponses, status: int, error: type[ProviderError]
) -> None:
    """401/403/404 raise their typed error at once, without retrying."""
    provider = make_probe()
    mocked.get(f"{BASE}/x", status=status, body="no", repeat=True)
    with pytest.raises(error) as info:
        await provider.fetch("/x")
    assert (info.value.status, provider.http.requests, provider.http.retries) == (status, 1, 0)


async def test_cancelled_waiter_releases_nothing_it_does_not_hold(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """Cancelling callers mid-wait leaves the semaphore whole for later calls."""
    provider = make_probe(max_concurrency=1)
    release = asyncio.Event()

    async def held(url: Any, **kwargs: Any) -> CallbackResult:
        await release.wait()
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/x", callback=held, repeat=True)
    tasks = [asyncio.create_task(provider.fetch("/x")) for _ in range(3)]
    await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    release.set()
    assert (await provider.fetch("/x")).text == "ok"
    assert provider.http.gauge.in_flight == 0
    assert provider.http.gauge.waiting == 0


async def test_metrics_and_repr_show_limits_and_counters(
    make_probe: MakeProbe, mocked: aioresponses
) -> None:
    """metrics() has the provider.metrics fields and repr names the limits and counters."""
    provider = make_probe(max_concurrency=2, rate=Rate(count=60, period=60))
    mocked.get(f"{BASE}/x", status=200, body="ok")
    await provider.fetch("/x")
    metrics = provider.metrics()
    assert set(metrics) == {
        "provider",
        "requests",
        "retries",
        "rate_limited_429s",
        "errors",
        "peak_in_flight",
        "peak_waiting",
        "p50_ms",
        "p95_ms",
        "wait_p50_ms",
        "wait_p95_ms",
        "circuit",
        "quota_used_today",
        "quota_refused",
    }
    assert (metrics["provider"], metrics["requests"], metrics["peak_in_flight"]) == ("probe", 1, 1)
    text = repr(provider)
    for part in ("ProbeProvider probe", "max_concurrency=2", "rate=60/minute", "requests=1"):
        assert part in text


class VerdictProbe(ProbeProvider):
    """A probe whose body names its own verdict, as a provider's classifier would decide it."""

    def classify(self, response: Response) -> Classified:
        """``AUTH``, ``QUOTA``, ``GATED``, ``EMPTY``, ``SLOW``, ``FLAKY`` bodies; else by status."""
        verdicts = {
            "AUTH": Classified(Verdict.AUTH, "the key was refused"),
            "QUOTA": Classified(Verdict.QUOTA_EXHAUSTED, "daily limit reached"),
            "GATED": Classified(Verdict.PLAN_GATED, "premium endpoint"),
            "EMPTY": Classified(Verdict.EMPTY, "no data in range"),
            "SLOW": Classified(Verdict.RATE_LIMITED, "slow down", retry_after=0.05),
            "FLAKY": Classified(Verdict.TRANSIENT, "outage page"),
        }
        return verdicts.get(response.text, classify_status(response))

    def auth_headers(self) -> Mapping[str, str]:
        """The key in a header, as most APIs allow."""
        return {"X-Key": self.api_key()}


@pytest.fixture
async def make_verdict_probe() -> AsyncIterator[Callable[..., VerdictProbe]]:
    """Build VerdictProbes with fast backoff and a key; close their sessions afterwards."""
    async with provider_factory(
        VerdictProbe, "probe", retries=2, base_url=BASE, api_key="k-123", rate=None
    ) as factory:
        yield factory


MakeVerdictProbe = Callable[..., VerdictProbe]


async def test_auth_verdict_disables_the_provider_with_one_error_log(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """A refused key: AuthError, one provider.auth_failed log, later calls fail without sending."""
    provider = make_verdict_probe()
    mocked.get(f"{BASE}/x", status=200, body="AUTH", repeat=True)
    with capture_logs() as logs:
        for _ in range(5):
            with pytest.raises(AuthError) as info:
                await provider.fetch("/x")
            assert info.value.kind == "auth"
    assert provider.http.requests == 1
    assert [e["event"] for e in logs].count("provider.auth_failed") == 1
    assert "disabled for this run" in str(info.value)
    provider.new_run()
    with pytest.raises(AuthError):
        await provider.fetch("/x")
    assert provider.http.requests == 2


async def test_quota_verdict_parks_the_provider_until_the_reset(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """A 'daily limit' body parks the provider: quota_exhausted now and later without sending."""
    provider = make_verdict_probe()
    mocked.get(f"{BASE}/x", status=200, body="QUOTA", repeat=True)
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(QuotaExhaustedError):
                await provider.fetch("/x")
    assert provider.http.requests == 1
    assert [e["event"] for e in logs].count("provider.parked") == 1
    assert provider.http.refusals.parked_until is not None
    assert provider.http.refusals.parked_until > datetime.now(UTC)
    assert provider.http.refusals.parked_until.time() == datetime.min.time()  # midnight UTC


async def test_daily_quota_sends_exactly_the_quota_then_parks(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """daily_quota=3: three requests go, every later call fails quota_exhausted unsent."""
    provider = make_verdict_probe(daily_quota=3)
    mocked.get(f"{BASE}/x", status=200, body="ok", repeat=True)
    results = await asyncio.gather(
        *(provider.fetch("/x") for _ in range(8)), return_exceptions=True
    )
    assert sum(isinstance(r, Response) for r in results) == 3
    assert sum(isinstance(r, QuotaExhaustedError) for r in results) == 5
    assert provider.http.requests == 3
    assert provider.ledger.refused >= 1


@pytest.mark.parametrize(
    ("body", "error", "kind"),
    [("GATED", PlanGatedError, "plan_gated"), ("nope", SymbolNotFoundError, "not_found")],
)
async def test_final_verdicts_raise_without_retry(
    make_verdict_probe: MakeVerdictProbe,
    mocked: aioresponses,
    body: str,
    error: type[ProviderError],
    kind: str,
) -> None:
    """Plan-gated and not-found end the call at once with their kind; the reason is kept."""
    provider = make_verdict_probe()
    status = 404 if body == "nope" else 200
    mocked.get(f"{BASE}/x", status=status, body=body, repeat=True)
    with pytest.raises(error) as info:
        await provider.fetch("/x")
    assert info.value.kind == kind
    assert (provider.http.requests, provider.http.retries) == (1, 0)


async def test_empty_verdict_returns_the_response_marked_empty(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """An EMPTY verdict is a valid answer: the response comes back with verdict EMPTY."""
    mocked.get(f"{BASE}/x", status=200, body="EMPTY")
    response = await make_verdict_probe().fetch("/x")
    assert response.verdict is Verdict.EMPTY


async def test_rate_limited_body_pauses_and_retries(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """A 200 'slow down' body with retry_after pauses the provider and the retry succeeds."""
    clock = FakeClock()
    provider = make_verdict_probe(clock=clock)
    mocked.get(f"{BASE}/x", status=200, body="SLOW")
    mocked.get(f"{BASE}/x", status=200, body="ok")
    started = clock()
    assert (await provider.fetch("/x")).text == "ok"
    assert clock() - started >= 0.045
    assert (provider.http.rate_limited, provider.http.retries) == (1, 1)


async def test_breaker_opens_fails_fast_then_probes_and_closes(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """Transient failures open the circuit (no more requests), a probe after cool-down closes it."""
    clock = FakeClock()
    provider = make_verdict_probe(
        retries=0, circuit_threshold=3, circuit_cooldown="200ms", clock=clock
    )
    mocked.get(f"{BASE}/x", status=200, body="FLAKY", repeat=3)
    mocked.get(f"{BASE}/x", status=200, body="ok", repeat=True)
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(BadResponseError):
                await provider.fetch("/x")
        for _ in range(5):
            with pytest.raises(ProviderUnavailableError) as info:
                await provider.fetch("/x")
        assert info.value.kind == "unavailable"
        assert provider.http.requests == 3
        clock.now += 0.25
        assert (await provider.fetch("/x")).text == "ok"
    events = [e["event"] for e in logs]
    assert events.count("provider.circuit_open") == 1
    assert events.index("provider.circuit_half_open") < events.index("provider.circuit_closed")
    assert provider.http.requests == 4
    assert provider.metrics()["circuit"] == "closed"


async def test_half_open_sends_one_probe_while_others_fail_fast(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """After the cool-down, of five concurrent callers only one reaches the API."""
    clock = FakeClock()
    provider = make_verdict_probe(
        retries=0, circuit_threshold=1, circuit_cooldown="50ms", max_concurrency=5, clock=clock
    )

    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.05)
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/x", status=503, body="down")
    mocked.get(f"{BASE}/x", callback=slow, repeat=True)
    with pytest.raises(ServerError):
        await provider.fetch("/x")
    clock.now += 0.06
    results = await asyncio.gather(
        *(provider.fetch("/x") for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, Response) for r in results) == 1
    assert sum(isinstance(r, ProviderUnavailableError) for r in results) == 4
    assert provider.http.requests == 2


async def test_key_travels_in_headers_and_params_are_added(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """auth_headers() go with every request; the key is not in the URL."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        return CallbackResult(status=200, body="ok")

    mocked.get(f"{BASE}/x?a=1", callback=record)
    await make_verdict_probe().fetch("/x", a="1")
    url, kwargs = seen[0]
    assert kwargs["headers"]["X-Key"] == "k-123"
    assert "k-123" not in str(url)


async def test_connection_error_kind_is_connection(
    make_verdict_probe: MakeVerdictProbe, mocked: aioresponses
) -> None:
    """A refused connection ends, after retries, as ProviderConnectionError kind 'connection'."""
    mocked.get(f"{BASE}/x", exception=aiohttp.ClientConnectionError("refused"), repeat=True)
    with pytest.raises(ProviderConnectionError) as info:
        await make_verdict_probe(retries=1).fetch("/x")
    assert info.value.kind == "connection"


class CrashingProbe(VerdictProbe):
    """A VerdictProbe whose classifier has a bug: it raises on a ``CRASH`` body."""

    def classify(self, response: Response) -> Classified:
        """Raise on ``CRASH``; else as VerdictProbe."""
        if response.text == "CRASH":
            raise RuntimeError("classifier bug")
        return super().classify(response)


async def test_classifier_crash_during_a_probe_frees_the_probe(mocked: aioresponses) -> None:
    """A classifier that raises on the half-open probe leaves the next caller free to probe."""
    clock = FakeClock()
    async with provider_factory(
        CrashingProbe, "probe", retries=0, base_url=BASE, api_key="k-123", rate=None
    ) as factory:
        provider = factory(circuit_threshold=1, circuit_cooldown="10ms", clock=clock)
        mocked.get(f"{BASE}/x", status=503, body="down")
        mocked.get(f"{BASE}/x", status=200, body="CRASH")
        mocked.get(f"{BASE}/x", status=200, body="ok")
        with pytest.raises(ServerError):
            await provider.fetch("/x")
        clock.now += 0.02
        with pytest.raises(RuntimeError):
            await provider.fetch("/x")
        assert (await provider.fetch("/x")).text == "ok"
        assert provider.http.breaker.state == "closed"
