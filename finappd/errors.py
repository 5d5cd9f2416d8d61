"""The one exception tree of finappd.

::

    FinappdError
    ├── ConfigError            bad or missing configuration (exit 78)
    ├── ProviderError          a market-data API could not serve a request
    │   ├── RateLimitedError          the API said "slow down" (retry_after seconds, if given)
    │   ├── QuotaExhaustedError       the daily/monthly budget is spent (provider parked)
    │   ├── AuthError                 the key was refused (provider disabled for the run)
    │   ├── SymbolNotFoundError       the API does not know the symbol
    │   ├── PlanGatedError            the data needs a paid plan
    │   ├── BadResponseError          the body could not be understood
    │   ├── ProviderTimeoutError      no answer within the configured timeout
    │   ├── ProviderConnectionError   the connection failed (DNS, refused, reset)
    │   └── ProviderUnavailableError  not tried: circuit breaker open
    └── StoreError             the SQLite file could not be written or read

Context rides as attributes (``provider``, ``symbol``, ``status``), never only in
the message, and every raise inside finappd chains its cause (``raise ... from exc``).
Messages never contain secrets: URLs are redacted before they are put in one.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadResponseError",
    "ConfigError",
    "FinappdError",
    "PlanGatedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "StoreError",
    "SymbolNotFoundError",
]


class FinappdError(Exception):
    """Base of every error finappd raises on purpose."""


class ConfigError(FinappdError):
    """The configuration is invalid; ``key`` names where."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class ProviderError(FinappdError):
    """A provider could not serve a request."""

    #: Short machine-readable kind stored in ``fetch_errors.kind``.
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        symbol: str | None = None,
        status: int | None = None,
    ) -> None:
        self.provider = provider
        self.symbol = symbol
        self.status = status
        super().__init__(message)


class RateLimitedError(ProviderError):
    """The API answered "too many requests"."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        symbol: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, symbol=symbol, status=status)
        self.retry_after = retry_after


class QuotaExhaustedError(ProviderError):
    """The provider's request budget for the period is spent."""

    kind = "quota_exhausted"


class AuthError(ProviderError):
    """The API refused our credentials."""

    kind = "auth"


class SymbolNotFoundError(ProviderError):
    """The API does not know this symbol."""

    kind = "not_found"


class BadResponseError(ProviderError):
    """The response could not be parsed or classified."""

    kind = "bad_response"


class ProviderTimeoutError(ProviderError):
    """The request did not complete within its timeout."""

    kind = "timeout"


class PlanGatedError(ProviderError):
    """The endpoint, symbol or range needs a higher plan than the key has."""

    kind = "plan_gated"


class ProviderConnectionError(ProviderError):
    """The connection to the API failed before an answer arrived."""

    kind = "connection"


class ProviderUnavailableError(ProviderError):
    """The provider was not tried: its circuit breaker is open after repeated failures."""

    kind = "unavailable"


class StoreError(FinappdError):
    """The SQLite store failed."""
