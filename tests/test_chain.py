"""The provider chain: the first answer wins, a failure moves on, all failing names the primary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pytest
from structlog.testing import capture_logs

from finappd.errors import PlanGatedError, ProviderError, SymbolNotFoundError
from finappd.flows.chain import Chain
from finappd.flows.run import TickerResult
from finappd.providers import BaseProvider


@dataclass
class Stub:
    """Stands in for a provider: a name, and what it answers (or raises) when asked."""

    name: str
    answer: str | ProviderError
    asked: list[str] = field(default_factory=list)


def chain(*stubs: Stub) -> Chain:
    """A chain over stubs (the chain only reads ``name`` and hands each to the call)."""
    return Chain([cast(BaseProvider, s) for s in stubs])


async def ask(provider: BaseProvider) -> str:
    """The call the chain makes: the stub's answer, or its error raised."""
    stub = cast(Stub, provider)
    stub.asked.append("AAPL")
    if isinstance(stub.answer, ProviderError):
        raise stub.answer
    return stub.answer


async def test_the_primary_answers_and_the_fallback_is_never_asked() -> None:
    """A primary that answers is the one named; the fallback sends nothing."""
    primary, backup = Stub("a", "from a"), Stub("b", "from b")
    served = await chain(primary, backup).ask("AAPL", ask)
    assert not isinstance(served, TickerResult)
    assert (served[0].name, served[1]) == ("a", "from a")
    assert backup.asked == []


async def test_a_failure_moves_on_and_is_logged() -> None:
    """A ProviderError from the primary asks the next one, logged as ticker.fallback."""
    missing = SymbolNotFoundError("a: no AAPL", provider="a", symbol="AAPL")
    with capture_logs() as logs:
        served = await chain(Stub("a", missing), Stub("b", "from b")).ask("AAPL", ask)
    assert not isinstance(served, TickerResult)
    assert (served[0].name, served[1]) == ("b", "from b")
    [line] = [e for e in logs if e["event"] == "ticker.fallback"]
    assert (line["provider"], line["after"]) == ("b", ["a: not_found"])


async def test_all_failing_names_the_primary_and_lists_every_reason() -> None:
    """When every provider fails, the result carries the primary's kind and all messages."""
    first = SymbolNotFoundError("a: no AAPL", provider="a", symbol="AAPL")
    second = PlanGatedError("b: premium", provider="b", symbol="AAPL")
    served = await chain(Stub("a", first), Stub("b", second)).ask("AAPL", ask)
    assert served == TickerResult(
        "AAPL", "a", error_kind="not_found", error="a: no AAPL; then b: premium"
    )


def test_an_empty_chain_is_refused() -> None:
    """A fetch without any provider is a programming error, refused when it is built."""
    with pytest.raises(ValueError, match="at least one provider"):
        Chain([])
