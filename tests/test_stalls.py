"""Clock and loop stalls against a real daemon: no overlapping runs, late fires run and say so,
hung provider calls bounded by their timeout."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finappd.runtime import Runtime
from finappd.scheduler import LATE_AFTER, late_by
from finappd.sim import SimConfig
from finappd.sim.faults import FaultPlan
from tests.conftest import MakeServer
from tests.procs import Child, DaemonLog, blocked_span, spawn_stallable
from tests.test_faults import outcome, settings_for

CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[providers.yahoo]
base_url = "{url}"
rate = "100000/minute"
connect_timeout = "2s"
read_timeout = "5s"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "^GSPC"]
every = "{every}"
"""

Spawn = Callable[[Path, str, str, float], Awaitable[tuple[Child, DaemonLog]]]

T0 = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "late"),
    [
        (T0, None),
        (T0 - timedelta(minutes=5), None),  # early: not late
        (T0 + LATE_AFTER, None),
        (T0 + LATE_AFTER + timedelta(milliseconds=1), LATE_AFTER + timedelta(milliseconds=1)),
        (T0 + timedelta(hours=30), timedelta(hours=30)),  # a suspended machine
    ],
)
def test_late_by_reports_only_fires_beyond_the_tolerance(
    now: datetime, late: timedelta | None
) -> None:
    """A fire is late only when more than LATE_AFTER behind its due time, by exactly that much."""
    assert late_by(T0, now) == late


@pytest.fixture
async def stallable(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Factory starting daemons under the loop-blocking harness; kills any left at teardown."""
    procs: list[Child] = []

    async def spawn(db: Path, url: str, every: str, block_s: float) -> tuple[Child, DaemonLog]:
        config = tmp_path / "finappd.toml"
        text = CONFIG.format(db=db, url=url, every=every)
        config.write_text(text, encoding="utf-8")
        proc = await spawn_stallable(config, block_s, tmp_path / "blocked")
        procs.append(proc)
        assert proc.stdout is not None
        return proc, DaemonLog(proc.stdout)

    yield spawn
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def runs(db: Path) -> list[tuple[float, float | None, str]]:
    """Every run's (started, finished, status), started and finished as epoch seconds."""

    def epoch(text: str | None) -> float | None:
        return None if text is None else datetime.fromisoformat(text).timestamp()

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT started_at, finished_at, status FROM runs ORDER BY id")
        return [(float(epoch(s) or 0), epoch(f), status) for s, f, status in rows]


async def stop(proc: Child, log: DaemonLog) -> None:
    """SIGTERM the daemon, read the rest of its log and require a clean exit."""
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        await log.drain()
        await proc.wait()
    assert proc.returncode == 0


@pytest.mark.timeout(120)
async def test_an_overrunning_run_is_never_doubled(
    tmp_path: Path, sim_server: MakeServer, stallable: Spawn
) -> None:
    """A 1 s flow against a simulator slower than its deadline, its loop stalled mid-run so the
    run outlasts its interval: the fire is skipped with flow.skipped and runs never overlap."""
    sim = await sim_server(SimConfig(latency=3.0))
    assert sim.url is not None
    db = tmp_path / "o.sqlite3"
    proc, log = await stallable(db, sim.url, "1s", 2.0)
    seen = 0
    for _attempt in range(5):  # a loaded machine may deliver the signal after the run ended
        await log.wait_for("run.started", after=seen)
        proc.send_signal(signal.SIGUSR1)
        await blocked_span(tmp_path / "blocked")
        (tmp_path / "blocked").unlink()
        await log.wait_for("run.finished", after=len(log.events))
        seen = len(log.events)
        if any(e["event"] == "flow.skipped" for e in log.events):
            break
    await log.wait_for("run.finished", after=len(log.events))  # and runs go on afterwards
    await stop(proc, log)
    skipped = [e for e in log.events if e["event"] == "flow.skipped"]
    assert skipped
    assert skipped[0]["flow"] == "eod"
    done = runs(db)
    assert len(done) >= 2  # the stalled run and at least one after it
    spans = [(s, f) for s, f, _ in done if f is not None]
    assert len(spans) == len(done), done  # every run finished
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert finished <= started, done


@pytest.mark.timeout(120)
async def test_a_fire_missed_during_a_loop_stall_runs_late_and_says_so(
    tmp_path: Path, sim_server: MakeServer, stallable: Spawn
) -> None:
    """The loop blocked from just after a fire until past the next one (later than the old
    misfire grace of half the interval): that fire still runs, once, right away, after one
    flow.late line saying how late; APScheduler drops nothing."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    db = tmp_path / "l.sqlite3"
    # The next fire falls in the block, ~2 s late; the one after comes after the block.
    every, block = 3.0, 5.0
    proc, log = await stallable(db, sim.url, "3s", block)
    await log.wait_for("run.finished")  # stalled mid-run, the late fire would find it running
    proc.send_signal(signal.SIGUSR1)
    blocked_from, blocked_until = await blocked_span(tmp_path / "blocked")
    late = await log.wait_for("flow.late")
    at = len(log.events)
    started = await log.wait_for("run.started", after=at)
    await log.wait_for("run.finished", after=len(log.events))
    await stop(proc, log)
    assert late["flow"] == "eod"
    due = datetime.fromisoformat(late["due"]).timestamp()
    assert blocked_from <= due <= blocked_from + every + 0.5  # the first fire the stall hid
    assert late["late_s"] >= blocked_until - due - 0.5
    # The late run is the very next thing the flow does: no skip, no catch-up burst, no drop.
    fires = ("run.started", "flow.skipped", "flow.late")
    after = [e["event"] for e in log.events[at:] if e["event"] in fires]
    assert after[0] == "run.started", after
    assert datetime.fromisoformat(started["timestamp"]).timestamp() >= blocked_until - 0.5
    assert sum(e["event"] == "flow.late" for e in log.events) == 1
    assert not [e for e in log.events if e["event"] == "flow.skipped"]
    assert not [e for e in log.events if "missed" in str(e["event"])]
    assert all(status == "ok" for _, _, status in runs(db))


async def test_a_hung_provider_call_is_cut_by_its_read_timeout_well_before_the_deadline(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A provider that never answers, read_timeout 300 ms and a 30 s deadline: every ticker
    fails as a timeout and the run ends in seconds, not at its deadline (the deadline cutting
    a longer timeout is test_faults.test_hung_provider_is_cut_off_by_the_run_deadline)."""
    plan = FaultPlan(rate=1.0, kinds=("hang",), hang_seconds=60)
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    tickers = [f"H{i:02d}" for i in range(16)]
    settings = settings_for(tmp_path, sim.url, tickers, deadline="30s", provider={"retries": 1})
    started = time.monotonic()
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    elapsed = time.monotonic() - started
    stored, errors, recorded = outcome(tmp_path / "faults.sqlite3")
    assert stored == set()
    assert set(errors) == set(tickers)
    assert {kind for kind, _ in errors.values()} == {"timeout"}
    assert recorded == [("failed", 0, len(tickers))]
    assert summary.status == "failed"
    assert "deadline" not in (summary.error or "")
    assert elapsed < 15  # 2 tries x 0.3 s per ticker over 8 workers, plus a slow machine
