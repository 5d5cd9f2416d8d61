"""How a request is sent politely (the base of ``BaseProvider``, which adds the contract).

Refusals (key refused, parked, circuit open), the pause after a 429, the semaphore, the
quota ledger, the rate windows, the timeout, the verdict, backoff with jitter, the breaker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
import yarl

from finappd.config import ProviderSettings
from finappd.errors import (
    AuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
)
from finappd.metrics import Gauge
from finappd.providers._http import Response, redact_url
from finappd.providers._outcome import FINAL_ERRORS, Retrying, classify_status
from finappd.providers.breaker import CircuitBreaker
from finappd.providers.limits import Limits, RateWindows, effective_limits
from finappd.providers.quota import QuotaLedger, UsageBackend
from finappd.providers.verdicts import Classified, Verdict

__all__ = ["Politeness", "Retrying", "classify_status"]

log = structlog.get_logger(__name__)

_E = TypeVar("_E", bound=ProviderError)


class Politeness:
    """One API's politeness state and the retry loop; subclasses classify its answers."""

    #: Used when the config gives no ``base_url``.
    default_base_url: ClassVar[str] = ""
    #: Documented free-tier limits (PROVIDERS.md); the config overrides each one.
    default_limits: ClassVar[Limits] = Limits()
    #: Sent with every request of this provider, over the session's defaults.
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        session: aiohttp.ClientSession,
        *,
        usage: UsageBackend | None = None,
        ledger: QuotaLedger | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.session = session
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self.limits = effective_limits(self.default_limits, settings)
        self.semaphore = asyncio.Semaphore(self.limits.max_concurrency)
        self.windows = RateWindows(self.limits.windows())
        limits = self.limits
        if ledger is None:
            ledger = QuotaLedger(name, daily=None, monthly=None, backend=usage)
        # A ledger handed over (the runtime's, one per provider name) keeps its counts.
        ledger.retune(daily=limits.daily(), monthly=limits.monthly(), tz=limits.quota_tz)
        self.ledger = ledger
        cooldown = settings.circuit_cooldown.total_seconds()
        self.breaker = CircuitBreaker(name, threshold=settings.circuit_threshold, cooldown=cooldown)
        connect = settings.connect_timeout.total_seconds()
        read = settings.read_timeout.total_seconds()
        self.timeout = aiohttp.ClientTimeout(
            total=connect + read, sock_connect=connect, sock_read=read
        )
        self.gauge = Gauge(name)
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.errors = 0
        self._paused_until = 0.0  # time.monotonic() before which nothing is sent
        self.parked_until: datetime | None = None  # UTC; quota spent until then
        self.disabled: str | None = None  # why the key was refused this run

    def classify(self, response: Response) -> Classified:
        """What ``response`` means; providers refine this with what their bodies say."""
        return classify_status(response)

    def auth_headers(self) -> Mapping[str, str]:
        """Headers carrying the key, e.g. ``{"Authorization": f"Token {key}"}``; default none."""
        return {}

    def scrub(self, text: str) -> str:
        """``text`` with the configured key (raw or percent-encoded) replaced by REDACTED."""
        key = self.settings.api_key
        secret = key.get_secret_value() if key is not None else ""
        if len(secret) < 4:  # too short to search for without mangling ordinary text
            return text
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "REDACTED")
        return text

    def paused_for(self) -> float:
        """Seconds until the provider-wide pause after a 429 ends (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold back every request of this provider for ``seconds`` (never shortens a pause)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def new_run(self) -> None:
        """Forget a refused key: each run gives the provider one fresh try."""
        self.disabled = None

    def park(self, until: datetime, reason: str) -> None:
        """Send nothing more until ``until`` (UTC): the quota is spent."""
        if self.parked_until is None or until > self.parked_until:
            self.parked_until = until
            log.warning(
                "provider.parked", provider=self.name, until=until.isoformat(), reason=reason
            )

    def disable(self, reason: str) -> None:
        """Send nothing more this run: the key was refused (logged once)."""
        if self.disabled is None:
            self.disabled = reason
            log.error("provider.auth_failed", provider=self.name, reason=reason)

    def _fail(self, error: _E) -> _E:
        """Count ``error`` as a failed call and return it for raising."""
        self.errors += 1
        return error

    def _judge(self, response: Response, classified: Classified, symbol: str | None) -> Response:
        """Act on a verdict: return the response (OK/EMPTY), or raise, disable or park."""
        verdict = classified.verdict
        if verdict in (Verdict.OK, Verdict.EMPTY):
            return dataclasses.replace(response, verdict=verdict)
        reason = classified.reason or f"HTTP {response.status}"
        message = f"{self.name}: {reason} (HTTP {response.status} from {response.url})"
        if verdict in (Verdict.RATE_LIMITED, Verdict.TRANSIENT):
            raise Retrying.from_verdict(self.name, symbol, response, classified, message)
        if verdict is Verdict.AUTH:
            self.disable(message)
            raise self._fail(
                AuthError(message, provider=self.name, symbol=symbol, status=response.status)
            )
        if verdict is Verdict.QUOTA_EXHAUSTED:
            which = "monthly" if "month" in reason.lower() else "daily"
            until = self.ledger.resets_at(which)
            if classified.retry_after is not None:
                until = self.ledger.clock() + timedelta(seconds=classified.retry_after)
            self.park(until, reason)
            raise self._fail(
                QuotaExhaustedError(
                    message, provider=self.name, symbol=symbol, status=response.status
                )
            )
        kind = FINAL_ERRORS[verdict]
        raise self._fail(kind(message, provider=self.name, symbol=symbol, status=response.status))

    async def _retrying(self, target: yarl.URL, symbol: str | None) -> Response:
        """Attempt ``target`` until a verdict ends it or the retries are spent."""
        attempt = 0
        while True:
            try:
                return await self._attempt(target, symbol)
            except Retrying as failure:
                delay = self._backoff(attempt)
                if failure.rate_limited:
                    self.rate_limited += 1
                    # Equal jitter: a rate-limit pause must not collapse to nothing.
                    pause = failure.retry_after
                    if pause is None:
                        pause = delay / 2 + self._backoff_cap(attempt) / 2
                    self.pause(pause)
                    delay = 0.0  # the next attempt sleeps out the pause in _wait_turn
                    log.warning(
                        "provider.rate_limited",
                        provider=self.name,
                        symbol=symbol,
                        retry_after=failure.retry_after,
                        pause_s=round(pause, 3),
                        attempt=attempt,
                    )
                    if pause > self.settings.backoff_max.total_seconds():
                        raise self._fail(failure.error) from failure.__cause__
                if attempt >= self.settings.retries:
                    raise self._fail(failure.error) from failure.__cause__
                attempt += 1
                self.retries += 1
                log.info(
                    "provider.retry",
                    provider=self.name,
                    symbol=symbol,
                    attempt=attempt,
                    of=self.settings.retries,
                    delay_s=round(delay, 3),
                    reason=str(failure.error),
                )
                await asyncio.sleep(delay)

    def _backoff_cap(self, attempt: int) -> float:
        """The exponential backoff ceiling for ``attempt`` (0-based), capped at backoff_max."""
        base = self.settings.backoff.total_seconds()
        return min(self.settings.backoff_max.total_seconds(), base * float(2 ** min(attempt, 30)))

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for ``attempt`` (0-based)."""
        return self._backoff_cap(attempt) * random.random()

    def _refuse(self, symbol: str | None) -> None:
        """Fail fast, sending nothing, while disabled, parked or the breaker is open."""
        if self.disabled is not None:
            message = f"{self.name}: disabled for this run after its key was refused"
            raise self._fail(AuthError(message, provider=self.name, symbol=symbol))
        if self.parked_until is not None:
            if self.ledger.clock() < self.parked_until:
                raise self._fail(
                    QuotaExhaustedError(
                        f"{self.name}: parked until {self.parked_until.isoformat()} (quota spent)",
                        provider=self.name,
                        symbol=symbol,
                    )
                )
            self.parked_until = None
            log.info("provider.unparked", provider=self.name)
        if self.breaker.refuses():
            raise self._fail(self._unavailable(symbol))

    def _unavailable(self, symbol: str | None) -> ProviderUnavailableError:
        """The fail-fast error of an open circuit (or of a half-open one already probing)."""
        breaker = self.breaker
        return ProviderUnavailableError(
            f"{self.name}: circuit {breaker.state} after {breaker.failures} consecutive "
            f"failures; next probe in {breaker.retry_in():.0f}s",
            provider=self.name,
            symbol=symbol,
        )

    async def _wait_turn(self, symbol: str | None) -> None:
        """Sleep out a provider-wide pause; one longer than ``backoff_max`` fails fast."""
        while (remaining := self.paused_for()) > 0:
            if remaining > self.settings.backoff_max.total_seconds():
                raise self._fail(
                    RateLimitedError(
                        f"{self.name}: paused for {remaining:.0f}s after a 429",
                        provider=self.name,
                        symbol=symbol,
                        retry_after=remaining,
                    )
                )
            await asyncio.sleep(remaining)

    async def _admit(self, symbol: str | None) -> None:
        """Wait for pause, semaphore, quota and rate windows; on return the semaphore is held.

        The quota ledger's one read per quota day is awaited before the semaphore; under
        it the budget is checked and counted synchronously (its write goes behind), so a
        slot never waits on SQLite.
        """
        self._refuse(symbol)
        await self._wait_turn(symbol)
        while True:
            await self.ledger.refresh()
            await self.semaphore.acquire()
            try:
                self._refuse(symbol)  # things may have changed while this caller waited
                try:
                    counted = self.ledger.take_now(symbol)
                except QuotaExhaustedError as exc:
                    which = self.ledger.spent() or "daily"
                    self.park(self.ledger.resets_at(which), str(exc))
                    raise self._fail(exc) from None
                if counted:
                    while True:
                        await self.windows.acquire()
                        if self.paused_for() <= 0:
                            return
                        # A 429 arrived while this caller waited: sleep it out, then queue
                        # again for the windows so the callers released by the pause do
                        # not burst.
                        await self._wait_turn(symbol)
            except BaseException:
                self.semaphore.release()
                raise
            # The quota day turned while this caller waited: read it outside the semaphore.
            self.semaphore.release()

    async def _attempt(self, target: yarl.URL, symbol: str | None) -> Response:
        """One polite attempt: admission, then send, read and classify."""
        shown = self.scrub(redact_url(target))
        with self.gauge.wait():
            await self._admit(symbol)
        try:
            if not self.breaker.acquire():  # it opened, or a probe is out, while we waited
                raise self._fail(self._unavailable(symbol))
            try:
                response = await self._send(target, shown, symbol)
            except Retrying as failure:
                self.breaker.failure(str(failure.error))
                raise
            except BaseException:
                self.breaker.release()
                raise
        finally:
            self.semaphore.release()
        try:
            classified = self.classify(response)
        except BaseException:
            self.breaker.release()  # a classifier bug must not leave a probe claimed forever
            raise
        if classified.verdict is Verdict.TRANSIENT:
            self.breaker.failure(classified.reason or f"HTTP {response.status}")
        else:
            self.breaker.success()
        return self._judge(response, classified, symbol)

    async def _send(self, target: yarl.URL, shown: str, symbol: str | None) -> Response:
        """Send the request and read the whole body; transport failures are retryable."""
        headers: dict[str, Any] = {**self.headers, **self.auth_headers()}
        try:
            with self.gauge.active():
                self.requests += 1
                async with self.session.get(target, headers=headers, timeout=self.timeout) as resp:
                    body = await resp.read()
                    return Response(
                        status=resp.status,
                        url=shown,
                        content_type=resp.content_type,
                        retry_after=resp.headers.get("Retry-After"),
                        # An API may echo the request (key included) in its body:
                        # scrubbed here, no parser or message can ever repeat it.
                        text=self.scrub(body.decode(resp.charset or "utf-8", errors="replace")),
                    )
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            error: ProviderError = ProviderTimeoutError(
                f"{self.name}: no answer within {self.timeout.total:g}s from {shown}",
                provider=self.name,
                symbol=symbol,
            )
            raise Retrying(error) from exc
        except aiohttp.ClientError as exc:
            error = ProviderConnectionError(
                f"{self.name}: connection failed to {shown}: {type(exc).__name__}",
                provider=self.name,
                symbol=symbol,
            )
            if isinstance(exc, aiohttp.ClientResponseError | aiohttp.InvalidURL):
                # Their text quotes the full URL, query (and key) included: not chained.
                raise Retrying(error) from None
            raise Retrying(error) from exc
