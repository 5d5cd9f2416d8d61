"""The provider contract and its politeness machinery, written once.

Every market-data API is reached through :meth:`BaseProvider._get`, which, per
provider instance (shared by every flow in the daemon):

- waits while the provider is paused after a 429 (``Retry-After`` when given,
  else exponential backoff with jitter) — the pause holds back *all* callers;
- holds an :class:`asyncio.Semaphore` (``max_concurrency`` requests in flight);
- takes a token from an :class:`aiolimiter.AsyncLimiter` (``rate``);
- sends with an explicit per-request timeout (connect + read, from config);
- retries timeouts, connection errors, 5xx, 429 and provider-declared transient
  bodies with exponential backoff and full jitter, up to ``retries`` times;
- then raises the typed error from :mod:`finappd.errors`, chained to its cause.

Statuses every API shares are classified here; each provider module classifies
its own bodies (most APIs say "not found" or "slow down" with HTTP 200).
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar, TypeVar

import aiohttp
import structlog
import yarl
from aiolimiter import AsyncLimiter

from finappd.config import ProviderSettings
from finappd.errors import (
    AuthError,
    BadResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    SymbolNotFoundError,
)
from finappd.metrics import Gauge
from finappd.providers._http import Response, make_session, parse_retry_after, redact_url
from finappd.records import Bar

__all__ = ["BaseProvider", "Response", "make_session", "parse_retry_after", "redact_url"]

log = structlog.get_logger(__name__)

_E = TypeVar("_E", bound=ProviderError)


class _Retryable(Exception):
    """One attempt failed in a way worth retrying; ``error`` is raised when retries run out."""

    def __init__(
        self, error: ProviderError, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.rate_limited = rate_limited  # a 429: the whole provider pauses
        self.retry_after = retry_after


class BaseProvider(ABC):
    """A market-data API used politely: concurrency cap, rate limit, pause on 429, retries."""

    #: Used when the config gives no ``base_url``.
    default_base_url: ClassVar[str] = ""
    #: Sent with every request of this provider, over the session's defaults.
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self.settings = settings
        self.session = session
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self.semaphore = asyncio.Semaphore(settings.max_concurrency)
        self.limiter = (
            AsyncLimiter(settings.rate.count, settings.rate.period) if settings.rate else None
        )
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

    def __repr__(self) -> str:
        rate = str(self.settings.rate) if self.settings.rate else "unlimited"
        return (
            f"<{type(self).__name__} {self.name} max_concurrency={self.settings.max_concurrency} "
            f"rate={rate} requests={self.requests} retries={self.retries} "
            f"rate_limited={self.rate_limited} errors={self.errors} "
            f"in_flight={self.gauge.in_flight} waiting={self.gauge.waiting} "
            f"paused_for={self.paused_for():.1f}s>"
        )

    @abstractmethod
    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars for trading dates ``start..end`` inclusive; failures raise typed errors."""

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
        }

    def paused_for(self) -> float:
        """Seconds until the provider-wide pause after a 429 ends (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold back every request of this provider for ``seconds`` (never shortens a pause)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _fail(self, error: _E) -> _E:
        """Count ``error`` as a failed call and return it for raising."""
        self.errors += 1
        return error

    def _transient_reason(self, response: Response) -> str | None:
        """Why a non-error response is a transient failure to retry (e.g. an outage page)."""
        return None

    def _raise_for_status(self, response: Response, symbol: str | None) -> None:
        """Raise the typed error for a 4xx status the provider module did not classify."""
        status = response.status
        if status < 400:
            return
        kind: type[ProviderError] = BadResponseError
        if status in (401, 403):
            kind = AuthError
        elif status == 404:
            kind = SymbolNotFoundError
        message = f"{self.name}: HTTP {status} from {response.url}: {response.text[:200]!r}"
        raise self._fail(kind(message, provider=self.name, symbol=symbol, status=status))

    async def _get(
        self, url: str, *, params: Mapping[str, str] | None = None, symbol: str | None = None
    ) -> Response:
        """GET ``url`` politely; return any response that is not 429/5xx/transient, else raise."""
        target = yarl.URL(url, encoded=True)
        if params:
            target = target.update_query(params)
        attempt = 0
        while True:
            try:
                return await self._attempt(target, symbol)
            except _Retryable as failure:
                delay = self._backoff(attempt)
                if failure.rate_limited:
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

    async def _attempt(self, target: yarl.URL, symbol: str | None) -> Response:
        """One polite attempt: wait for pause, semaphore and limiter, then send and read."""
        shown = redact_url(target)
        with self.gauge.wait():
            await self._wait_turn(symbol)
            await self.semaphore.acquire()
            try:
                if self.limiter is not None:
                    await self.limiter.acquire()
                # A 429 may have arrived while this caller waited for its turn.
                await self._wait_turn(symbol)
            except BaseException:
                self.semaphore.release()
                raise
        try:
            with self.gauge.active():
                self.requests += 1
                async with self.session.get(
                    target, headers=self.headers, timeout=self.timeout
                ) as resp:
                    body = await resp.read()
                    response = Response(
                        status=resp.status,
                        url=shown,
                        content_type=resp.content_type,
                        retry_after=resp.headers.get("Retry-After"),
                        text=body.decode(resp.charset or "utf-8", errors="replace"),
                    )
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            error: ProviderError = ProviderTimeoutError(
                f"{self.name}: no answer within {self.timeout.total:g}s from {shown}",
                provider=self.name,
                symbol=symbol,
            )
            raise _Retryable(error) from exc
        except aiohttp.ClientError as exc:
            error = ProviderError(
                f"{self.name}: connection failed to {shown}: {type(exc).__name__}: {exc}",
                provider=self.name,
                symbol=symbol,
            )
            raise _Retryable(error) from exc
        finally:
            self.semaphore.release()
        return self._check(response, symbol)

    def _check(self, response: Response, symbol: str | None) -> Response:
        """Turn 429, 5xx and transient bodies into retryable failures; pass the rest on."""
        status = response.status
        if status == 429:
            self.rate_limited += 1
            retry_after = parse_retry_after(response.retry_after, datetime.now(UTC))
            error: ProviderError = RateLimitedError(
                f"{self.name}: HTTP 429 from {response.url}: {response.text[:100]!r}",
                provider=self.name,
                symbol=symbol,
                status=429,
                retry_after=retry_after,
            )
            raise _Retryable(error, rate_limited=True, retry_after=retry_after)
        if status >= 500:
            reason = f"HTTP {status}"
        elif (transient := self._transient_reason(response)) is not None:
            reason = transient
        else:
            return response
        error = BadResponseError(
            f"{self.name}: {reason} from {response.url}",
            provider=self.name,
            symbol=symbol,
            status=status,
        )
        raise _Retryable(error)
