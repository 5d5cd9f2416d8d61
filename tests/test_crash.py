"""Process death: kill -9 at random moments and SIGTERM mid-run never tear a ticker's batch."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import time
from asyncio.subprocess import STDOUT
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finappd.sim import SimConfig, SimStats
from finappd.store import Store
from tests.conftest import MakeServer
from tests.procs import (
    Child,
    DaemonLog,
    assert_batches_whole,
    exec_finappd,
    integrity,
    notify_socket,
    received,
    spawn_finappd,
)

SEED = 20261125
KILLS = 24
LOOKBACK = 14

CONFIG = """
grace_period = "{grace}"
[store]
path = "{db}"
[logging]
format = "json"
level = "{level}"
[providers.yahoo]
base_url = "{url}"
max_concurrency = {concurrency}
rate = "1000000/minute"
retries = 0
circuit_threshold = 1000
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
every = "1h"
timezone = "UTC"
num_workers = {workers}
lookback_days = {lookback}
# Every run rewrites the whole window, so each ticker's rows are one batch of one run.
incremental = false
"""

#: New York, crypto (weekends, UTC days) and Tokyo (a day ahead of UTC) listings.
TICKERS = (
    [f"K{i:03d}" for i in range(240)]
    + [f"C{i:02d}-USD" for i in range(30)]
    + [f"{i}.T" for i in range(1300, 1330)]
)


def write_config(
    tmp_path: Path,
    url: str,
    tickers: list[str],
    *,
    grace: str = "30s",
    level: str = "info",
    concurrency: int = 16,
    workers: int = 16,
) -> Path:
    """A config with one UTC daily_bars flow over ``tickers`` against the simulator."""
    path = tmp_path / "finappd.toml"
    path.write_text(
        CONFIG.format(
            grace=grace,
            db=tmp_path / "crash.sqlite3",
            level=level,
            url=url,
            concurrency=concurrency,
            tickers=", ".join(f'"{t}"' for t in tickers),
            workers=workers,
            lookback=LOOKBACK,
        ),
        encoding="utf-8",
    )
    return path


def runs(db: Path) -> list[tuple[int, str, int | None, int | None]]:
    """``(id, status, tickers_ok, tickers_failed)`` of every run, oldest first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT id, status, tickers_ok, tickers_failed FROM runs ORDER BY id"
        ).fetchall()


async def wait_served(proc: Child, served: int, stats: SimStats) -> None:
    """Wait until the simulator has answered ``served`` requests or the process has ended."""
    async with asyncio.timeout(60):
        while stats.served < served and proc.returncode is None:
            await asyncio.sleep(0.002)


@pytest.mark.timeout(300)
async def test_kill_9_at_random_moments_never_tears_a_batch(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """SIGKILL `finappd run-once` at 24 seeded random moments over 300 tickers: the file stays
    intact, each ticker holds one whole batch, killed runs become interrupted, a last run
    completes the set.

    The killed processes are forked from a server that has imported finappd already, so the
    moments fall in the work that touches the file, not in the import before it; the last
    run is a fresh ``python -m finappd``."""
    rnd = random.Random(SEED)
    sim = await sim_server(SimConfig(latency=0.002))
    assert sim.url is not None
    config = write_config(tmp_path, sim.url, TICKERS, level="warning")
    db = tmp_path / "crash.sqlite3"
    started = time.time()
    seeds: list[int] = []
    killed = finished_alone = 0
    log = tmp_path / "run-once.log"
    for attempt in range(KILLS):
        # A new price universe per attempt: a torn batch would mix two of them.
        sim.config.seed = attempt + 1
        seeds.append(attempt + 1)
        sim.reset()
        with log.open("wb") as output:
            proc = await spawn_finappd(
                "--config", str(config), "run-once", "eod", stdout=output.fileno(), stderr=STDOUT
            )
        if rnd.random() < 0.25:
            # Early: while opening, migrating, marking or starting the run.
            await asyncio.sleep(rnd.uniform(0.0, 0.5))
        else:
            await wait_served(proc, rnd.randint(1, len(TICKERS)), sim.stats)
            await asyncio.sleep(rnd.uniform(0.0, 0.02))
        if proc.returncode is None:
            proc.kill()
            killed += 1
        code = await proc.wait()
        if code == 0:
            finished_alone += 1
        else:
            assert code == -signal.SIGKILL, log.read_text(errors="replace")
        if db.exists():
            assert integrity(db) == "ok"
            assert_batches_whole(db, LOOKBACK, started, seeds=seeds, symbols=TICKERS)
    assert killed >= KILLS - 2  # the seeded moments are nearly all mid-run

    sim.config.seed = 0
    last = await exec_finappd("--config", str(config), "run-once", "eod")
    out, err = await asyncio.wait_for(last.communicate(), timeout=120)
    assert last.returncode == 0, err.decode()
    summary = json.loads(out.decode().splitlines()[-1])
    assert (summary["status"], summary["tickers_ok"]) == ("ok", len(TICKERS))
    assert integrity(db) == "ok"
    counts = assert_batches_whole(db, LOOKBACK, started, seeds=[0], symbols=TICKERS)
    assert set(counts) == set(TICKERS)
    history = runs(db)
    assert history[-1][1:] == ("ok", len(TICKERS), 0)
    earlier = [status for _, status, _, _ in history[:-1]]
    # A killed run is interrupted; one killed after its run was recorded (while closing
    # down) stays ok. Nothing is left running.
    assert set(earlier) <= {"ok", "interrupted"}
    assert earlier.count("ok") >= finished_alone
    assert earlier.count("interrupted") >= killed // 2  # most kills came mid-run


async def test_sigterm_mid_run_cancels_within_grace_and_keeps_batches_whole(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """SIGTERM while a slow run is in flight: the daemon exits 0 within its grace period plus
    the batch in hand, the run is cancelled with every ticker accounted for, and STOPPING=1
    follows READY=1."""
    sim = await sim_server(SimConfig(latency=0.2))
    assert sim.url is not None
    tickers = [f"S{i:03d}" for i in range(120)]
    config = write_config(tmp_path, sim.url, tickers, grace="1s", concurrency=4, workers=8)
    db = tmp_path / "crash.sqlite3"
    started = time.time()
    with notify_socket(tmp_path / "notify.sock") as sock:
        proc = await spawn_finappd(
            "--config", str(config), "run", env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        )
        assert proc.stdout is not None
        log = DaemonLog(proc.stdout)
        await log.wait_for("run.started")
        async with asyncio.timeout(60):
            while sim.stats.served < 8:
                await asyncio.sleep(0.01)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await log.wait_for("daemon.stopped")
        code = await asyncio.wait_for(proc.wait(), timeout=30)
        took = time.monotonic() - signalled
        notes = received(sock)
    events = [e["event"] for e in await log.drain()]
    assert code == 0
    # Grace (1 s), then cancelling: the fetches in flight end at once, the writer's batch
    # commits; generous margin for a loaded machine.
    assert took < 1 + 10, took
    assert events.index("daemon.draining") < events.index("daemon.cancelled_runs")
    assert events[-1] == "daemon.stopped"
    assert notes[0].startswith("READY=1")
    assert any(n.startswith("STOPPING=1") for n in notes)
    assert integrity(db) == "ok"
    [(_, status, ok, failed)] = runs(db)
    assert status == "cancelled"
    assert ok is not None
    assert failed is not None
    assert ok + failed == len(tickers)
    assert 8 <= ok < len(tickers)
    counts = assert_batches_whole(db, LOOKBACK, started, symbols=tickers)
    assert len(counts) == ok  # a ticker is counted ok exactly when its batch landed
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM fetch_errors GROUP BY kind"))
        errored = {r[0] for r in conn.execute("SELECT symbol FROM fetch_errors")}
    assert kinds == {"cancelled": failed}
    assert errored | set(counts) == set(tickers)


async def test_sigterm_lets_a_run_finish_within_grace(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """SIGTERM with a run in flight and a long grace period: the run finishes ok, then exit 0."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    tickers = [f"G{i:02d}" for i in range(60)]
    config = write_config(tmp_path, sim.url, tickers, grace="60s", concurrency=4, workers=4)
    db = tmp_path / "crash.sqlite3"
    started = time.time()
    proc = await spawn_finappd("--config", str(config), "run")
    assert proc.stdout is not None
    log = DaemonLog(proc.stdout)
    await log.wait_for("run.started")
    async with asyncio.timeout(60):
        while sim.stats.served < 4:
            await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    finished = await log.wait_for("run.finished")
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    assert finished["status"] == "ok"
    assert "daemon.cancelled_runs" not in {e["event"] for e in await log.drain()}
    assert runs(db) == [(1, "ok", len(tickers), 0)]
    assert set(assert_batches_whole(db, LOOKBACK, started, symbols=tickers)) == set(tickers)


def test_a_live_process_runs_are_never_taken_for_a_crash(tmp_path: Path) -> None:
    """While another store (process) has the file open, its running run is left alone; once
    it is gone (closed, or killed: the kernel drops its lock), the run is marked interrupted."""
    db = tmp_path / "lock.sqlite3"
    now = datetime.now(UTC)
    live = Store(db).open()
    run_id = live.start_run("eod", "schedule", 3, now)
    with Store(db).open() as other:
        assert other.mark_interrupted(now) == 0
        assert [r.status for r in other.last_runs()] == ["running"]
        live.close()
        assert other.mark_interrupted(now) == 1
        assert [(r.id, r.status) for r in other.last_runs()] == [(run_id, "interrupted")]
