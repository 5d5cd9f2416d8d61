"""End-to-end tests of FrankfurterProvider against the simulated API (finappd.sim.frankfurter)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from finappd.config import Settings
from finappd.errors import BadResponseError, SymbolNotFoundError
from finappd.providers.frankfurter import FrankfurterProvider
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.sim.ecb import ecb_rate
from tests.conftest import MakeServer
from tests.test_provider_contract import Contract, fx

#: What this provider must do like every other (tests/test_provider_contract.py).
CONTRACT = Contract(
    "frankfurter", fx, ("USD", "GBP", "JPY", "CHF", "SEK"), "ZZZ", ("NOK", "NOK"), key=None
)

EASTER_2024 = (date(2024, 3, 25), date(2024, 4, 5))  # Good Friday 29th, Easter Monday 1st


def make_settings(tmp_path: Path, base_url: str, **frankfurter: Any) -> Settings:
    """Settings with one Frankfurter provider (FX flows are a later issue: no flow here)."""
    provider: dict[str, Any] = {"base_url": base_url, "backoff": "1ms", "backoff_max": "5s"}
    provider |= frankfurter
    return Settings.model_validate(
        {"store": {"path": str(tmp_path / "f.sqlite3")}, "providers": {"frankfurter": provider}}
    )


def rounded(value: float) -> float:
    """``value`` at five significant digits, as the simulated ECB publishes it."""
    return float(f"{value:.5g}")


async def test_rates_per_publication_day(tmp_path: Path, sim_server: MakeServer) -> None:
    """Rates come per TARGET working day only (no weekend, Good Friday or Easter Monday)."""
    sim = await sim_server()
    settings = make_settings(tmp_path, f"{sim.url}/frankfurter/v1")
    async with Runtime(settings) as runtime:
        provider = runtime.providers["frankfurter"]
        assert isinstance(provider, FrankfurterProvider)
        rates = await provider.fx_rates("EUR", ["USD", "JPY"], *EASTER_2024)
    days = sorted({r.day for r in rates})
    assert [d.day for d in days] == [25, 26, 27, 28, 2, 3, 4, 5]
    usd = [r for r in rates if r.quote == "USD"]
    assert [r.rate for r in usd] == [rounded(ecb_rate("USD", r.day)) for r in usd]
    assert sim.stats.requests == 1


async def test_snapped_start_and_cross_rates(tmp_path: Path, sim_server: MakeServer) -> None:
    """A range starting on a Sunday drops the snapped-back Friday; USD base is a cross rate."""
    sim = await sim_server()
    async with Runtime(make_settings(tmp_path, f"{sim.url}/frankfurter/v1")) as runtime:
        provider = runtime.providers["frankfurter"]
        rates = await provider.fx_rates("USD", ["EUR", "GBP"], date(2024, 3, 3), date(2024, 3, 5))
        weekend = await provider.fx_rates("EUR", ["USD"], date(2024, 3, 9), date(2024, 3, 10))
    assert {r.day for r in rates} == {date(2024, 3, 4), date(2024, 3, 5)}
    eur = next(r for r in rates if r.quote == "EUR" and r.day == date(2024, 3, 4))
    assert eur.rate == pytest.approx(1 / ecb_rate("USD", date(2024, 3, 4)), rel=1e-4)
    assert weekend == []


async def test_old_host_redirects_are_followed(tmp_path: Path, sim_server: MakeServer) -> None:
    """The old host's 301 to /v1 is followed transparently."""
    sim = await sim_server()
    async with Runtime(make_settings(tmp_path, f"{sim.url}/frankfurter-app")) as runtime:
        rates = await runtime.providers["frankfurter"].fx_rates(
            "EUR", ["GBP"], date(2024, 1, 1), date(2024, 1, 3)
        )
    assert [r.day for r in rates] == [date(2024, 1, 2), date(2024, 1, 3)]
    assert sim.stats.by_status == {301: 1, 200: 1}


async def test_errors_in_frankfurter_shapes(tmp_path: Path, sim_server: MakeServer) -> None:
    """Unknown currency is not found; a range before the first publication too; 422 is bad."""
    sim = await sim_server(SimConfig(unknown_symbols=frozenset({"CHF"})))
    async with Runtime(make_settings(tmp_path, f"{sim.url}/frankfurter/v1")) as runtime:
        provider = runtime.providers["frankfurter"]
        with pytest.raises(SymbolNotFoundError, match="not found"):
            await provider.fx_rates("EUR", ["XXX"], date(2024, 1, 1), date(2024, 1, 3))
        with pytest.raises(SymbolNotFoundError):
            await provider.fx_rates("EUR", ["CHF"], date(2024, 1, 1), date(2024, 1, 3))
        with pytest.raises(SymbolNotFoundError):
            await provider.fx_rates("EUR", ["USD"], date(1990, 1, 1), date(1990, 1, 5))
        # A comma inside one quote slips past the provider's own base == quote filter.
        with pytest.raises(BadResponseError, match="bad currency pair"):
            await provider.fx_rates("USD", ["USD,EUR"], date(2024, 1, 1), date(2024, 1, 3))
    assert sim.stats.by_status == {404: 3, 422: 1}
