"""Tests for finappd.errors: the groups callers catch and the kind → group table from them."""

from __future__ import annotations

import pytest

from finappd.errors import (
    KIND_GROUPS,
    REFUSAL_STATES,
    AuthError,
    BadResponseError,
    PlanGatedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
    RefusedError,
    ServerError,
    SymbolNotFoundError,
    TransportError,
    kinds_in,
)


@pytest.mark.parametrize(
    ("error", "group", "kind"),
    [
        (QuotaExhaustedError, RefusedError, "quota_exhausted"),
        (AuthError, RefusedError, "auth"),
        (ProviderUnavailableError, RefusedError, "unavailable"),
        (ProviderTimeoutError, TransportError, "timeout"),
        (ProviderConnectionError, TransportError, "connection"),
        (ServerError, ServerError, "server_error"),
        (RateLimitedError, ProviderError, "rate_limited"),
        (SymbolNotFoundError, ProviderError, "not_found"),
        (PlanGatedError, ProviderError, "plan_gated"),
        (BadResponseError, ProviderError, "bad_response"),
    ],
)
def test_each_kind_is_caught_by_its_group(
    error: type[ProviderError], group: type[ProviderError], kind: str
) -> None:
    """``except <group>`` catches each error of the group, and the table agrees with the tree."""
    with pytest.raises(group):
        raise error("boom", provider="p")
    assert error.kind == kind
    assert KIND_GROUPS[kind] == error.group


def test_the_tables_cover_every_kind_once() -> None:
    """Every provider kind and run kind has one group; refusals map to the status states."""
    assert KIND_GROUPS == {
        "quota_exhausted": "refused",
        "auth": "refused",
        "unavailable": "refused",
        "timeout": "transport",
        "connection": "transport",
        "server_error": "server",
        "rate_limited": "answer",
        "not_found": "answer",
        "bad_response": "answer",
        "plan_gated": "answer",
        "cancelled": "run",
        "deadline": "run",
        "store": "run",
    }
    assert kinds_in("refused") == ("quota_exhausted", "auth", "unavailable")
    assert REFUSAL_STATES == {
        "quota_exhausted": "parked",
        "auth": "key_refused",
        "unavailable": "circuit_open",
    }
