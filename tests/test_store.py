"""Tests for finappd.store.Store against real SQLite files and a real PostgreSQL server.

Every test taking ``make_store`` runs on both backends (``backend`` in tests/conftest.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

import finappd.store
from finappd.errors import StoreError
from finappd.records import Bar
from finappd.store import RUN_STATUSES, SCHEMA_VERSION, RunRow, Store
from finappd.store.market import first_bar_day
from tests.conftest import MakeStore
from tests.pg import raw

NOW = datetime(2025, 3, 14, 21, 30, tzinfo=UTC)


def daily(symbol: str, day: int, close: float = 100.0) -> Bar:
    """A daily bar of March 2025."""
    return Bar(symbol, date(2025, 3, day), close - 1, close + 1, close - 2, close, close, 1e6)


def sqlite_only(backend: str, why: str) -> None:
    """Skip on PostgreSQL: what the test checks is SQLite's own (``why``)."""
    if backend != "sqlite":
        pytest.skip(f"SQLite only: {why}")


def test_public_surface_is_exactly_all() -> None:
    """The package exports exactly the documented names."""
    assert sorted(finappd.store.__all__) == [
        "RUN_STATUSES",
        "RunRow",
        "SCHEMA_VERSION",
        "Store",
        "Writer",
    ]
    assert SCHEMA_VERSION == 5
    assert RUN_STATUSES == ("running", "ok", "partial", "failed", "interrupted", "cancelled")


def test_pragmas_are_in_effect(make_store: MakeStore, backend: str) -> None:
    """An opened store runs in WAL with foreign keys on and the configured busy timeout."""
    sqlite_only(backend, "PRAGMAs")
    store = make_store(busy_timeout=2.5, synchronous="FULL")
    assert store.pragmas() == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": 2500,
        "foreign_keys": 1,
        "user_version": SCHEMA_VERSION,
    }


def test_open_creates_parent_directory_and_repr_shows_state(tmp_path: Path) -> None:
    """open() creates missing directories, and repr names path, version and state."""
    store = Store(tmp_path / "a" / "b" / "x.db")
    assert "closed" in repr(store)
    with store:
        assert (tmp_path / "a" / "b" / "x.db").exists()
        assert repr(store) == f"<Store open path='{store.path}' schema_version=5>"
    assert repr(store).startswith("<Store closed")


def test_use_of_closed_store_raises_store_error(tmp_path: Path) -> None:
    """Calling a method on a store that is not open raises StoreError, not AttributeError."""
    with pytest.raises(StoreError, match="not open"):
        Store(tmp_path / "x.db").bar_counts()


def test_upsert_of_same_bars_twice_is_idempotent(make_store: MakeStore) -> None:
    """Writing the same bars twice leaves the same rows and the same count."""
    store = make_store()
    bars = [daily("AAPL", d) for d in (10, 11, 12)]
    assert store.write_bars(bars, provider="sim", fetched_at=NOW) == 3
    first = raw(store, "SELECT * FROM bars ORDER BY ts")
    assert store.write_bars(bars, provider="sim", fetched_at=NOW) == 3
    assert raw(store, "SELECT * FROM bars ORDER BY ts") == first
    assert store.bar_counts() == {"AAPL": 3}


def test_upsert_updates_close_provider_and_fetched_at(make_store: MakeStore) -> None:
    """A changed bar replaces the stored row, including provider and fetched_at."""
    store = make_store()
    store.write_bars([daily("AAPL", 10, 100.0)], provider="sim", fetched_at=NOW)
    later = NOW + timedelta(hours=1)
    store.write_bars([daily("AAPL", 10, 101.5)], provider="other", fetched_at=later)
    assert raw(store, "SELECT ts, close, provider, fetched_at FROM bars") == [
        ("2025-03-10", 101.5, "other", "2025-03-14T22:30:00+00:00")
    ]


def test_intraday_ts_is_stored_as_utc_iso(make_store: MakeStore) -> None:
    """An intraday bar's ts is stored as ISO-8601 UTC whatever its input zone."""
    store = make_store()
    cet = datetime(2025, 3, 14, 16, 30, tzinfo=timezone(timedelta(hours=1)))
    bar = Bar("AAPL", cet, None, None, None, 1.0, None, None, interval="5m")
    store.write_bars([bar], provider="sim", fetched_at=NOW)
    assert raw(store, "SELECT interval, ts FROM bars") == [("5m", "2025-03-14T15:30:00+00:00")]


def test_naive_time_is_refused(make_store: MakeStore) -> None:
    """A naive datetime is refused rather than silently read as local time."""
    store = make_store()
    with pytest.raises(ValueError, match="naive"):
        store.start_run("daily", "cron", 1, datetime(2025, 3, 14))  # noqa: DTZ001


def test_batch_lands_whole_or_not_at_all(make_store: MakeStore) -> None:
    """A bar violating NOT NULL mid-batch raises StoreError and none of the batch lands."""
    store = make_store()
    store.write_bars([daily("AAPL", 10, 100.0)], provider="sim", fetched_at=NOW)
    # close=None breaks the Bar type on purpose to reach SQLite's NOT NULL constraint.
    bad = Bar("AAPL", date(2025, 3, 12), None, None, None, None, None, None)  # type: ignore[arg-type]
    batch = [daily("AAPL", 10, 555.0), daily("AAPL", 11), bad, daily("AAPL", 13)]
    with pytest.raises(StoreError, match=r"(?i)write_bars of 4 rows .*not.null") as info:
        store.write_bars(batch, provider="sim", fetched_at=NOW)
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError | psycopg.IntegrityError)
    assert raw(store, "SELECT ts, close FROM bars") == [("2025-03-10", 100.0)]


def test_transaction_groups_writes(make_store: MakeStore) -> None:
    """Writes inside transaction() are rolled back together when the block fails."""
    store = make_store()
    run_id = store.start_run("daily", "cron", 1, NOW)

    def write_then_fail() -> None:
        with store.transaction():
            store.write_bars([daily("AAPL", 10)], provider="sim", fetched_at=NOW)
            store.record_error(run_id, "MSFT", "sim", "timeout", "slow", NOW)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert store.bar_counts() == {}
    assert store.errors_for_run(run_id) == []


def test_run_lifecycle(make_store: MakeStore) -> None:
    """start_run, record_error and finish_run are read back by run() and errors_for_run()."""
    store = make_store()
    run_id = store.start_run("daily", "cron", 3, NOW)
    running = store.run(run_id)
    assert running is not None
    assert (running.status, running.started_at, running.finished_at) == ("running", NOW, None)
    store.record_error(run_id, "MSFT", "sim", "timeout", "no answer in 10s", NOW)
    end = NOW + timedelta(minutes=2)
    store.finish_run(
        run_id,
        status="partial",
        tickers_ok=2,
        tickers_failed=1,
        rows_written=40,
        error=None,
        now=end,
    )
    assert store.run(run_id) == RunRow(
        run_id, "daily", "cron", NOW, end, "partial", 3, 2, 1, 40, None
    )
    assert store.errors_for_run(run_id) == [("MSFT", "sim", "timeout", "no answer in 10s")]
    assert store.run(run_id + 1) is None


def test_finish_run_rejects_bad_status_and_unknown_run(make_store: MakeStore) -> None:
    """finish_run refuses a status outside RUN_STATUSES and a run id that does not exist."""
    store = make_store()

    def finish(run_id: int, status: str) -> None:
        store.finish_run(
            run_id,
            status=status,
            tickers_ok=0,
            tickers_failed=0,
            rows_written=0,
            error=None,
            now=NOW,
        )

    run_id = store.start_run("daily", "cron", 0, NOW)
    with pytest.raises(ValueError, match="'running'"):
        finish(run_id, "running")
    with pytest.raises(ValueError, match="'done'"):
        finish(run_id, "done")
    with pytest.raises(StoreError, match="no run with id 99"):
        finish(99, "ok")


def test_error_for_unknown_run_violates_foreign_key(make_store: MakeStore) -> None:
    """fetch_errors.run_id must name an existing run because foreign keys are on."""
    store = make_store()
    with pytest.raises(StoreError, match=r"(?i)foreign key"):
        store.record_error(42, "AAPL", "sim", "auth", "bad key", NOW)


def test_crash_left_running_run_is_marked_interrupted(make_store: MakeStore) -> None:
    """A run left running by a crash is marked interrupted at the next open."""
    crashed = make_store()
    stale = crashed.start_run("daily", "cron", 5, NOW)
    done = crashed.start_run("intraday", "manual", 1, NOW)
    crashed.finish_run(
        done, status="ok", tickers_ok=1, tickers_failed=0, rows_written=1, error=None, now=NOW
    )
    crashed.close()
    store = make_store()
    restart = NOW + timedelta(hours=1)
    assert store.mark_interrupted(restart) == 1
    row = store.run(stale)
    assert row is not None
    assert (row.status, row.finished_at) == ("interrupted", restart)
    assert store.mark_interrupted(restart) == 0


def test_a_live_run_of_another_process_is_never_marked_interrupted(
    make_store: MakeStore,
) -> None:
    """While another store has the database open, its running run is alive: left alone."""
    daemon = make_store()
    live = daemon.start_run("daily", "schedule", 5, NOW)
    by_hand = make_store()
    assert by_hand.mark_interrupted(NOW + timedelta(minutes=1)) == 0
    row = by_hand.run(live)
    assert row is not None
    assert row.status == "running"
    daemon.close()
    # PostgreSQL drops a closed session's locks when its server process exits, a moment later.
    deadline = time.monotonic() + 5
    while (marked := by_hand.mark_interrupted(NOW + timedelta(minutes=2))) == 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert marked == 1


def test_last_runs_keeps_newest_per_flow(make_store: MakeStore) -> None:
    """last_runs returns each flow's newest `limit` runs, newest first overall."""
    store = make_store()
    ids = {
        (flow, i): store.start_run(flow, "cron", 1, NOW + timedelta(minutes=i))
        for i in range(4)
        for flow in ("daily", "intraday")
    }
    got = [(r.flow, r.id) for r in store.last_runs(limit=2)]
    assert got == [
        ("intraday", ids["intraday", 3]),
        ("daily", ids["daily", 3]),
        ("intraday", ids["intraday", 2]),
        ("daily", ids["daily", 2]),
    ]


def test_readonly_store_reads_but_cannot_write(make_store: MakeStore) -> None:
    """A read-only store reads the data and raises StoreError on any write."""
    make_store().write_bars([daily("AAPL", 10)], provider="sim", fetched_at=NOW)
    reader = make_store(readonly=True)
    assert "read-only" in repr(reader)
    assert reader.bar_counts() == {"AAPL": 1}
    with pytest.raises(StoreError, match=r"readonly|read-only"):
        reader.write_bars([daily("AAPL", 11)], provider="sim", fetched_at=NOW)


def test_readonly_open_never_creates_a_database(tmp_path: Path) -> None:
    """Opening a missing file read-only raises StoreError and creates nothing."""
    with pytest.raises(StoreError, match="open of"):
        Store(tmp_path / "missing.db").open(readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_reader_sees_no_partial_batch(make_store: MakeStore) -> None:
    """A second connection reading during an open write transaction sees none of it."""
    store = make_store()
    with store.transaction():
        store.write_bars([daily("AAPL", d) for d in (10, 11)], provider="sim", fetched_at=NOW)
        assert raw(store, "SELECT COUNT(*) FROM bars") == [(0,)]
    assert raw(store, "SELECT COUNT(*) FROM bars") == [(2,)]


def wait_beside_a_write(make_store: MakeStore, bar: Bar, locked: str) -> Store:
    """While one store writes AAPL's 10 March in an open transaction, a writer of ``bar`` with
    a 0.05 s busy timeout fails (``locked`` matches why) and one with 10 s waits, then lands
    once the first commits. Returns the first store."""
    first = make_store()
    second = make_store(busy_timeout=10.0)
    impatient = make_store(busy_timeout=0.05)
    result: list[int] = []
    with first.transaction():
        first.write_bars([daily("AAPL", 10)], provider="sim", fetched_at=NOW)
        with pytest.raises(StoreError, match=locked):
            impatient.write_bars([bar], provider="sim", fetched_at=NOW)
        waiter = threading.Thread(
            target=lambda: result.append(second.write_bars([bar], provider="sim", fetched_at=NOW))
        )
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive()
    waiter.join(5)
    assert result == [1]
    return first


def test_second_writer_waits_for_busy_timeout(make_store: MakeStore, backend: str) -> None:
    """A second writer waits for the first one's transaction instead of failing."""
    sqlite_only(backend, "one writer at a time (PostgreSQL locks rows: see the next test)")
    first = wait_beside_a_write(make_store, daily("MSFT", 10), "locked")
    assert first.bar_counts() == {"AAPL": 1, "MSFT": 1}


def test_writers_of_the_same_rows_wait_for_each_other(make_store: MakeStore) -> None:
    """A writer of rows another transaction is writing waits (up to its busy timeout)."""
    first = wait_beside_a_write(make_store, daily("AAPL", 10, 98.0), r"locked|lock timeout")
    assert raw(first, "SELECT close FROM bars") == [(98.0,)]


def test_close_survives_optimize_blocked_by_another_writer(tmp_path: Path) -> None:
    """A second writer holding the lock makes PRAGMA optimize skip, never fail the close."""
    path = tmp_path / "opt.sqlite3"
    store = Store(path, busy_timeout=0.1).open()
    start = date(2000, 1, 1)
    bars = [
        Bar(f"S{i % 50}", start + timedelta(days=i), 1.0, 2.0, 0.5, 1.5, None, 10.0)
        for i in range(5000)
    ]
    store.write_bars(bars, provider="x", fetched_at=datetime.now(UTC))
    # An indexed query on the store's own connection marks the table for ANALYZE, which
    # optimize then needs the write lock for.
    assert first_bar_day(store, "S1", "x") == start + timedelta(days=1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with capture_logs() as logs:
            store.close()
    finally:
        other.close()
    assert [e["event"] for e in logs] == ["store.optimize_skipped"]
    assert raw_count(path) == 5000


def raw_count(path: Path) -> int:
    """Rows in ``bars`` read through a fresh connection."""
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM bars").fetchone()[0]
    return count


def test_last_good_run_ignores_backfills_and_refetches(make_store: MakeStore) -> None:
    """A good backfill, gap fill or split re-fetch never stands in for the flow's last good run."""
    store = make_store()
    now = datetime(2026, 11, 2, tzinfo=UTC)
    good = store.start_run("eod", "schedule", 1, now)
    store.finish_run(
        good, status="ok", tickers_ok=1, tickers_failed=0, rows_written=1, error=None, now=now
    )
    for minutes, trigger in enumerate(("backfill", "gaps-fill", "split-refetch"), start=1):
        later = now + timedelta(minutes=minutes)
        run_id = store.start_run("eod", trigger, 1, later)
        store.finish_run(
            run_id,
            status="ok",
            tickers_ok=1,
            tickers_failed=0,
            rows_written=1,
            error=None,
            now=later,
        )
    assert store.last_good_runs()["eod"].id == good
