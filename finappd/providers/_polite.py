"""The polite client a provider owns: ``await self.http.get(url, params=..., symbol=...)``.

It composes one piece per concept, each shared by every flow using the provider:

- :class:`~finappd.providers._refusals.Refusals`: key refused, parked, circuit open;
- :class:`~finappd.providers._admission.Admission`: the pause after a 429, the
  semaphore, the quota ledger, the rate windows;
- :class:`~finappd.providers._retry.RetryPolicy`: attempts, backoff with jitter;
- :class:`~finappd.providers._transport.Transport`: the request, its timeout, the
  key scrubbed from the body and the URL;
- :class:`~finappd.providers.breaker.CircuitBreaker`: each request inside its ``guard()``;

and the verdict of each answer (:func:`~finappd.providers._outcome.judge`), from the
provider's ``classify``. Time is injected (``clock``, ``sleep``) into the pause, the
retries, the windows and the breaker alike.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
import yarl

from finappd.config import ProviderSettings
from finappd.errors import ProviderError
from finappd.metrics import Gauge
from finappd.providers._admission import Admission, Pause, Sleep
from finappd.providers._http import Response
from finappd.providers._outcome import Retrying, judge
from finappd.providers._refusals import Refusals
from finappd.providers._retry import RetryPolicy
from finappd.providers._transport import Transport
from finappd.providers.breaker import CircuitBreaker
from finappd.providers.limits import Limits, RateWindows
from finappd.providers.quota import QuotaLedger
from finappd.providers.verdicts import Classified, Verdict

__all__ = ["PoliteClient", "with_query"]

log = structlog.get_logger(__name__)

_E = TypeVar("_E", bound=ProviderError)

#: Characters a query key or value keeps as they are (as yarl's query quoting does).
_QUERY_SAFE = "/:@,!$'()*"
#: A key or value made only of those and unreserved characters needs no quoting.
_PLAIN = re.compile(r"[A-Za-z0-9_.~/:@,!$'()*-]*")


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote(text, safe=_QUERY_SAFE)


@lru_cache(maxsize=4096)
def _query_string(pairs: tuple[tuple[str, str], ...]) -> str:
    """``k=v&k=v`` of ``pairs``, percent-encoded; cached, as a run's tickers share a query."""
    return "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in pairs)


def with_query(url: str, query: Mapping[str, str]) -> str:
    """``url`` (already encoded) with ``query`` appended, each key and value percent-encoded.

    Built as one string, not through yarl's ``update_query``, which costs a request as
    much as a body decode; a ``url`` that already has a query is merged by yarl.
    """
    if not query:
        return url
    if "?" in url:
        return str(yarl.URL(url, encoded=True).update_query(query))
    return f"{url}?{_query_string(tuple(query.items()))}"


class PoliteClient:
    """One provider's politeness: refusals, admission, retries, transport, breaker, counters."""

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        session: aiohttp.ClientSession,
        *,
        limits: Limits,
        ledger: QuotaLedger,
        classify: Callable[[Response], Classified],
        headers: Mapping[str, str],
        auth_headers: Callable[[], Mapping[str, str]],
        auth_params: Callable[[], Mapping[str, str]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.limits = limits
        #: Requests in flight to this provider across every daemon sharing the store.
        self.max_concurrency_total = settings.max_concurrency_total
        # A ledger handed over (the runtime's, one per provider name) keeps its counts.
        ledger.retune(daily=limits.daily(), monthly=limits.monthly(), tz=limits.quota_tz)
        self.ledger = ledger
        self.policy = RetryPolicy.from_settings(settings)
        self.breaker = CircuitBreaker(
            name,
            threshold=settings.circuit_threshold,
            cooldown=settings.circuit_cooldown.total_seconds(),
            clock=clock,
        )
        self.refusals = Refusals(name, ledger, self.breaker)
        self.pause = Pause(name, longest=self.policy.backoff_max, clock=clock, sleep=sleep)
        self.windows = RateWindows(limits.windows(), clock=clock, sleep=sleep)
        self.admission = Admission(
            self.refusals,
            self.pause,
            ledger,
            self.windows,
            max_concurrency=limits.max_concurrency,
        )
        connect = settings.connect_timeout.total_seconds()
        read = settings.read_timeout.total_seconds()
        self.transport = Transport(
            name,
            session,
            timeout=aiohttp.ClientTimeout(
                total=connect + read, sock_connect=connect, sock_read=read
            ),
            headers=headers,
            auth_headers=auth_headers,
            secret=settings.api_key,
        )
        self.classify = classify
        self._auth_params = auth_params
        self._sleep = sleep
        self.gauge = Gauge(name)
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.errors = 0

    def __repr__(self) -> str:
        return f"<PoliteClient {self.describe()}>"

    def describe(self) -> str:
        """Limits, counters and state in one line (the provider's ``repr`` shows it)."""
        limits = self.limits
        rates = ",".join(str(r) for r in limits.windows()) or "unlimited"
        refusals = self.refusals
        return (
            f"max_concurrency={limits.max_concurrency} rate={rates} requests={self.requests} "
            f"retries={self.retries} rate_limited={self.rate_limited} errors={self.errors} "
            f"in_flight={self.gauge.in_flight} waiting={self.gauge.waiting} "
            f"paused_for={self.pause.remaining():.1f}s circuit={self.breaker.state} "
            f"quota={self.ledger.day_used}/{limits.daily()} "
            f"parked={refusals.parked_until is not None} "
            f"disabled={refusals.disabled is not None}"
        )

    def metrics(self) -> dict[str, Any]:
        """The figures for the ``provider.metrics`` log line."""
        summary = self.gauge.summary()
        return {
            "provider": self.name,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited_429s": self.rate_limited,
            "errors": self.errors,
            "peak_in_flight": summary["peak_in_flight"],
            "peak_waiting": summary["peak_waiting"],
            "p50_ms": summary["p50_ms"],
            "p95_ms": summary["p95_ms"],
            "wait_p50_ms": summary["wait_p50_ms"],
            "wait_p95_ms": summary["wait_p95_ms"],
            "circuit": str(self.breaker.state),
            "quota_used_today": self.ledger.day_used,
            "quota_refused": self.ledger.refused,
        }

    def fail(self, error: _E) -> _E:
        """Count ``error`` (raised by the provider after a call) as a failed call; return it."""
        self.errors += 1
        return error

    async def get(
        self, url: str, *, params: Mapping[str, str] | None = None, symbol: str | None = None
    ) -> Response:
        """GET ``url`` politely; return an OK/EMPTY response (``.verdict``) or raise typed."""
        auth = self._auth_params()
        text = with_query(url, {**params, **auth} if params and auth else params or auth)
        try:
            return await self._retrying(
                yarl.URL(text, encoded=True), self.transport.shown(text), symbol
            )
        except ProviderError:
            self.errors += 1
            raise

    async def _retrying(self, target: yarl.URL, shown: str, symbol: str | None) -> Response:
        """Attempt ``target`` until a verdict ends it or the retries are spent."""
        policy = self.policy
        attempt = 0
        while True:
            try:
                return await self._attempt(target, shown, symbol)
            except Retrying as failure:
                delay = policy.delay(attempt)
                if failure.rate_limited:
                    self.rate_limited += 1
                    pause = policy.pause_after_429(attempt, failure.retry_after)
                    self.pause.extend(pause)
                    delay = 0.0  # the next attempt sleeps out the pause in admission
                    log.warning(
                        "provider.rate_limited",
                        provider=self.name,
                        symbol=symbol,
                        retry_after=failure.retry_after,
                        pause_s=round(pause, 3),
                        attempt=attempt,
                    )
                    if pause > policy.backoff_max:
                        raise failure.error from failure.__cause__
                if policy.gives_up(attempt):
                    raise failure.error from failure.__cause__
                attempt += 1
                self.retries += 1
                log.info(
                    "provider.retry",
                    provider=self.name,
                    symbol=symbol,
                    attempt=attempt,
                    of=policy.retries,
                    delay_s=round(delay, 3),
                    reason=str(failure.error),
                )
                await self._sleep(delay)

    async def _attempt(self, target: yarl.URL, shown: str, symbol: str | None) -> Response:
        """One polite attempt: admission, then send, read and classify under the breaker."""
        with self.gauge.wait():
            await self.admission.acquire(symbol)
        try:
            # The breaker may have opened, or a probe gone out, while this caller waited.
            with self.breaker.guard(symbol) as claim:
                try:
                    with self.gauge.active():
                        self.requests += 1
                        response = await self.transport.send(target, shown, symbol)
                except Retrying as failure:
                    claim.failure(str(failure.error))
                    raise
                classified = self.classify(response)
                if classified.verdict is Verdict.TRANSIENT:
                    claim.failure(classified.reason or f"HTTP {response.status}")
                else:
                    claim.success()
        finally:
            self.admission.release()
        return judge(self.name, response, classified, symbol, self.refusals)
