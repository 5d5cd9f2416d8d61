"""Schema versions: ``PRAGMA user_version`` and the forward migrations that raise it.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``. Each step runs in
its own ``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump, so a
crash leaves the database at a whole version. Steps are append-only: a change to the
table classes in ``tables.py`` needs a new step, never an edit of an old one. A step
that changes a table an older step created from its class freezes that older step's
DDL as text first (v1's ``bars``, since v3 added columns to ``BarTable``; v1's
``latest_close``, since v4 added ``currency`` to it).

PostgreSQL (``store.url``) keeps its version in a one-row ``schema_version`` table. A new
PostgreSQL database is created at ``SCHEMA_VERSION`` in one transaction, from the same
table classes and view DDL the SQLite steps reach; one created by an older finappd (at
``PG_BASE_VERSION``, the first with PostgreSQL support, or later) takes the steps after
its version, which therefore run on both backends.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from finappd.errors import StoreError
from finappd.store._mixin import Connection, Dialect
from finappd.units import MINOR_UNITS

__all__ = ["MIGRATIONS", "PG_BASE_VERSION", "SCHEMA_VERSION", "migrate", "read_version"]


def _tables() -> ModuleType:
    """The table models, imported only when a step runs: SQLModel and SQLAlchemy take about
    0.45 s to import, which a start on an up-to-date database (every restart) never pays."""
    from finappd.store import tables

    return tables


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


#: ``latest_close`` as version 1 created it (v4 added ``currency``).
_LATEST_CLOSE_V1 = """
    CREATE VIEW latest_close AS
    SELECT b.symbol, b.ts, b.close, b.adj_close, b.provider
    FROM bars AS b
    WHERE b.interval = '1d'
      AND b.ts = (
        SELECT MAX(m.ts) FROM bars AS m WHERE m.symbol = b.symbol AND m.interval = '1d'
      )
    """


#: ``runs`` as version 1 created it (v5 added ``daemon`` and ``fire_at``), byte for byte.
_RUNS_V1 = (
    "\nCREATE TABLE runs (\n\tid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \n"
    '\tflow TEXT NOT NULL, \n\t"trigger" TEXT NOT NULL, \n\tstarted_at TEXT NOT NULL, \n'
    "\tfinished_at TEXT, \n\tstatus TEXT NOT NULL, \n\ttickers_total INTEGER, \n"
    "\ttickers_ok INTEGER, \n\ttickers_failed INTEGER, \n\trows_written INTEGER, \n"
    "\terror TEXT\n)\n\n",
    "CREATE INDEX ix_runs_flow_started_at ON runs (flow, started_at)",
)


def _create_v1(conn: Connection) -> None:
    """Version 1: bars, runs, fetch_errors and the latest_close view."""
    statements = (_BARS_V1, *_RUNS_V1, *_tables().tables_ddl("fetch_errors"), _LATEST_CLOSE_V1)
    for statement in statements:
        conn.execute(statement)


def _add_provider_usage_v2(conn: Connection) -> None:
    """Version 2: provider_usage, the quota ledger (requests per provider per quota day)."""
    for statement in _tables().tables_ddl("provider_usage"):
        conn.execute(statement)


def _add_market_data_v3(conn: Connection) -> None:
    """Version 3: bars.provisional and bars.adjustment, corporate actions, quotes, FX, backfill."""
    conn.execute("ALTER TABLE bars ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE bars ADD COLUMN adjustment TEXT")
    names = ("dividends", "splits", "quotes", "fx_rates", "backfill_chunks")
    for statement in (*_tables().tables_ddl(*names), _tables().LATEST_QUOTE_DDL):
        conn.execute(statement)


def _minor_units_v4(conn: Connection) -> None:
    """The provider's minor-unit codes as a temporary table ``_minor(code, currency, per)``."""
    conn.execute("CREATE TEMP TABLE _minor (code TEXT PRIMARY KEY, currency TEXT, per REAL)")
    conn.executemany(
        "INSERT INTO _minor VALUES (?, ?, ?)",
        [(code, currency, per) for code, (currency, per) in MINOR_UNITS.items()],
    )


#: Per (symbol, provider), the unit a v3 row's prices are in, as the newest quote or
#: dividend of the same provider recorded it (v3 stored prices as quoted, with no unit).
_UNIT_EVIDENCE_V4 = """
CREATE TEMP TABLE _unit AS
SELECT e.symbol, e.provider, e.code, COALESCE(m.currency, e.code) AS currency,
       COALESCE(m.per, 1) AS per
FROM (
  SELECT symbol, provider, code,
         ROW_NUMBER() OVER (PARTITION BY symbol, provider ORDER BY source, at DESC) AS n
  FROM (
    SELECT symbol, provider, currency AS code, 0 AS source, ts AS at
    FROM quotes WHERE currency IS NOT NULL
    UNION ALL
    SELECT symbol, provider, currency, 1, ex_date FROM dividends WHERE currency IS NOT NULL
  )
) AS e
LEFT JOIN _minor AS m ON m.code = e.code
WHERE e.n = 1 AND (m.code IS NOT NULL OR e.code GLOB '[A-Z][A-Z][A-Z]')
"""


def _units_v4(conn: Connection) -> None:
    """Version 4: instruments, settings, bars.currency; every price in a major unit.

    v3 rows hold prices as the provider quoted them. Where a quote or dividend of the
    same symbol and provider names the unit, bars are converted (pence / 100) and get
    their currency here, once: a row with a currency is never converted again. Other
    bars keep ``currency`` NULL until the first answer of that provider names the unit
    (``finappd.instruments``). Quotes and dividends in a minor unit are converted.
    """
    conn.execute("ALTER TABLE bars ADD COLUMN currency TEXT")
    for statement in _tables().tables_ddl("instruments", "settings"):
        conn.execute(statement)
    conn.execute("DROP VIEW latest_close")
    for statement in _tables().VIEWS_DDL:
        conn.execute(statement)
    _minor_units_v4(conn)
    conn.execute(_UNIT_EVIDENCE_V4)
    conn.execute(
        "UPDATE bars SET open = open / u.per, high = high / u.per, low = low / u.per, "
        "close = close / u.per, adj_close = adj_close / u.per, currency = u.currency "
        "FROM _unit AS u WHERE bars.symbol = u.symbol AND bars.provider = u.provider"
    )
    conn.execute(
        "UPDATE quotes SET price = price / m.per, previous_close = previous_close / m.per, "
        "currency = m.currency FROM _minor AS m WHERE quotes.currency = m.code"
    )
    conn.execute(
        "UPDATE dividends SET amount = amount / m.per, currency = m.currency "
        "FROM _minor AS m WHERE dividends.currency = m.code"
    )
    # One instruments row per symbol seen so far, first/last seen from the rows' fetch times.
    conn.execute(
        """
        INSERT INTO instruments (symbol, currency, quoted_unit, provider, first_seen,
                                 last_seen, not_found_runs, delisted, updated_at)
        SELECT s.symbol,
               COALESCE(
                 (SELECT u.currency FROM _unit AS u
                  WHERE u.symbol = s.symbol AND u.provider = s.provider),
                 (SELECT u.currency FROM _unit AS u WHERE u.symbol = s.symbol
                  ORDER BY u.provider LIMIT 1)),
               COALESCE(
                 (SELECT u.code FROM _unit AS u
                  WHERE u.symbol = s.symbol AND u.provider = s.provider),
                 (SELECT u.code FROM _unit AS u WHERE u.symbol = s.symbol
                  ORDER BY u.provider LIMIT 1)),
               s.provider, s.first_seen, s.last_seen, 0, 0, s.last_seen
        FROM (
          SELECT symbol, MIN(fetched_at) AS first_seen, MAX(fetched_at) AS last_seen,
                 (SELECT x.provider FROM bars AS x WHERE x.symbol = a.symbol
                  ORDER BY x.fetched_at DESC, x.ts DESC LIMIT 1) AS provider
          FROM (SELECT symbol, fetched_at FROM bars
                UNION ALL SELECT symbol, fetched_at FROM quotes) AS a
          GROUP BY symbol
        ) AS s
        """
    )
    conn.execute("DROP TABLE _unit")
    conn.execute("DROP TABLE _minor")


def _run_owner_v5(conn: Connection) -> None:
    """Version 5 (both backends): ``runs.daemon`` (which daemon ran it, ``daemon_name``) and
    ``runs.fire_at`` (the scheduled fire it ran for; NULL for runs started by hand)."""
    conn.execute("ALTER TABLE runs ADD COLUMN daemon TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN fire_at TEXT")


#: Ordered steps; ``MIGRATIONS[n]`` migrates version ``n`` to ``n + 1``.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _create_v1,
    _add_provider_usage_v2,
    _add_market_data_v3,
    _units_v4,
    _run_owner_v5,
)

#: The schema version this code reads and writes.
SCHEMA_VERSION = len(MIGRATIONS)

#: The oldest version a PostgreSQL database can be at (see the module docstring).
PG_BASE_VERSION = 4

#: Any number, the same in every finappd: migrations of one PostgreSQL database queue on it.
_PG_MIGRATION_LOCK = 0x66696E617070


def _create_pg(conn: Connection) -> None:
    """Every table, index and view of ``SCHEMA_VERSION``, on PostgreSQL."""
    tables = _tables()
    for statement in (
        *tables.tables_ddl(*tables.TABLE_NAMES, dialect="postgresql"),
        *tables.VIEWS_DDL,
        tables.LATEST_QUOTE_DDL,
    ):
        conn.execute(statement)


def read_version(conn: Connection, dialect: Dialect = "sqlite") -> int:
    """The database's schema version: ``PRAGMA user_version``, or PostgreSQL's
    ``schema_version`` row (0 when there is none yet)."""
    if dialect == "sqlite":
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version
    # A query of the catalog, not to_regclass(): after waiting for the migration lock, the
    # statement's fresh snapshot sees the table another daemon just created; the backend's
    # relation cache may not yet.
    exists = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_tables "
        "WHERE schemaname = current_schema() AND tablename = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def _set_version(conn: Connection, dialect: Dialect, version: int) -> None:
    if dialect == "sqlite":
        # PRAGMA takes no parameters; version is an int we computed.
        conn.execute(f"PRAGMA user_version = {version:d}")
        return
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _check_not_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than {SCHEMA_VERSION} which this "
            "finappd knows; upgrade finappd (downgrading a database is not supported)"
        )


def migrate(conn: Connection, where: str, dialect: Dialect = "sqlite") -> int:
    """Apply the missing steps to an autocommit connection; return how many ran.

    ``where`` names the database in error messages. Raises ``StoreError`` for a
    database newer than ``SCHEMA_VERSION``; the driver's errors propagate.
    """
    version = read_version(conn, dialect)
    _check_not_newer(version, where)
    applied = 0
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE" if dialect == "sqlite" else "BEGIN")
        try:
            if dialect == "postgresql":
                # PostgreSQL's DDL is transactional; the lock queues other daemons' starts.
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK,))
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = read_version(conn, dialect)
            _check_not_newer(version, where)
            if version < SCHEMA_VERSION:
                if dialect == "postgresql" and version < PG_BASE_VERSION:
                    _create_pg(conn)
                    version = SCHEMA_VERSION
                else:
                    MIGRATIONS[version](conn)
                    version += 1
                _set_version(conn, dialect, version)
                applied += 1
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied
