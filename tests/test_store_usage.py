"""Tests for the quota ledger's table: provider_usage, its v1→v2 migration and store methods."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

from finappd.records import Bar
from finappd.store import SCHEMA_VERSION, Store, schema
from tests.conftest import MakeStore
from tests.pg import raw

NOW = datetime(2026, 3, 14, 21, 30, tzinfo=UTC)


def test_v1_database_gains_provider_usage_and_keeps_its_bars(tmp_path: Path) -> None:
    """A version-1 database with bars is migrated forward: provider_usage added, bars kept."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        schema.MIGRATIONS[0](conn)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO bars (symbol, interval, ts, close, provider, fetched_at) "
            "VALUES ('AAPL', '1d', '2026-03-13', 1.5, 'yahoo', '2026-03-13T22:00:00+00:00')"
        )
    finally:
        conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.bar_counts() == {"AAPL": 1}
        assert store.usage("yahoo", "2026-03-14") == (0, 0)


def test_add_usage_accumulates_per_day_and_sums_the_month(make_store: MakeStore) -> None:
    """Increments add up per (provider, day); usage() gives the day and month-to-day totals."""
    store = make_store()
    store.add_usage("av", {"2026-02-28": 7})
    store.add_usage("av", {"2026-03-01": 3, "2026-03-14": 2})
    store.add_usage("av", {"2026-03-14": 5})
    store.add_usage("av", {"2026-03-15": 100})  # after the day asked about
    store.add_usage("other", {"2026-03-14": 9})
    assert store.usage("av", "2026-03-14") == (7, 10)
    assert store.usage("av", "2026-03-01") == (3, 3)
    assert store.usage("nobody", "2026-03-14") == (0, 0)


def test_usage_is_readable_by_plain_sql_and_read_only_stores(make_store: MakeStore) -> None:
    """provider_usage is a public table: another program and a read-only Store both read it."""
    store = make_store()
    store.add_usage("yahoo", {"2026-03-14": 4})
    store.write_bars(
        [Bar("X", date(2026, 3, 13), None, None, None, 1.0, None, None)],
        provider="yahoo",
        fetched_at=NOW,
    )
    store.close()
    assert raw(store, "SELECT provider, day, requests FROM provider_usage") == [
        ("yahoo", "2026-03-14", 4)
    ]
    assert make_store(readonly=True).usage("yahoo", "2026-03-14") == (4, 4)
