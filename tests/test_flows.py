"""End-to-end flow runs against the simulator: fan-out → polite provider → SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd.config import Settings
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.store import Store
from tests.conftest import MakeServer, one_flow

TICKERS = [f"T{i:03d}" for i in range(60)] + ["^GSPC", "BRK-B", "7203.T", "VOD.L"]


def make_settings(tmp_path: Path, url: str, **flow: Any) -> Settings:
    """Settings for one daily_bars flow against the simulator at ``url``."""
    provider = {"base_url": url, "max_concurrency": 3, "rate": "10000/minute"}
    provider.update(flow.pop("provider", {}))
    provider |= {"backoff": "1ms", "backoff_max": "10ms"}
    tickers = flow.pop("tickers", TICKERS)
    flow = {"num_workers": flow.pop("num_workers", 20), **flow}
    return one_flow(tmp_path / "f.sqlite3", "yahoo", provider, tickers, **flow)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the flow's DB through a separate read-only connection, as a reader would."""
    with sqlite3.connect(f"file:{tmp_path / 'f.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


async def test_run_lands_every_ticker_within_provider_limit(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """All tickers land, the run is ok, and the simulator never saw more than max_concurrency."""
    sim = await sim_server(SimConfig(latency=0.01))
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url)) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        provider = runtime.providers["yahoo"]
    assert summary.status == "ok"
    assert (summary.tickers_ok, summary.tickers_failed) == (len(TICKERS), 0)
    assert sim.stats.peak_in_flight <= 3
    assert provider.http.gauge.peak_in_flight <= 3
    assert sim.stats.requests == len(TICKERS)
    symbols = {row[0] for row in query(tmp_path, "SELECT DISTINCT symbol FROM bars")}
    assert symbols == set(TICKERS)
    [(status, ok, rows)] = query(tmp_path, "SELECT status, tickers_ok, rows_written FROM runs")
    assert (status, ok, rows) == ("ok", len(TICKERS), summary.rows_written)


async def test_workflow_runs_num_workers_tickers_at_once(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """The fetch step keeps num_workers tickers in flight while the provider admits only its cap."""
    sim = await sim_server(SimConfig(latency=0.02))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, num_workers=8, provider={"max_concurrency": 2})
    with capture_logs() as logs:
        async with Runtime(settings) as runtime:
            await runtime.run_flow("eod", "manual")
    [fetch] = [e for e in logs if e["event"] == "step.metrics" and e["step"] == "fetch"]
    [provider] = [e for e in logs if e["event"] == "provider.metrics"]
    assert fetch["peak_in_flight"] == 8
    assert provider["peak_in_flight"] == 2
    assert provider["peak_waiting"] >= 6
    assert sim.stats.peak_in_flight == 2


async def test_unknown_symbol_makes_run_partial_and_others_land(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A not-found ticker is recorded with its reason; every other ticker still lands."""
    sim = await sim_server(SimConfig(unknown_symbols=frozenset({"NOPE"})))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, tickers=["AAPL", "NOPE", "MSFT"])
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    assert (summary.status, summary.tickers_ok, summary.tickers_failed) == ("partial", 2, 1)
    assert summary.failures == {"not_found": 1}
    [(symbol, kind, message)] = query(tmp_path, "SELECT symbol, kind, message FROM fetch_errors")
    assert (symbol, kind) == ("NOPE", "not_found")
    assert "NOPE" in message
    assert {r[0] for r in query(tmp_path, "SELECT DISTINCT symbol FROM bars")} == {"AAPL", "MSFT"}


async def test_all_tickers_failing_makes_run_failed(tmp_path: Path, sim_server: MakeServer) -> None:
    """A run where no ticker lands ends failed, never ok."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, tickers=["ZZZA", "ZZZB"])
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    assert summary.status == "failed"
    assert query(tmp_path, "SELECT status, tickers_failed FROM runs") == [("failed", 2)]


async def test_second_run_is_idempotent(tmp_path: Path, sim_server: MakeServer) -> None:
    """Running the same flow twice upserts the same rows instead of duplicating them."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url)
    async with Runtime(settings) as runtime:
        await runtime.run_flow("eod", "manual")
        first = query(tmp_path, "SELECT symbol, ts, close FROM bars ORDER BY symbol, ts")
        await runtime.run_flow("eod", "manual")
    second = query(tmp_path, "SELECT symbol, ts, close FROM bars ORDER BY symbol, ts")
    assert first == second
    assert len(first) > len(TICKERS)


async def test_deadline_records_every_unfinished_ticker(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A run past its deadline records each unfinished ticker as 'deadline' and is not ok."""
    sim = await sim_server(SimConfig(latency=0.3))
    assert sim.url is not None
    settings = make_settings(
        tmp_path, sim.url, deadline="1s", num_workers=2, provider={"max_concurrency": 2}
    )
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    assert summary.status in {"partial", "failed"}
    assert summary.tickers_ok + summary.tickers_failed == len(TICKERS)
    assert summary.failures.get("deadline", 0) > 0
    [(total,)] = query(tmp_path, "SELECT count(*) FROM fetch_errors WHERE kind = 'deadline'")
    assert total == summary.failures["deadline"]


async def test_cancelled_run_is_marked_and_keeps_finished_tickers(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Cancelling a run mid-way marks it cancelled and keeps the tickers already written."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url, num_workers=2, provider={"max_concurrency": 2})
    async with Runtime(settings) as runtime:
        task = asyncio.create_task(runtime.run_flow("eod", "manual"))
        while sim.stats.served < 6:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [(status, ok, failed)] = query(tmp_path, "SELECT status, tickers_ok, tickers_failed FROM runs")
    assert status == "cancelled"
    assert ok >= 4
    assert ok + failed == len(TICKERS)
    [(landed,)] = query(tmp_path, "SELECT count(DISTINCT symbol) FROM bars")
    assert landed == ok


async def test_crash_left_running_run_is_marked_interrupted(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Opening the runtime marks a run that a crash left 'running' as 'interrupted'."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url)
    with Store(settings.store.resolved_path()).open() as store:
        store.start_run("eod", "schedule", 10, datetime.now(UTC))
    async with Runtime(settings):
        pass
    assert query(tmp_path, "SELECT status FROM runs") == [("interrupted",)]
