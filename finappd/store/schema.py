"""Schema versions: ``PRAGMA user_version`` and the forward migrations that raise it.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``. Each step runs in
its own ``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump, so a
crash leaves the database at a whole version. Steps are append-only: a change to the
table classes in ``tables.py`` needs a new step, never an edit of an old one. A step
that changes a table an older step created from its class freezes that older step's
DDL as text first (v1's ``bars``, since v3 added columns to ``BarTable``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from finappd.errors import StoreError
from finappd.store.tables import LATEST_QUOTE_DDL, VIEWS_DDL, tables_ddl

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "read_version"]


#: ``bars`` as version 1 created it (v3 added ``provisional`` and ``adjustment``).
_BARS_V1 = """
CREATE TABLE bars (
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    ts TEXT NOT NULL,
    open REAL,
    high REAL,
    low REAL,
    close REAL NOT NULL,
    adj_close REAL,
    volume REAL,
    provider TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (symbol, interval, ts)
)
"""


def _create_v1(conn: sqlite3.Connection) -> None:
    """Version 1: bars, runs, fetch_errors and the latest_close view."""
    for statement in (_BARS_V1, *tables_ddl("runs", "fetch_errors"), *VIEWS_DDL):
        conn.execute(statement)


def _add_provider_usage_v2(conn: sqlite3.Connection) -> None:
    """Version 2: provider_usage, the quota ledger (requests per provider per quota day)."""
    for statement in tables_ddl("provider_usage"):
        conn.execute(statement)


def _add_market_data_v3(conn: sqlite3.Connection) -> None:
    """Version 3: bars.provisional and bars.adjustment, corporate actions, quotes, FX, backfill."""
    conn.execute("ALTER TABLE bars ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE bars ADD COLUMN adjustment TEXT")
    names = ("dividends", "splits", "quotes", "fx_rates", "backfill_chunks")
    for statement in (*tables_ddl(*names), LATEST_QUOTE_DDL):
        conn.execute(statement)


#: Ordered steps; ``MIGRATIONS[n]`` migrates version ``n`` to ``n + 1``.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_v1,
    _add_provider_usage_v2,
    _add_market_data_v3,
)

#: The schema version this code reads and writes.
SCHEMA_VERSION = len(MIGRATIONS)


def read_version(conn: sqlite3.Connection) -> int:
    """The database's ``PRAGMA user_version``."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _check_not_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than {SCHEMA_VERSION} which this "
            "finappd knows; upgrade finappd (downgrading a database is not supported)"
        )


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Apply the missing steps to an autocommit connection; return how many ran.

    ``where`` names the database in error messages. Raises ``StoreError`` for a
    database newer than ``SCHEMA_VERSION``; ``sqlite3.Error`` propagates.
    """
    version = read_version(conn)
    _check_not_newer(version, where)
    applied = 0
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = read_version(conn)
            _check_not_newer(version, where)
            if version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                # PRAGMA takes no parameters; version is an int we computed.
                conn.execute(f"PRAGMA user_version = {version:d}")
                applied += 1
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied
