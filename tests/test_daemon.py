"""The daemon as a real process: schedules, sd_notify, SIGTERM, and the demo."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from finappd.demo import DEMO_TICKERS
from finappd.sim import SimConfig
from tests import procs
from tests.conftest import MakeServer

StartDaemon = Callable[[Path, dict[str, str]], Awaitable[procs.Child]]

CONFIG = """
grace_period = "{grace}"
[store]
path = "{db}"
[logging]
format = "json"
[providers.yahoo]
base_url = "{url}"
max_concurrency = 2
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
every = "1h"
num_workers = 4
"""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    with procs.notify_socket(tmp_path / "notify.sock") as sock:
        yield sock


def write_config(tmp_path: Path, url: str, tickers: list[str], grace: str = "30s") -> Path:
    """A daemon config over ``tickers`` against the simulator at ``url``."""
    path = tmp_path / "finappd.toml"
    text = CONFIG.format(
        grace=grace,
        db=tmp_path / "d.sqlite3",
        url=url,
        tickers=", ".join(f'"{t}"' for t in tickers),
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def start_daemon() -> AsyncIterator[StartDaemon]:
    """Factory starting ``finappd run`` children; kills any still running after the test."""
    children: list[procs.Child] = []

    async def start(config: Path, env: dict[str, str]) -> procs.Child:
        proc = await procs.spawn_finappd("--config", str(config), "run", env=env)
        children.append(proc)
        return proc

    yield start
    for proc in children:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sigterm_mid_run_cancels_marks_and_exits_zero(
    tmp_path: Path,
    sim_server: MakeServer,
    notify_socket: socket.socket,
    start_daemon: StartDaemon,
) -> None:
    """SIGTERM during a slow run: READY then STOPPING sent, run marked cancelled, exit 0."""
    sim = await sim_server(SimConfig(latency=0.5))
    assert sim.url is not None
    tickers = [f"S{i:02d}" for i in range(40)]
    config = write_config(tmp_path, sim.url, tickers, grace="1s")
    proc = await start_daemon(config, {"NOTIFY_SOCKET": notify_socket.getsockname()})
    async with asyncio.timeout(30):
        while sim.stats.served < 2:
            await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert all(json.loads(line) for line in lines)
    events = [json.loads(line)["event"] for line in lines]
    assert "daemon.stopped" in events
    with sqlite3.connect(tmp_path / "d.sqlite3") as conn:
        [(status, ok, failed)] = conn.execute(
            "SELECT status, tickers_ok, tickers_failed FROM runs"
        ).fetchall()
    assert status == "cancelled"
    assert ok + failed == len(tickers)
    notes = procs.received(notify_socket)
    assert notes[0].startswith("READY=1")
    assert any(n.startswith("STOPPING=1") for n in notes)


async def test_daemon_runs_interval_flow_at_start(
    tmp_path: Path,
    sim_server: MakeServer,
    notify_socket: socket.socket,
    start_daemon: StartDaemon,
) -> None:
    """An interval flow runs at start-up; after SIGTERM the run is ok and STATUS was reported."""
    sim = await sim_server()
    assert sim.url is not None
    config = write_config(tmp_path, sim.url, ["AAPL", "MSFT", "^GSPC"])
    proc = await start_daemon(config, {"NOTIFY_SOCKET": notify_socket.getsockname()})
    db = tmp_path / "d.sqlite3"
    rows: list[tuple[str]] = []
    async with asyncio.timeout(30):
        while True:
            await asyncio.sleep(0.1)
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    rows = conn.execute("SELECT status FROM runs").fetchall()
            except sqlite3.OperationalError:  # the daemon has not created the DB yet
                continue
            if rows and rows[0][0] != "running":
                break
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()
    assert rows == [("ok",)]
    assert any(
        n.startswith("STATUS=") and "eod: ok 3/3" in n for n in procs.received(notify_socket)
    )


async def test_demo_leaves_a_db_with_every_ticker_and_prints_only_json(tmp_path: Path) -> None:
    """`finappd demo --seconds 6` exits 0, prints only JSON lines, and stores every demo ticker."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finappd",
        "demo",
        "--seconds",
        "6",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    lines = (out + err).decode().splitlines()
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    with sqlite3.connect(tmp_path / "finappd-demo.sqlite3") as conn:
        symbols = {r[0] for r in conn.execute("SELECT DISTINCT symbol FROM bars")}
        [(ok_runs,)] = conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchall()
    assert symbols == set(DEMO_TICKERS)
    assert ok_runs >= 1
