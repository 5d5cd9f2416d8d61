"""What a provider is, as data: one frozen :class:`ProviderSpec` per provider module.

A provider module declares ``SPEC = ProviderSpec(...)`` and its class points at it
(``spec = SPEC``); everything the rest of the daemon knows about a provider kind comes
from there: the config check (kind exists, capability, key), the politeness defaults
(base URL, limits, headers), the backfill chunk size, the ``bars.adjustment`` basis and
the query parameters :func:`~finappd.providers._http.redact_url` blanks. How tickers map
to the API's symbols stays code (``map_symbol``): every API's rules differ in shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from finappd.providers.limits import Limits
from finappd.providers.verdicts import Capability

__all__ = ["Adjustment", "ProviderSpec", "secret_params"]

#: ``bars.adjustment`` of a provider's OHLC: as traded, or split-adjusted (store/tables.py).
Adjustment = Literal["none", "split"]

#: Grown by each spec made; a frozenset, so every URL redaction finds its pattern cached.
_SECRET_PARAMS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    """One market-data API's facts (PROVIDERS.md): what it serves and how to use it politely."""

    #: The provider kind (``providers.<name>.kind``, defaulting to the name).
    kind: str
    #: What this API can serve; flows only call the matching methods.
    capabilities: frozenset[Capability]
    #: Used when the config gives no ``base_url``.
    base_url: str
    #: Documented free-tier limits; the config overrides each one.
    limits: Limits = field(default_factory=Limits)
    #: Whether ``api_key`` must be configured.
    requires_key: bool = False
    #: Longest ``start..end`` span, in days, one history request may ask for (a backfill
    #: splits its range into chunks that fit); None: any span in one request.
    max_range_days: int | None = None
    #: The basis of its daily closes (``bars.adjustment``); None: unknown or no bars.
    adjustment: Adjustment | None = None
    #: Query parameters that can carry a secret (key, token, crumb), redacted from URLs.
    secret_params: frozenset[str] = frozenset()
    #: Sent with every request of this provider, over the session's defaults.
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        global _SECRET_PARAMS
        _SECRET_PARAMS = _SECRET_PARAMS | {p.lower() for p in self.secret_params}


def secret_params() -> frozenset[str]:
    """Every query parameter a provider spec declares secret (lowercase)."""
    return _SECRET_PARAMS
