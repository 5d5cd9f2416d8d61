"""End to end against the simulator: quotas across restarts, fallback, limits under 429 storms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finappd.config import Settings
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from tests.conftest import MakeServer, one_flow
from tests.test_provider_support import query as read_only
from tests.test_provider_support import run_eod


def settings_for(
    tmp_path: Path, providers: dict[str, dict[str, Any]], tickers: list[str], **flow: Any
) -> Settings:
    """One daily_bars flow named 'eod' over ``providers`` (the first is the primary)."""
    (name, options), *others = (
        (name, {"kind": "yahoo", "backoff": "1ms", "backoff_max": "5s", **options})
        for name, options in providers.items()
    )
    flow = {"fallback": [n for n, _ in others], "num_workers": 8, **flow}
    return one_flow(tmp_path / "p.sqlite3", name, options, tickers, dict(others), **flow)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the flow's DB through a separate read-only connection."""
    return read_only(tmp_path, sql, db="p.sqlite3")


async def test_daily_quota_25_of_40_then_a_restart_sends_nothing(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Quota 25/day, 40 tickers: 25 requests, 15 quota_exhausted; a restart sends none."""
    sim = await sim_server()
    assert sim.url is not None
    tickers = [f"Q{i:02d}" for i in range(40)]
    provider = {"base_url": sim.url, "rates": [], "max_concurrency": 4, "daily_quota": 25}
    settings = settings_for(tmp_path, {"yahoo": provider}, tickers)
    summary = await run_eod(settings)
    assert sim.stats.requests == 25
    assert (summary.tickers_ok, summary.failures) == (25, {"quota_exhausted": 15})
    assert query(tmp_path, "SELECT kind, count(*) FROM fetch_errors GROUP BY kind") == [
        ("quota_exhausted", 15)
    ]
    [(provider_name, requests)] = query(tmp_path, "SELECT provider, requests FROM provider_usage")
    assert (provider_name, requests) == ("yahoo", 25)
    again = await run_eod(settings)
    assert sim.stats.requests == 25
    # A ticker whose final bar for the newest session is stored needs no request at all.
    assert again.failures == {"quota_exhausted": 40 - again.tickers_ok}
    assert query(tmp_path, "SELECT requests FROM provider_usage") == [(25,)]


async def test_fallback_serves_what_the_primary_does_not_know(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A ticker unknown to the primary is fetched from the fallback, and its rows say so."""
    primary = await sim_server(SimConfig(unknown_symbols=frozenset({"ONLYB"})))
    secondary = await sim_server()
    assert primary.url is not None
    assert secondary.url is not None
    settings = settings_for(
        tmp_path,
        {
            "main": {"base_url": primary.url, "rates": []},
            "backup": {"base_url": secondary.url, "rates": []},
        },
        ["AAPL", "ONLYB"],
    )
    summary = await run_eod(settings)
    assert (summary.status, summary.tickers_ok) == ("ok", 2)
    assert query(tmp_path, "SELECT DISTINCT symbol, provider FROM bars ORDER BY symbol") == [
        ("AAPL", "main"),
        ("ONLYB", "backup"),
    ]
    assert secondary.stats.requests == 1


async def test_fallback_takes_over_when_the_primary_quota_is_spent(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Once the primary is parked, the rest of the tickers come from the fallback."""
    primary = await sim_server()
    secondary = await sim_server()
    assert primary.url is not None
    assert secondary.url is not None
    settings = settings_for(
        tmp_path,
        {
            "main": {"base_url": primary.url, "rates": [], "daily_quota": 3, "max_concurrency": 1},
            "backup": {"base_url": secondary.url, "rates": []},
        },
        [f"F{i}" for i in range(10)],
    )
    summary = await run_eod(settings)
    assert summary.status == "ok"
    assert (primary.stats.requests, secondary.stats.requests) == (3, 7)
    by_provider = dict(
        query(tmp_path, "SELECT provider, count(DISTINCT symbol) FROM bars GROUP BY 1")
    )
    assert by_provider == {"main": 3, "backup": 7}


async def test_every_provider_failing_records_the_primary_kind_and_all_reasons(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A ticker no provider can serve is recorded once, with each provider's reason."""
    primary = await sim_server()
    secondary = await sim_server()
    assert primary.url is not None
    assert secondary.url is not None
    settings = settings_for(
        tmp_path,
        {"main": {"base_url": primary.url}, "backup": {"base_url": secondary.url}},
        ["ZZZGONE"],
    )
    summary = await run_eod(settings)
    assert summary.failures == {"not_found": 1}
    [(provider, kind, message)] = query(
        tmp_path, "SELECT provider, kind, message FROM fetch_errors"
    )
    assert (provider, kind) == ("main", "not_found")
    assert message.startswith("main: ")
    assert "; then backup: " in message


async def test_limits_at_the_servers_never_see_a_429(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Client limits at the server's (the window with 0.1 s of room for arrival jitter on a
    loaded machine): no 429, and no second at the server holds more than the limit."""
    sim = await sim_server(SimConfig(latency=0.01, max_concurrency=2, rate_limit=(12, 1.0)))
    assert sim.url is not None
    rates = [{"count": 12, "period": 1.1}]
    provider = {"base_url": sim.url, "rates": rates, "max_concurrency": 2}
    settings = settings_for(tmp_path, {"yahoo": provider}, [f"W{i:02d}" for i in range(24)])
    summary = await run_eod(settings)
    assert summary.status == "ok"
    assert sim.stats.rejected_429 == 0
    assert sim.stats.max_arrivals["1s"] <= 12
    assert sim.stats.peak_in_flight <= 2


async def test_limits_hold_under_a_429_storm(tmp_path: Path, sim_server: MakeServer) -> None:
    """A server stricter than the client 429s a lot; the client's own limits still hold."""
    sim = await sim_server(
        SimConfig(latency=0.02, max_concurrency=2, rate_limit=(6, 1.0), retry_after=1)
    )
    assert sim.url is not None
    provider = {"base_url": sim.url, "rates": ["10/second"], "max_concurrency": 3, "retries": 10}
    settings = settings_for(tmp_path, {"yahoo": provider}, [f"S{i:02d}" for i in range(8)])
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        gauge = runtime.providers["yahoo"].http.gauge
    assert summary.status == "ok"
    assert sim.stats.rejected_429 > 0
    assert sim.stats.max_arrivals["1s"] <= 10
    assert gauge.peak_in_flight <= 3
    assert sim.stats.peak_in_flight <= 2


async def test_unbudgeted_usage_is_written_when_the_run_ends(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Without a quota, usage is counted in memory and in SQLite by the end of the run."""
    sim = await sim_server()
    assert sim.url is not None
    settings = settings_for(tmp_path, {"yahoo": {"base_url": sim.url, "rates": []}}, ["A", "B"])
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        assert summary.tickers_ok == 2
        assert query(tmp_path, "SELECT requests FROM provider_usage") == [(sim.stats.requests,)]


async def test_a_rebuilt_provider_spends_the_same_budget(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A config reload's new instance counts in the same ledger, under the new budget."""
    sim = await sim_server()
    assert sim.url is not None
    provider = {"base_url": sim.url, "rates": [], "daily_quota": 10}
    settings = settings_for(tmp_path, {"yahoo": provider}, ["A", "B"])
    async with Runtime(settings) as runtime:
        await runtime.run_flow("eod", "manual")
        before = runtime.providers["yahoo"]
        reloaded = settings.providers["yahoo"].model_copy(update={"daily_quota": 3})
        runtime.rebuild_provider("yahoo", reloaded)
        after = runtime.providers["yahoo"]
        assert after is not before
        assert after.ledger is before.ledger
        assert (after.ledger.daily, after.ledger.day_used) == (3, 2)
        await after.ledger.take()
        assert after.ledger.spent() == "daily"
    assert query(tmp_path, "SELECT requests FROM provider_usage") == [(3,)]
