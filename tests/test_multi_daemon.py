"""Three daemons on one PostgreSQL store and one provider limited to 5/minute and 25/day.

Every fire runs once across them; the simulator never sees more than the limits allow; a
daemon killed -9 in the middle of a run leaves the next fire to another one.
"""

from __future__ import annotations

import asyncio
import bisect
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finappd.coord import Coordinator
from finappd.errors import QuotaExhaustedError
from finappd.sim import SimConfig
from finappd.store.pg import PgStore
from tests.conftest import MakeServer
from tests.pg import PgServer
from tests.procs import Child, spawn_finappd

EVERY = 6  # seconds between fires
#: Requests already counted today, so that 25/day leaves room for two more: the fires
#: after those are refused by the quota all three daemons share.
SEEDED = 23

CONFIG = """
daemon_name = "{name}"
[store]
url = "{url}"
[logging]
format = "json"
[providers.yahoo]
base_url = "{sim}"
rate = "5/minute"
daily_quota = 25
quota_reset_tz = "UTC"
max_concurrency = 1
max_concurrency_total = 1
retries = 0
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL"]
every = "{every}s"
timezone = "UTC"
incremental = false
"""


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


@pytest.mark.timeout(240)
async def test_three_daemons_run_each_fire_once_within_shared_limits_and_survive_a_kill(
    tmp_path: Path, pg_server: PgServer, sim_server: MakeServer
) -> None:
    sim = await sim_server(SimConfig(latency=1.5))  # a run lasts long enough to be killed in
    assert sim.url is not None
    url = pg_server.create()
    today = datetime.now(UTC).date().isoformat()
    daemons: dict[str, Child] = {}
    logs = []
    try:
        for name in ("alpha", "beta", "gamma"):
            config = tmp_path / f"{name}.toml"
            config.write_text(
                CONFIG.format(name=name, url=url, sim=sim.url, every=EVERY), encoding="utf-8"
            )
            log = (tmp_path / f"{name}.log").open("w")
            logs.append(log)
            daemons[name] = await spawn_finappd("--config", str(config), "run", stdout=log.fileno())
            if name == "alpha":  # the schema exists once the first daemon has started
                while not rows(url, "SELECT to_regclass('provider_usage') IS NOT NULL")[0][0]:
                    await asyncio.sleep(0.1)
                with psycopg.connect(url, connect_timeout=10) as conn:
                    conn.execute(
                        "INSERT INTO provider_usage (provider, day, requests) VALUES "
                        "('yahoo', %s, %s) ON CONFLICT (provider, day) DO UPDATE "
                        "SET requests = provider_usage.requests + excluded.requests",
                        (today, SEEDED),
                    )
        # Wait for a run in flight after the first fire, then kill its daemon.
        async with asyncio.timeout(60):
            while True:
                running = rows(
                    url, "SELECT daemon, fire_at FROM runs WHERE status = 'running' ORDER BY id"
                )
                if running and rows(url, "SELECT count(*) FROM runs")[0][0] >= 2:
                    break
                await asyncio.sleep(0.05)
        victim = str(running[-1][0])
        killed_at = datetime.now(UTC)
        daemons[victim].send_signal(signal.SIGKILL)
        await daemons[victim].wait()
        # The next fire after the kill runs on another daemon, within one interval.
        deadline = time.monotonic() + 2 * EVERY + 10
        while time.monotonic() < deadline:
            after = rows(
                url,
                "SELECT daemon, fire_at, started_at FROM runs "  # noqa: S608 (our own value)
                f"WHERE started_at > '{killed_at.isoformat()}' ORDER BY id",
            )
            if after:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(EVERY + 2)  # one more fire, which the quota refuses
    finally:
        for process in daemons.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in daemons.values():
            await asyncio.wait_for(process.wait(), timeout=60)
        for log in logs:
            log.close()

    assert after, "no fire ran after the kill"
    [(survivor, _, started_at)] = after[:1]
    assert survivor != victim
    assert datetime.fromisoformat(str(started_at)) - killed_at < timedelta(seconds=EVERY + 5)
    # Every fire ran once: no two runs rows for one (flow, fire_at), each fire claimed once.
    fires = rows(url, "SELECT fire_at, count(*) FROM runs WHERE fire_at IS NOT NULL GROUP BY 1")
    assert fires
    assert all(n == 1 for _, n in fires), fires
    claimed = rows(url, "SELECT fire_at, daemon FROM coord_fires")
    assert sorted(str(f) for f, _ in fires) == sorted(str(f) for f, _ in claimed)
    assert len({d for _, d in claimed}) >= 2  # the fires really were shared
    # The killed daemon's run was marked interrupted by a survivor.
    statuses = rows(url, f"SELECT status FROM runs WHERE daemon = '{victim}'")  # noqa: S608
    assert ("running",) not in statuses
    assert ("interrupted",) in statuses
    # At the simulator: never more than 5 requests in a minute, nor past 25 in the day;
    # the quota was reached, never passed, and the fires after it were refused.
    assert sim.stats.max_arrivals["60s"] <= 5
    [(spent,)] = rows(url, f"SELECT requests FROM provider_usage WHERE day = '{today}'")  # noqa: S608
    assert spent == 25
    assert sim.stats.requests <= spent - SEEDED
    refused = rows(url, "SELECT count(*) FROM fetch_errors WHERE kind = 'quota_exhausted'")
    assert refused[0][0] >= 1


def test_shared_windows_and_quota_hold_under_three_racing_daemons(pg_server: PgServer) -> None:
    """Three coordinators admitting as fast as they can: at most 5 sends in any 1 s (by the
    server's clock), and exactly 25 of 60 attempts counted against a 25/day quota."""
    url = pg_server.create()
    PgStore(url).open().close()  # the schema (provider_usage)
    coordinators = [Coordinator(url, daemon=f"d{i}") for i in range(3)]
    for coordinator in coordinators:
        coordinator.open()
    admitted: list[int] = []
    refused: list[int] = []
    day = datetime.now(UTC).date()

    def hammer(coordinator: Coordinator) -> None:
        for _ in range(20):
            try:
                while (
                    wait := coordinator.admit("p", [(5, 1.0)], daily=25, monthly=None, day=day)
                ) > 0:
                    time.sleep(wait)
            except QuotaExhaustedError:
                refused.append(1)
            else:
                admitted.append(1)

    threads = [threading.Thread(target=hammer, args=(c,)) for c in coordinators]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for coordinator in coordinators:
            coordinator.close()
    assert (len(admitted), len(refused)) == (25, 35)
    sends = [
        float(t)
        for (t,) in rows(url, "SELECT extract(epoch FROM sent_at) FROM coord_sends ORDER BY 1")
    ]
    assert len(sends) == 25
    assert max(bisect.bisect_left(sends, t + 1.0) - i for i, t in enumerate(sends)) <= 5
    assert {d for (d,) in rows(url, "SELECT DISTINCT daemon FROM coord_sends")} == {
        "d0",
        "d1",
        "d2",
    }
    assert rows(url, "SELECT requests FROM provider_usage WHERE provider = 'p'") == [(25,)]


def test_max_concurrency_total_holds_across_daemons_and_frees_a_dead_ones_slots(
    pg_server: PgServer,
) -> None:
    """Three coordinators sharing 2 request slots: never more than 2 held at once; a
    coordinator that disconnects without giving its slot back (a crash) frees it."""
    url = pg_server.create()
    coordinators = [Coordinator(url, daemon=f"c{i}") for i in range(3)]
    for coordinator in coordinators:
        coordinator.open()
    held = [0]
    peak = [0]
    lock = threading.Lock()

    def work(coordinator: Coordinator) -> None:
        for _ in range(15):
            while not coordinator.take_slot("p", 2):
                time.sleep(0.002)
            with lock:
                held[0] += 1
                peak[0] = max(peak[0], held[0])
            time.sleep(0.005)
            with lock:
                held[0] -= 1
            coordinator.give_slot("p")

    threads = [threading.Thread(target=work, args=(c,)) for c in coordinators]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert peak[0] == 2
        first, second, third = coordinators
        assert first.take_slot("p", 2)
        assert second.take_slot("p", 2)
        assert not third.take_slot("p", 2)
        first.close()  # dies holding its slot
        deadline = time.monotonic() + 5
        while not third.take_slot("p", 2):
            assert time.monotonic() < deadline, "the dead coordinator's slot was never freed"
            time.sleep(0.01)
    finally:
        for coordinator in coordinators:
            coordinator.close()


def test_a_coordinator_whose_connection_dies_connects_again(pg_server: PgServer) -> None:
    """A server restart or a network cut ends the session: the next call connects again
    (taking the name lock anew) instead of failing every request from then on."""
    url = pg_server.create()
    PgStore(url).open().close()
    coordinator = Coordinator(url, daemon="solo")
    coordinator.open()
    try:
        day = datetime.now(UTC).date()
        assert coordinator.guarded(coordinator.admit, "p", [], daily=10, monthly=None, day=day) == 0
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert coordinator.guarded(coordinator.admit, "p", [], daily=10, monthly=None, day=day) == 0
        assert rows(url, "SELECT requests FROM provider_usage WHERE provider = 'p'") == [(2,)]
    finally:
        coordinator.close()
