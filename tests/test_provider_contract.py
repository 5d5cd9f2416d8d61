"""What every provider must do against the simulator: one contract, run for each kind.

Each provider's simulator tests (``tests/test_<kind>_sim.py``) declare ``CONTRACT``, a
:class:`Contract`: how to ask the provider for one thing and which symbols it knows
and does not. Where the simulator serves the API and how it takes keys come from the
simulator's own declaration (:func:`finappd.sim.routes.discover`). This module names
no provider: a new one is covered once its sim tests declare a contract, and
:func:`test_every_provider_has_a_contract` fails until they do. Providers are built
through the public registry and driven through their public methods only.

The windows of these tests are a fraction of a second, so the contract costs a few
seconds for all providers together, sleeping only where a provider really waits.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finappd.errors import AuthError, ProviderError, QuotaExhaustedError, SymbolNotFoundError
from finappd.providers import PROVIDER_KINDS
from finappd.providers.base import BaseProvider
from finappd.sim import SimConfig, SimServer
from finappd.sim.faults import FaultPlan
from finappd.sim.routes import REFUSED_KEY, SimApi, discover
from tests.conftest import MakeServer
from tests.test_provider_support import provider_factory

__all__ = ["Contract", "bars", "fx"]

Fetch = Callable[[BaseProvider, str], Awaitable[list[Any]]]
Applies = Callable[["Contract", SimApi], bool]
MakeProvider = Callable[..., BaseProvider]

#: A FX range with four ECB publication days (Tuesday to Friday).
FX_DAYS = (date(2024, 1, 2), date(2024, 1, 5))


async def bars(provider: BaseProvider, symbol: str) -> list[Any]:
    """``symbol``'s daily bars of the ten days up to three days ago (within every free plan)."""
    end = datetime.now(UTC).date() - timedelta(days=3)
    return await provider.daily_bars(symbol, end - timedelta(days=10), end)


async def fx(provider: BaseProvider, symbol: str) -> list[Any]:
    """The euro rates of currency ``symbol`` over :data:`FX_DAYS`."""
    return await provider.fx_rates("EUR", [symbol], *FX_DAYS)


@dataclass(frozen=True, slots=True)
class Contract:
    """One provider kind's facts for the contract, declared by its sim test module."""

    kind: str
    fetch: Fetch
    """One request's worth of data about one symbol (:func:`bars` or :func:`fx`)."""
    symbols: tuple[str, ...]
    """Symbols the simulator serves this provider (cycled when a test needs more)."""
    unknown: str
    """A symbol unknown by the simulator's prefix rule (``ZZZ…`` as this provider spells it)."""
    listed: tuple[str, str]
    """A symbol as asked, and the name that makes it unknown in ``SimConfig.unknown_symbols``."""
    key: str | None = "test-key"
    """A key the simulator serves (None: the provider is used without one)."""
    rides_out_short_windows: bool = True
    """Whether the API's answer past a sub-second window pauses and retries (rather than
    giving up for the run, as an hourly or minute allocation does)."""

    def symbol(self, i: int) -> str:
        """The ``i``-th known symbol, cycling."""
        return self.symbols[i % len(self.symbols)]

    async def fetch_many(self, provider: BaseProvider, count: int) -> list[Any]:
        """``count`` concurrent fetches of known symbols; failures are returned, not raised."""
        calls = (self.fetch(provider, self.symbol(i)) for i in range(count))
        return list(await asyncio.gather(*calls, return_exceptions=True))


def contracts() -> dict[str, Contract]:
    """The ``CONTRACT`` of every ``tests/test_*_sim.py`` module that declares one, by kind."""
    found: dict[str, Contract] = {}
    for path in sorted(Path(__file__).parent.glob("test_*_sim.py")):
        contract = getattr(importlib.import_module(f"tests.{path.stem}"), "CONTRACT", None)
        if isinstance(contract, Contract):
            found[contract.kind] = contract
    return found


APIS = {api.name: api for api in discover()}


def applies(when: Applies) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated contract test only for the kinds ``when`` holds for."""

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        test.applies = when  # type: ignore[attr-defined]
        return test

    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test taking ``contract`` over the declared contracts it applies to."""
    if "contract" not in metafunc.fixturenames:
        return
    when: Applies = getattr(metafunc.function, "applies", lambda contract, api: True)
    cases = [c for c in contracts().values() if c.kind in APIS and when(c, APIS[c.kind])]
    metafunc.parametrize("contract", cases, ids=[c.kind for c in cases])


def takes_key(contract: Contract, api: SimApi) -> bool:
    """The simulated API checks keys."""
    return api.keys is not None


def takes_no_key(contract: Contract, api: SimApi) -> bool:
    """The simulated API has no keys at all."""
    return api.keys is None


def serves_without_key(contract: Contract, api: SimApi) -> bool:
    """The simulated API serves requests that carry no key."""
    return api.keys is None or api.keys.missing is None


def rides_out(contract: Contract, api: SimApi) -> bool:
    """The provider waits out the API's answers past a sub-second window."""
    return contract.rides_out_short_windows


@pytest.fixture
async def make(contract: Contract) -> AsyncIterator[MakeProvider]:
    """Build ``contract.kind`` providers for a simulator (``make(sim, **options)``)."""
    options: dict[str, Any] = {"rates": [], "retries": 2, "backoff_max": "50ms"}
    if contract.key is not None:
        options["api_key"] = contract.key
    cls = PROVIDER_KINDS[contract.kind]
    async with provider_factory(cls, contract.kind, **options) as factory:

        def build(sim: SimServer, **overrides: Any) -> BaseProvider:
            base_url = f"{sim.url}{APIS[contract.kind].base_path}"
            return factory(base_url=base_url, **overrides)

        yield build


def test_every_provider_has_a_contract() -> None:
    """Every registered provider kind has a simulated API and declares its contract."""
    assert set(PROVIDER_KINDS) == set(APIS) == set(contracts())


@applies(takes_key)
async def test_a_refused_key_costs_one_request_and_disables_the_provider(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """The refused key is sent once; every later call fails auth unsent; no error shows it."""
    sim = await sim_server()
    provider = make(sim, api_key=REFUSED_KEY, max_concurrency=1)
    results = await contract.fetch_many(provider, 5)
    assert all(isinstance(r, AuthError) for r in results), results
    assert sim.stats.requests == 1
    with pytest.raises(AuthError):
        await contract.fetch(provider, contract.symbol(5))
    assert sim.stats.requests == 1
    assert all(REFUSED_KEY not in f"{r} {r!r}" for r in results)


@pytest.mark.parametrize("how", ["prefix", "listed"])
async def test_an_unknown_symbol_is_not_found_in_one_request(
    contract: Contract, sim_server: MakeServer, make: MakeProvider, how: str
) -> None:
    """An unknown symbol is SymbolNotFoundError after one request; the provider goes on."""
    symbol, listed = contract.listed
    if how == "prefix":
        symbol = contract.unknown
    sim = await sim_server(SimConfig(unknown_symbols=frozenset({listed})))
    provider = make(sim)
    with pytest.raises(SymbolNotFoundError) as info:
        await contract.fetch(provider, symbol)
    assert info.value.kind == "not_found"
    assert sim.stats.requests == 1
    assert await contract.fetch(provider, contract.symbol(0))


async def test_windows_like_the_servers_never_see_its_rate_limit(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """A client holding the API's own window (plus jitter room) never meets its limit.

    The room (0.3 s) covers requests that leave on time but reach the server late, bunched
    with the next window's, as on a machine busy with other work."""
    sim = await sim_server(SimConfig(latency=0.005, provider_limits={contract.kind: (4, 0.1)}))
    provider = make(sim, rates=[{"count": 4, "period": 0.4}], max_concurrency=3)
    results = await contract.fetch_many(provider, 8)
    assert all(isinstance(r, list) and r for r in results), results
    assert (sim.stats.requests, sim.stats.api_refused) == (8, {})
    assert sim.stats.peak_in_flight <= 3


async def test_in_flight_never_exceeds_max_concurrency(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """Eight concurrent calls with max_concurrency equal to the server's cap: no 429, 2 at most."""
    sim = await sim_server(SimConfig(latency=0.02, max_concurrency=2))
    provider = make(sim, max_concurrency=2)
    results = await contract.fetch_many(provider, 8)
    assert all(isinstance(r, list) and r for r in results), results
    assert (sim.stats.requests, sim.stats.rejected_429, sim.stats.peak_in_flight) == (8, 0, 2)


async def test_a_daily_quota_is_never_exceeded(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """A quota of 3: three calls are sent and served, the rest fail quota_exhausted unsent."""
    sim = await sim_server()
    provider = make(sim, daily_quota=3, max_concurrency=1)
    results = await contract.fetch_many(provider, 5)
    assert sum(isinstance(r, list) and bool(r) for r in results) == 3
    assert sum(isinstance(r, QuotaExhaustedError) for r in results) == 2
    assert sim.stats.requests == 3


@applies(rides_out)
async def test_a_rate_limit_storm_is_ridden_out_within_the_concurrency_cap(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """Past the API's window its refusals pause the provider; every call lands, 2 in flight."""
    sim = await sim_server(SimConfig(latency=0.005, provider_limits={contract.kind: (2, 0.1)}))
    provider = make(sim, max_concurrency=2, retries=10, backoff="20ms", backoff_max="2s")
    results = await contract.fetch_many(provider, 6)
    assert all(isinstance(r, list) and r for r in results), results
    assert sim.stats.api_refused[contract.kind] > 0
    assert sim.stats.peak_in_flight <= 2


@applies(takes_no_key)
async def test_a_keyless_provider_ignores_a_key(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """A provider of an API without keys works with any configured key, the refused one too."""
    sim = await sim_server()
    assert await contract.fetch(make(sim, api_key=REFUSED_KEY), contract.symbol(0))
    assert sim.stats.served == 1


@applies(serves_without_key)
async def test_a_provider_of_a_keyless_api_works_without_a_key(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """Where the API serves requests without a key, the provider needs none."""
    sim = await sim_server()
    assert await contract.fetch(make(sim, api_key=None), contract.symbol(0))
    assert sim.stats.served == 1


async def test_injected_faults_reach_the_api(
    contract: Contract, sim_server: MakeServer, make: MakeProvider
) -> None:
    """A plan failing every request reaches this API's routes: each attempt is a 503, and
    the call ends in a provider error, never a crash or a silent empty answer."""
    plan = FaultPlan(rate=1.0, kinds=("http_503",))
    sim = await sim_server(SimConfig(faults=plan))
    provider = make(sim, retries=1, circuit_threshold=100)
    with pytest.raises(ProviderError):
        await contract.fetch(provider, contract.symbol(0))
    assert set(sim.stats.by_status) == {503}
    assert plan.injected == {"http_503": sim.stats.requests}
