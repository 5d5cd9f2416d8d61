"""A full disk or a read-only database under a running daemon: clear errors, no crash, recovery."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.store import Store
from tests.conftest import MakeServer
from tests.procs import Child, DaemonLog, integrity, run_daemon, spawn_main


def faulty_daemon(argv: list[str]) -> int:
    """:func:`run_daemon` on ARGV[0] with test-only signals turning a storage fault on
    (SIGUSR1) and off (SIGUSR2) on the store's own connection, between two transactions:
    "full" pins PRAGMA max_page_count at the file's current size (SQLITE_FULL on growth, as
    a full disk gives), "readonly" sets PRAGMA query_only (every write refused). With
    ARGV[1] "full-at-start" the disk is full from the moment the store opens. It runs in a
    child process (:func:`start`): patching Runtime touches no test's."""
    config, mode = Path(argv[0]), argv[1]
    runtimes: list[Runtime] = []
    tasks: set[asyncio.Future[None]] = set()

    def fault(store: Store, on: bool) -> None:
        conn = store._conn
        assert conn is not None
        if mode.startswith("full"):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages if on else 1073741823}")
        else:
            conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")

    opened = Runtime.__aenter__

    async def aenter(self: Runtime) -> Runtime:
        runtime = await opened(self)
        runtimes.append(runtime)
        if mode == "full-at-start":
            await runtime.writer.call(fault, runtime.store, True)
        return runtime

    Runtime.__aenter__ = aenter  # type: ignore[method-assign]

    def toggle(on: bool) -> None:
        tasks.add(asyncio.ensure_future(runtimes[0].writer.call(fault, runtimes[0].store, on)))

    handlers = {signal.SIGUSR1: partial(toggle, True), signal.SIGUSR2: partial(toggle, False)}
    return run_daemon(config, handlers)


CONFIG = """
[store]
path = "{db}"
[providers.yahoo]
base_url = "{url}"
rate = "100000/minute"
max_concurrency = 8
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
every = "2s"
lookback_days = 60
num_workers = 8
"""

TICKERS = [f"D{i:02d}" for i in range(40)]


async def start(tmp_path: Path, url: str, mode: str) -> tuple[Child, Path]:
    """Start the daemon under the fault harness in ``mode``; return it and its DB path."""
    db = tmp_path / "disk.sqlite3"
    config = tmp_path / "finappd.toml"
    config.write_text(
        CONFIG.format(db=db, url=url, tickers=", ".join(f'"{t}"' for t in TICKERS)),
        encoding="utf-8",
    )
    proc = await spawn_main(faulty_daemon, [str(config), mode])
    return proc, db


def run_rows(db: Path) -> list[tuple[Any, ...]]:
    """``(status, tickers_ok, tickers_failed, error)`` of each run, oldest first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT status, tickers_ok, tickers_failed, error FROM runs ORDER BY id"
        ).fetchall()


async def stop(proc: Child, log: DaemonLog) -> list[dict[str, Any]]:
    """SIGTERM the daemon; require exit 0; return every log line."""
    proc.send_signal(signal.SIGTERM)
    events = await asyncio.wait_for(log.drain(), timeout=60)
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    return events


@pytest.mark.timeout(180)
async def test_disk_full_fails_the_run_clearly_and_the_next_run_recovers(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With the disk full from the start, the first run's writes fail with a clear
    store.write_failed, the run is recorded failed, the daemon stays up, and once space
    is back the next scheduled run stores everything."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    proc, db = await start(tmp_path, sim.url, "full-at-start")
    assert proc.stdout is not None
    log = DaemonLog(proc.stdout)
    failed = await log.wait_for("store.write_failed")
    assert "full" in failed["error"]
    first = await log.wait_for("run.finished")
    assert first["status"] == "failed"
    assert first["failures"] == {"store": len(TICKERS)}
    assert proc.returncode is None  # still running
    proc.send_signal(signal.SIGUSR2)
    recovered = await log.wait_for("run.finished", within=60, status="ok")
    events = await stop(proc, log)
    assert recovered["tickers_ok"] == len(TICKERS)
    assert "flow.crashed" not in {e["event"] for e in events}
    rows = run_rows(db)
    assert rows[0][:3] == ("failed", 0, len(TICKERS))
    assert "full" in (rows[0][3] or "")
    assert rows[-1][:3] == ("ok", len(TICKERS), 0)
    assert integrity(db) == "ok"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        [(symbols,)] = conn.execute("SELECT count(DISTINCT symbol) FROM bars").fetchall()
    assert symbols == len(TICKERS)


@pytest.mark.timeout(180)
async def test_read_only_database_fails_runs_clearly_and_recovers(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A database that turns read-only under the daemon: the next run fails with a clear
    store.write_failed, the daemon stays up, and runs work again once it is writable."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    proc, db = await start(tmp_path, sim.url, "readonly")
    assert proc.stdout is not None
    log = DaemonLog(proc.stdout)
    await log.wait_for("run.finished", status="ok")
    proc.send_signal(signal.SIGUSR1)
    failed = await log.wait_for("store.write_failed", within=60)
    assert "readonly" in failed["error"]
    # One more scheduled run meets the read-only file, and the daemon is still there.
    await log.wait_for("store.write_failed", within=60, after=len(log.events))
    assert proc.returncode is None
    proc.send_signal(signal.SIGUSR2)
    await log.wait_for("run.finished", within=60, after=len(log.events), status="ok")
    events = await stop(proc, log)
    assert any(e["event"] == "store.write_failed" for e in events)
    assert integrity(db) == "ok"
    statuses = [row[0] for row in run_rows(db)]
    assert statuses[0] == "ok"
    assert statuses[-1] == "ok"
