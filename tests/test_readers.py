"""Concurrent readers and a second writer while the daemon ingests 2,000 tickers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finappd.records import Bar
from finappd.sim import SimConfig, synthetic_bars
from finappd.sim.exchanges import listing_of
from finappd.sim.yahoo import session_open
from finappd.store import Store
from finappd.store.store import WAL_LIMIT
from tests.conftest import MakeServer
from tests.procs import Child, DaemonLog, assert_batches_whole, integrity, spawn_finappd

LOOKBACK = 14
TICKERS = [f"N{i:04d}" for i in range(2000)]
SIDE = [f"U{i:03d}" for i in range(200)]

CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[providers.yahoo]
base_url = "{url}"
max_concurrency = 32
rate = "10000000/minute"
circuit_threshold = 1000
[[flows]]
name = "bulk"
provider = "yahoo"
tickers_file = "{tickers}"
every = "1h"
timezone = "UTC"
num_workers = 32
lookback_days = {lookback}
[[flows]]
name = "side"
provider = "yahoo"
tickers = [{side}]
every = "1h"
timezone = "UTC"
num_workers = 8
lookback_days = {lookback}
"""

#: A reader as another program would be: plain sqlite3, default busy timeout (5 s), a read
#: transaction per snapshot, in a tight loop until the stop file appears (one more then).
#: It prints one JSON summary: snapshots taken, errors by message, per-ticker row counts
#: seen, the statuses seen per run id, and the largest WAL file seen.
READER = r"""
import json, os, sqlite3, sys, time
db, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
snapshots, errors, counts, statuses, wal_max, symbols_max = 0, {}, set(), {}, 0, 0
done = False
while not done:
    done = os.path.exists(stop)  # the snapshot after the stop file sees the final state
    try:
        conn.execute("BEGIN")
        rows = conn.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol").fetchall()
        conn.execute("SELECT count(*), max(close) FROM latest_close").fetchone()
        for run_id, status in conn.execute("SELECT id, status FROM runs"):
            statuses.setdefault(str(run_id), set()).add(status)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        errors[str(exc)] = errors.get(str(exc), 0) + 1
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        continue
    snapshots += 1
    counts.update(n for _, n in rows)
    symbols_max = max(symbols_max, len(rows))
    try:
        wal_max = max(wal_max, os.path.getsize(db + "-wal"))
    except OSError:
        pass
print(json.dumps({
    "snapshots": snapshots, "errors": errors, "counts": sorted(counts),
    "statuses": {k: sorted(v) for k, v in statuses.items()}, "wal_max": wal_max,
    "symbols_max": symbols_max,
}))
"""


def allowed_counts(symbol: str, since: float, until: float) -> set[int]:
    """Rows one whole fetch of ``symbol`` may hold when fetched between the two times.

    A first fetch asks for ``LOOKBACK`` days back from the newest session that has opened
    (the exchange's day, not the UTC one: before New York's open it is yesterday's).
    """
    listing = listing_of(symbol)
    today = datetime.fromtimestamp(until, UTC).date()
    days = [b.day for b in synthetic_bars(symbol, today - timedelta(days=LOOKBACK + 7), today)]
    allowed: set[int] = set()
    for moment in (since, until):
        end = max(d for d in days if session_open(d, listing) <= moment)
        allowed.add(sum(end - timedelta(days=LOOKBACK) <= d for d in days if d <= end))
    return allowed


@pytest.mark.timeout(300)
async def test_readers_never_locked_out_nor_see_half_a_ticker_and_wal_stays_bounded(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """While the daemon ingests 2,000 tickers, a reader process querying in a tight loop never
    gets `database is locked` or a partial ticker, the WAL stays bounded, and a `run-once`
    started by hand meanwhile waits its turn and succeeds."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    db = tmp_path / "r.sqlite3"
    (tmp_path / "tickers.txt").write_text("\n".join(TICKERS), encoding="utf-8")
    config = tmp_path / "finappd.toml"
    config.write_text(
        CONFIG.format(
            db=db,
            url=sim.url,
            tickers=tmp_path / "tickers.txt",
            lookback=LOOKBACK,
            side=", ".join(f'"{t}"' for t in SIDE),
        ),
        encoding="utf-8",
    )
    stop = tmp_path / "stop-reader"
    started = time.time()
    daemon = await spawn_finappd("--config", str(config), "run")
    assert daemon.stdout is not None
    log = DaemonLog(daemon.stdout)
    side: Child | None = None
    try:
        await log.wait_for("run.started", flow="bulk")
        reader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            READER,
            str(db),
            str(stop),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            while sim.stats.served < 400:
                await asyncio.sleep(0.05)
        # A second writer, by hand, while the daemon writes.
        side = await spawn_finappd("--config", str(config), "run-once", "side")
        side_out, side_err = await asyncio.wait_for(side.communicate(), timeout=120)
        side_done_while_bulk_ran = sim.stats.served < len(TICKERS) + len(SIDE)
        finished = await log.wait_for("run.finished", within=240, flow="bulk")
        stop.touch()
        reader_out, reader_err = await asyncio.wait_for(reader.communicate(), timeout=60)
    finally:
        stop.touch()
        if daemon.returncode is None:
            daemon.terminate()
        await asyncio.wait_for(daemon.wait(), timeout=60)
    assert daemon.returncode == 0
    assert reader.returncode == 0, reader_err.decode()
    seen: dict[str, Any] = json.loads(reader_out)

    assert side.returncode == 0, side_err.decode()
    assert json.loads(side_out.decode().splitlines()[-1])["status"] == "ok"
    assert side_done_while_bulk_ran  # it really overlapped the daemon's writes
    assert finished["status"] == "ok"
    assert finished["tickers_ok"] == len(TICKERS)

    assert seen["errors"] == {}  # never "database is locked", nor anything else
    assert seen["snapshots"] > 20
    assert seen["symbols_max"] == len(TICKERS) + len(SIDE)
    # Every snapshot showed every ticker whole: as many rows as one fetch has, never fewer.
    whole = allowed_counts(TICKERS[0], started, time.time())
    assert set(seen["counts"]) <= whole, (seen["counts"], whole)
    # The daemon's run (id 1) was never shown as anything but running, then ok: the second
    # process must not take it for a run left behind by a crash.
    assert set(seen["statuses"]["1"]) <= {"running", "ok"}, seen["statuses"]
    assert seen["wal_max"] < WAL_LIMIT + 4 * 2**20, seen["wal_max"]

    assert integrity(db) == "ok"
    counts = assert_batches_whole(db, LOOKBACK, started, symbols=[*TICKERS, *SIDE])
    assert len(counts) == len(TICKERS) + len(SIDE)


def overlapping_readers_write(db: Path, tickers: int) -> int:
    """Write ``tickers`` batches while two readers take turns so that one always holds a
    snapshot; return the largest WAL file size seen."""
    store = Store(db).open()
    stop = threading.Event()
    largest = [0]

    def read(offset: float) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        time.sleep(offset)
        while not stop.is_set():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM bars").fetchone()
            time.sleep(0.02)
            conn.execute("COMMIT")
        conn.close()

    readers = [threading.Thread(target=read, args=(offset,)) for offset in (0.0, 0.01)]
    for reader in readers:
        reader.start()
    wal = db.with_name(db.name + "-wal")
    try:
        for i in range(tickers):
            day = date(2026, 1, 1)
            bars = [
                Bar(f"W{i:04d}", day + timedelta(days=k), 10.0, 11.0, 9.0, 10.5, 10.4, 1e5)
                for k in range(11)
            ]
            store.write_bars(bars, provider="sim", fetched_at=datetime.now(UTC))
            largest[0] = max(largest[0], wal.stat().st_size)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        store.close()
    return largest[0]


#: The limit for the test below: a quarter of WAL_LIMIT, so a quarter of the writes show it.
SMALL_WAL_LIMIT = WAL_LIMIT // 4


def test_wal_stays_bounded_while_readers_always_hold_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers that never all rest at once starve SQLite's own checkpoint (shown by lifting
    the limit); the store's truncating checkpoint keeps the WAL near the limit."""
    monkeypatch.setattr("finappd.store.store.WAL_LIMIT", SMALL_WAL_LIMIT)
    bounded = overlapping_readers_write(tmp_path / "bounded.sqlite3", 1000)
    monkeypatch.setattr("finappd.store.store.WAL_LIMIT", 2**62)
    starved = overlapping_readers_write(tmp_path / "starved.sqlite3", 1000)
    assert starved > 2 * SMALL_WAL_LIMIT  # the scenario really starves the passive checkpoint
    assert bounded < SMALL_WAL_LIMIT + 2**20
