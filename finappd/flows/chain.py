"""A flow's provider chain: ``provider`` then each ``fallback``, asked in turn for one ticker.

A ticker the first provider cannot serve (not found, plan-gated, quota spent, parked,
circuit open, key refused, retries spent: any :class:`~finappd.errors.ProviderError`)
is asked of the next. When every one fails, the ticker's result names the primary's
failure (the ticker's problem) and the others follow in its message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from finappd.errors import ProviderError
from finappd.flows.run import TickerResult
from finappd.providers import BaseProvider

__all__ = ["Chain"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Chain:
    """The providers of one flow, primary first; never empty."""

    def __init__(self, providers: Sequence[BaseProvider]) -> None:
        if not providers:
            raise ValueError("a flow's fetch needs at least one provider")
        self.providers = tuple(providers)

    def __repr__(self) -> str:
        return f"<Chain {' -> '.join(p.name for p in self.providers)}>"

    @property
    def primary(self) -> BaseProvider:
        """The flow's own provider (named in results that need no request)."""
        return self.providers[0]

    async def ask(
        self, symbol: str, call: Callable[[BaseProvider], Awaitable[T]]
    ) -> tuple[BaseProvider, T] | TickerResult:
        """The first provider's answer to ``call`` that is not a ProviderError, and who gave
        it; else the failed result of ``symbol``."""
        failures: list[ProviderError] = []
        for provider in self.providers:
            try:
                answer = await call(provider)
            except ProviderError as exc:
                failures.append(exc)
                continue
            if failures:
                log.info(
                    "ticker.fallback",
                    symbol=symbol,
                    provider=provider.name,
                    after=[f"{f.provider}: {f.kind}" for f in failures],
                )
            return provider, answer
        first = failures[0]
        message = "; then ".join(str(f) for f in failures)
        return TickerResult(symbol, first.provider, error_kind=first.kind, error=message)
