"""The embedding API: `await finappd.run_flow(config, flow)` from an app, and its example."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import finappd
from finappd.config import load_settings
from finappd.errors import ConfigError
from finappd.sim import SimConfig
from tests.conftest import MakeServer

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, url: str, max_concurrency: int = 2) -> Path:
    """A config with one flow, eod, over five tickers against the simulator at ``url``."""
    path = tmp_path / "finappd.toml"
    path.write_text(
        f"""
[store]
path = "{tmp_path / "app.sqlite3"}"
[providers.yahoo]
base_url = "{url}"
max_concurrency = {max_concurrency}
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "^GSPC", "BRK-B", "7203.T"]
every = "1h"
num_workers = 5
""",
        encoding="utf-8",
    )
    return path


def test_public_surface_is_exactly_all() -> None:
    """`finappd` exports exactly the embedding API, each name resolvable."""
    assert sorted(finappd.__all__) == sorted(
        [
            "RunProgress",
            "RunSummary",
            "Runtime",
            "Settings",
            "__version__",
            "load_settings",
            "run_flow",
            "stream_flow",
        ]
    )
    for name in finappd.__all__:
        assert getattr(finappd, name) is not None
    with pytest.raises(AttributeError):
        getattr(finappd, "nonexistent")  # noqa: B009 (the point is the dynamic lookup)


async def test_run_flow_from_a_path_respects_provider_limits(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A flow run from a config path lands every ticker with at most max_concurrency in flight."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    summary = await finappd.run_flow(write_config(tmp_path, sim.url), "eod")
    assert (summary.status, summary.tickers_ok, summary.trigger) == ("ok", 5, "api")
    assert sim.stats.peak_in_flight <= 2
    with sqlite3.connect(tmp_path / "app.sqlite3") as conn:
        rows = conn.execute('SELECT flow, status, "trigger" FROM runs').fetchall()
    assert rows == [("eod", "ok", "api")]


async def test_one_runtime_shares_limits_between_concurrent_runs(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Two runs through one Runtime (from Settings) share the provider's concurrency cap."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    settings = load_settings(write_config(tmp_path, sim.url, max_concurrency=3))
    async with finappd.Runtime(settings) as runtime:
        first, second = await asyncio.gather(
            runtime.run_flow("eod", "app"), runtime.run_flow("eod", "app")
        )
    assert (first.status, second.status) == ("ok", "ok")
    assert first.run_id != second.run_id
    assert sim.stats.peak_in_flight <= 3
    summary = await finappd.run_flow(settings, "eod")
    assert summary.status == "ok"


async def test_cancelling_the_call_records_a_cancelled_run(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Cancelling the awaiting task cancels the run and records it as cancelled."""
    sim = await sim_server(SimConfig(latency=0.5))
    assert sim.url is not None
    task = asyncio.create_task(finappd.run_flow(write_config(tmp_path, sim.url), "eod"))
    async with asyncio.timeout(20):
        while sim.stats.requests == 0:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with sqlite3.connect(tmp_path / "app.sqlite3") as conn:
        rows = conn.execute("SELECT status, tickers_total FROM runs").fetchall()
    assert rows == [("cancelled", 5)]


async def test_unknown_flow_fails_before_anything_opens(tmp_path: Path) -> None:
    """An unknown flow name is a ConfigError and no database is created."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="no flow named 'nope'"):
        await finappd.run_flow(config, "nope")
    assert not (tmp_path / "app.sqlite3").exists()


async def test_example_runs_against_the_simulator(tmp_path: Path, sim_server: MakeServer) -> None:
    """examples/embed.py runs the flow and prints its summary."""
    sim = await sim_server()
    assert sim.url is not None
    config = write_config(tmp_path, sim.url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "embed.py"),
        str(config),
        "eod",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1].startswith("eod: ok, 5/5 tickers")


async def test_stream_flow_yields_progress_and_the_final_event(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """`stream_flow` yields the run's progress, from the engine's stream, then its final event."""
    sim = await sim_server(SimConfig(latency=0.3))
    assert sim.url is not None
    events = [e async for e in finappd.stream_flow(write_config(tmp_path, sim.url, 1), "eod")]
    assert events[0].status == "running"
    assert events[0].tickers_ok == 0
    assert [e.final for e in events].count(True) == 1
    assert events[-1].final
    assert (events[-1].status, events[-1].tickers_ok) == ("ok", 5)
    middle = events[1:-1]  # written by the lanes to the engine stream, throttled
    assert middle
    assert all(not e.final and e.status == "running" for e in middle)
    counts = [e.tickers_ok for e in events]
    assert counts == sorted(counts)


async def test_leaving_stream_flow_early_cancels_the_run(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Breaking out of `stream_flow` after the first event records the run as cancelled."""
    sim = await sim_server(SimConfig(latency=1.0))
    assert sim.url is not None
    stream = finappd.stream_flow(write_config(tmp_path, sim.url, 1), "eod")
    async for event in stream:
        assert event.status == "running"
        break
    await stream.aclose()
    with sqlite3.connect(tmp_path / "app.sqlite3") as conn:
        rows = conn.execute("SELECT status FROM runs").fetchall()
    assert rows == [("cancelled",)]
