"""The one exception tree of finappd.

::

    FinappdError
    ├── ConfigError            bad or missing configuration (exit 78)
    ├── ProviderError          a market-data API could not serve a request
    │   ├── RefusedError              group "refused": nothing was sent (or never will be)
    │   │   ├── QuotaExhaustedError       the daily/monthly budget is spent (provider parked)
    │   │   ├── AuthError                 the key was refused (provider disabled for the run)
    │   │   └── ProviderUnavailableError  not tried: circuit breaker open
    │   ├── TransportError            group "transport": no answer arrived
    │   │   ├── ProviderTimeoutError      no answer within the configured timeout
    │   │   └── ProviderConnectionError   the connection failed (DNS, refused, reset)
    │   ├── ServerError               group "server": HTTP 5xx on every attempt
    │   ├── RateLimitedError          group "answer": the API said "slow down" (retry_after)
    │   ├── SymbolNotFoundError       group "answer": the API does not know the symbol
    │   ├── PlanGatedError            group "answer": the data needs a paid plan
    │   └── BadResponseError          group "answer": the body could not be understood
    └── StoreError             the SQLite file could not be written or read

Callers catch a group by its class (``except TransportError``); code that only has a
``fetch_errors.kind`` string (SQL, status) looks its group up in :data:`KIND_GROUPS`,
derived from this tree, never from a list of its own.

Context rides as attributes (``provider``, ``symbol``, ``status``), never only in
the message, and every raise inside finappd chains its cause (``raise ... from exc``).
Messages never contain secrets: URLs are redacted before they are put in one.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

__all__ = [
    "KIND_GROUPS",
    "REFUSAL_STATES",
    "RUN_KINDS",
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
    "RefusedError",
    "ServerError",
    "StoreError",
    "SymbolNotFoundError",
    "TransportError",
    "kinds_in",
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
    kind: ClassVar[str] = "error"
    #: The group callers catch: ``refused``, ``transport``, ``server`` or ``answer``.
    group: ClassVar[str] = "answer"

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


class RefusedError(ProviderError):
    """The provider turned the call away: quota spent, key refused or circuit open."""

    group = "refused"
    #: What ``finappd status`` shows for a provider whose tickers were refused so.
    state: ClassVar[str] = "refused"


class TransportError(ProviderError):
    """No answer arrived: the request timed out or the connection failed."""

    group = "transport"


class ServerError(ProviderError):
    """The API answered HTTP 5xx (an outage) on every attempt."""

    kind = "server_error"
    group = "server"


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


class QuotaExhaustedError(RefusedError):
    """The provider's request budget for the period is spent."""

    kind = "quota_exhausted"
    state = "parked"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        symbol: str | None = None,
        status: int | None = None,
        period: str = "daily",
    ) -> None:
        super().__init__(message, provider=provider, symbol=symbol, status=status)
        #: Which quota is spent, ``daily`` or ``monthly``: the provider is parked until it resets.
        self.period = period


class AuthError(RefusedError):
    """The API refused our credentials."""

    kind = "auth"
    state = "key_refused"


class SymbolNotFoundError(ProviderError):
    """The API does not know this symbol."""

    kind = "not_found"


class BadResponseError(ProviderError):
    """The response could not be parsed or classified."""

    kind = "bad_response"


class ProviderTimeoutError(TransportError):
    """The request did not complete within its timeout."""

    kind = "timeout"


class PlanGatedError(ProviderError):
    """The endpoint, symbol or range needs a higher plan than the key has."""

    kind = "plan_gated"


class ProviderConnectionError(TransportError):
    """The connection to the API failed before an answer arrived."""

    kind = "connection"


class ProviderUnavailableError(RefusedError):
    """The provider was not tried: its circuit breaker is open after repeated failures."""

    kind = "unavailable"
    state = "circuit_open"


class StoreError(FinappdError):
    """The SQLite store failed."""


_E = TypeVar("_E", bound=ProviderError)


def _kinds(root: type[_E]) -> list[type[_E]]:
    """``root``'s subclasses that are a ``fetch_errors`` kind (the tree's leaves)."""
    found: list[type[_E]] = []
    for cls in root.__subclasses__():
        found.extend(_kinds(cls) if cls.__subclasses__() else [cls])
    return found


#: ``fetch_errors.kind`` a run records for tickers it stopped (cancelled, past its
#: deadline, or whose write failed): the run's failure, not the ticker's.
RUN_KINDS = ("cancelled", "deadline", "store")

#: ``fetch_errors.kind`` → its group: each provider error kind from the class tree,
#: and the run's own kinds as ``run``.
KIND_GROUPS: dict[str, str] = {
    **{cls.kind: cls.group for cls in _kinds(ProviderError)},
    **dict.fromkeys(RUN_KINDS, "run"),
}

#: A refusal's ``fetch_errors.kind`` → the provider state ``finappd status`` shows.
REFUSAL_STATES: dict[str, str] = {cls.kind: cls.state for cls in _kinds(RefusedError)}


def kinds_in(group: str) -> tuple[str, ...]:
    """The ``fetch_errors`` kinds of ``group`` (e.g. ``refused``), in tree order."""
    return tuple(kind for kind, of in KIND_GROUPS.items() if of == group)
