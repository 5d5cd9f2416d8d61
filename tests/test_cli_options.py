"""The CLI: options after the command, SIGTERM in run-once and backfill, and `trigger`."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from finappd.sim import SimConfig
from tests import procs
from tests.conftest import MakeServer

CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[api]
listen = "unix:{sock}"
[providers.yahoo]
base_url = "{url}"
max_concurrency = 1
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
cron = "0 3 1 1 *"
num_workers = 2
"""


def write_config(tmp_path: Path, url: str, tickers: int) -> Path:
    """A never-firing flow ``eod`` over ``tickers`` tickers, with the API on a socket."""
    path = tmp_path / "x.toml"
    path.write_text(
        CONFIG.format(
            db=tmp_path / "d.sqlite3",
            sock=tmp_path / "api.sock",
            url=url,
            tickers=", ".join(f'"T{i:03d}"' for i in range(tickers)),
        ),
        encoding="utf-8",
    )
    return path


def runs(tmp_path: Path) -> list[tuple[Any, ...]]:
    """``(flow, trigger, status)`` of every run."""
    with sqlite3.connect(tmp_path / "d.sqlite3") as conn:
        return conn.execute('SELECT flow, "trigger", status FROM runs ORDER BY id').fetchall()


async def finappd(*args: str, within: float = 60) -> tuple[int, str, str]:
    """Run ``finappd ARGS`` to its end: exit code, stdout, stderr."""
    proc = await procs.spawn_finappd(*args)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=within)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def last_json(out: str) -> dict[str, Any]:
    """The last JSON object printed (logs come before it)."""
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


@pytest.mark.parametrize("where", ["before", "after"])
async def test_config_goes_before_or_after_the_command(
    tmp_path: Path, sim_server: MakeServer, where: str
) -> None:
    """`finappd run-once eod --config x.toml` works as `finappd --config x.toml run-once eod`."""
    sim = await sim_server()
    assert sim.url is not None
    config = str(write_config(tmp_path, sim.url, 2))
    argv = ["--config", config, "run-once", "eod"]
    if where == "after":
        argv = ["run-once", "eod", "--config", config]
    code, out, err = await finappd(*argv)
    assert code == 0, err
    assert last_json(out)["status"] == "ok"
    code, out, err = await finappd("check-config", "--config", config)
    assert code == 0, err
    assert json.loads(out)["flows"][0]["name"] == "eod"


@pytest.mark.parametrize("command", ["run-once", "backfill"])
async def test_sigterm_records_the_run_cancelled(
    tmp_path: Path, sim_server: MakeServer, command: str
) -> None:
    """SIGTERM during `run-once` or `backfill` ends the run `cancelled` (never `running`),
    prints that as JSON and exits 1."""
    sim = await sim_server(SimConfig(latency=0.5))
    assert sim.url is not None
    config = str(write_config(tmp_path, sim.url, 20))
    extra = ["--start", "2026-01-05", "--end", "2026-06-30"] if command == "backfill" else []
    proc = await procs.spawn_finappd(command, "eod", *extra, "--config", config)
    async with asyncio.timeout(30):
        while sim.stats.served < 1:
            await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 1, err.decode()
    assert last_json(out.decode()) == {"flow": "eod", "status": "cancelled"}
    [(flow, _trigger, status)] = runs(tmp_path)
    assert (flow, status) == ("eod", "cancelled")


async def test_trigger_runs_in_process_without_a_daemon(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With no daemon on the socket, `trigger` runs the flow itself and prints its summary."""
    sim = await sim_server()
    assert sim.url is not None
    config = str(write_config(tmp_path, sim.url, 3))
    code, out, err = await finappd("trigger", "eod", "--config", config)
    assert code == 0, err
    summary = last_json(out)
    assert (summary["status"], summary["tickers_ok"]) == ("ok", 3)
    assert runs(tmp_path) == [("eod", "manual", "ok")]


async def test_trigger_goes_through_the_running_daemon(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With a daemon running, `trigger` asks its API (trigger `api`); `--wait` prints the end."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    config = str(write_config(tmp_path, sim.url, 4))
    daemon = await procs.spawn_finappd("run", "--config", config, stdout=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(60):
            while not (tmp_path / "api.sock").is_socket():
                await asyncio.sleep(0.05)
        code, out, err = await finappd("trigger", "eod", "--wait", "--config", config)
        assert code == 0, err
        end = last_json(out)
        assert (end["status"], end["tickers_ok"], end["final"]) == ("ok", 4, True)
        code, out, err = await finappd("trigger", "eod", "--config", config)
        assert code == 0, err
        assert last_json(out)["via"] == "api"
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.communicate(), timeout=30)
    assert daemon.returncode == 0
    assert [r[1] for r in runs(tmp_path)] == ["api", "api"]
