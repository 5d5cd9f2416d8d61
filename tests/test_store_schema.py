"""Tests for finappd.store's schema: creation, forward migration, the reader views."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from finappd.errors import StoreError
from finappd.records import Bar
from finappd.store import SCHEMA_VERSION, Store, schema
from finappd.store.pg import PgStore
from tests.pg import PgServer

NOW = datetime(2025, 3, 14, 21, 30, tzinfo=UTC)


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` read with a plain sqlite3 connection, as an outside reader would."""
    conn = sqlite3.connect(path)
    try:
        rows: list[tuple[object, ...]] = conn.execute(sql).fetchall()
    finally:
        conn.close()
    return rows


def objects(path: Path) -> list[tuple[object, ...]]:
    """Type and name of every table, index and view we created, sorted."""
    return sorted(
        query(path, "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    )


def test_empty_database_is_migrated_to_current_version(tmp_path: Path) -> None:
    """An existing version-0 (empty) database gets every table, index and view on open."""
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert objects(path) == [
        ("index", "ix_fetch_errors_run_id"),
        ("index", "ix_runs_flow_started_at"),
        ("table", "backfill_chunks"),
        ("table", "bars"),
        ("table", "dividends"),
        ("table", "fetch_errors"),
        ("table", "fx_rates"),
        ("table", "instruments"),
        ("table", "provider_usage"),
        ("table", "quotes"),
        ("table", "runs"),
        ("table", "settings"),
        ("table", "splits"),
        ("view", "closes_in_base"),
        ("view", "latest_close"),
        ("view", "latest_close_in_base"),
        ("view", "latest_quote"),
    ]


def test_v2_database_with_bars_is_migrated_to_v3(tmp_path: Path) -> None:
    """A v2 database keeps its bars, which read provisional 0 and adjustment NULL after v3."""
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in schema.MIGRATIONS[:2]:
        step(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO bars (symbol, interval, ts, close, provider, fetched_at) "
        "VALUES ('AAPL', '1d', '2025-03-10', 1.5, 'yahoo', '2025-03-10T21:00:00+00:00')"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        bar = Bar("MSFT", date(2025, 3, 10), None, None, None, 2.0, None, None, provisional=True)
        store.write_bars([bar], provider="yahoo", fetched_at=NOW, adjustment="split")
    assert query(path, "SELECT symbol, close, provisional, adjustment FROM bars ORDER BY 1") == [
        ("AAPL", 1.5, 0, None),
        ("MSFT", 2.0, 1, "split"),
    ]


def test_latest_quote_view_returns_newest_quote_per_symbol(tmp_path: Path) -> None:
    """latest_quote has one row per symbol: its quote with the newest ts."""
    path = tmp_path / "quotes.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO quotes (symbol, ts, price, provider, fetched_at) VALUES (?, ?, ?, 'y', 'x')",
        [("A", "2025-03-10T14:00:00+00:00", 1.0), ("A", "2025-03-10T14:05:00+00:00", 2.0)],
    )
    conn.commit()
    conn.close()
    assert query(path, "SELECT symbol, price FROM latest_quote") == [("A", 2.0)]


def test_current_database_is_left_untouched(tmp_path: Path) -> None:
    """Migrating a database already at SCHEMA_VERSION runs no step and keeps its data."""
    path = tmp_path / "current.db"
    with Store(path) as store:
        bar = Bar("AAPL", date(2025, 3, 10), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
        store.write_bars([bar], provider="s", fetched_at=NOW)
    before = objects(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert schema.migrate(conn, "current.db") == 0
        assert not conn.in_transaction
    finally:
        conn.close()
    assert objects(path) == before
    assert query(path, "SELECT symbol, close FROM bars") == [("AAPL", 1.0)]


def test_newer_database_is_refused(tmp_path: Path) -> None:
    """A database with a newer user_version than the code knows raises StoreError."""
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = Store(path)
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than {SCHEMA_VERSION} .* upgrade"
    with pytest.raises(StoreError, match=newer):
        store.open()
    assert repr(store).startswith("<Store closed")


def test_readonly_open_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    """A read-only store does not migrate, so an old database is reported, not changed."""
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match=r"schema version 0, .* start the daemon"):
        Store(path).open(readonly=True)
    assert query(path, "PRAGMA user_version") == [(0,)]


def test_steps_apply_in_order_and_a_failed_step_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step commits with its version bump; a failing step leaves the previous version."""

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE notes (text TEXT)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INT)")
        conn.execute("THIS IS NOT SQL")

    path = tmp_path / "steps.db"
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, add_notes, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    with pytest.raises(StoreError, match=r'open of .*steps\.db failed: near "THIS"'):
        Store(path).open()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    names = [name for _, name in objects(path)]
    assert "notes" in names
    assert "half_done" not in names


def test_latest_close_view_returns_newest_daily_bar_per_symbol(tmp_path: Path) -> None:
    """latest_close has one row per symbol: its newest daily bar with its currency, no intraday."""
    path = tmp_path / "view.db"
    with Store(path) as store:
        bars = [
            Bar("AAPL", date(2025, 3, d), None, None, None, 100.0 + d, 99.0 + d, None)
            for d in (12, 10, 11)
        ]
        store.write_bars(bars, provider="a", fetched_at=NOW)
        msft = Bar("MSFT", date(2025, 3, 7), None, None, None, 300.0, None, None, currency="USD")
        store.write_bars([msft], provider="b", fetched_at=NOW)
        intraday = Bar("AAPL", NOW, None, None, None, 999.0, None, None, interval="5m")
        store.write_bars([intraday], provider="a", fetched_at=NOW)
    assert query(path, "SELECT * FROM latest_close ORDER BY symbol") == [
        ("AAPL", "2025-03-12", 112.0, 111.0, "a", None),
        ("MSFT", "2025-03-07", 300.0, None, "b", "USD"),
    ]


def _pg_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def test_postgresql_gets_the_same_tables_columns_and_views(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """One schema: a new PostgreSQL database has SQLite's tables and views with the same
    columns in the same order, prices in double precision, and its version in schema_version."""
    path = tmp_path / "s.db"
    Store(path).open().close()
    url = pg_server.create()
    PgStore(url).open().close()
    sqlite_tables = {
        name: [c[1] for c in query(path, f"PRAGMA table_info({name})")]
        for (kind, name) in objects(path)
        if kind in ("table", "view")
    }
    pg_columns: dict[str, list[object]] = {}
    for table, column in _pg_rows(
        url,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    ):
        pg_columns.setdefault(str(table), []).append(column)
    views = _pg_rows(
        url,
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1",
    )
    assert pg_columns.pop("schema_version") == ["version"]
    assert pg_columns == sqlite_tables
    assert [v for (v,) in views] == [n for (k, n) in objects(path) if k == "view"]
    assert _pg_rows(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert _pg_rows(
        url,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'bars' AND column_name = 'close'",
    ) == [("double precision",)]


def test_postgresql_refuses_a_newer_or_unmigrated_database(pg_server: PgServer) -> None:
    """As on SQLite: a newer schema is refused, a read-only open never migrates."""
    url = pg_server.create()
    with pytest.raises(StoreError, match="start the daemon once to migrate"):
        PgStore(url).open(readonly=True)
    PgStore(url).open().close()
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer than"):
        PgStore(url).open()


def test_daemons_starting_together_migrate_a_postgresql_database_once(
    pg_server: PgServer,
) -> None:
    """Three stores opening one new database at once: one creates it, all open it."""
    url = pg_server.create()
    stores = [PgStore(url) for _ in range(3)]
    errors: list[BaseException] = []

    def open_one(store: PgStore) -> None:
        try:
            store.open()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        assert all(s.schema_version == SCHEMA_VERSION for s in stores)
        assert _pg_rows(url, "SELECT count(*) FROM schema_version") == [(1,)]
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_v4_database_gains_the_run_owner_columns(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """v5 runs on both backends: a v4 database's runs gain ``daemon`` and ``fire_at``."""
    if backend == "sqlite":
        path = tmp_path / "v4.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for step in schema.MIGRATIONS[:4]:
                step(conn)
            conn.execute(
                'INSERT INTO runs (flow, "trigger", started_at, status) '
                "VALUES ('eod', 'schedule', '2026-01-02T00:00:00+00:00', 'ok')"
            )
            conn.execute("PRAGMA user_version = 4")
        finally:
            conn.close()
        store: Store = Store(path)
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create()
        PgStore(url).open().close()
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as pg:
            pg.execute("ALTER TABLE runs DROP COLUMN daemon")
            pg.execute("ALTER TABLE runs DROP COLUMN fire_at")
            pg.execute("UPDATE schema_version SET version = 4")
            pg.execute(
                'INSERT INTO runs (flow, "trigger", started_at, status) '
                "VALUES ('eod', 'schedule', '2026-01-02T00:00:00+00:00', 'ok')"
            )
        store = PgStore(url)
    with store:
        assert store.schema_version == SCHEMA_VERSION
        [old] = store.last_runs()
        assert (old.flow, old.daemon) == ("eod", None)
        run_id = store.start_run(
            "eod", "schedule", 1, NOW, daemon="alpha", fire_at=datetime(2026, 1, 2, tzinfo=UTC)
        )
        new = store.run(run_id)
        assert new is not None
        assert new.daemon == "alpha"
