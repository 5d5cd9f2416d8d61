"""The public SQLite schema: SQLModel table classes, the reader views, and their DDL.

Readers use plain SQL; these classes only define the tables (no ORM sessions are
used for writing). Times are ISO-8601 UTC text; daily ``bars.ts`` is ``YYYY-MM-DD``
(the exchange-local trading date, never derived from a UTC instant).

Raw vs adjusted prices (schema v3, PROVIDERS.md §10.7). ``bars.open/high/low/close``
are what the provider calls its prices, and ``bars.adjustment`` says on which basis,
as the provider's spec declares it (``ProviderSpec.adjustment``):

- ``'none'``: as traded, no adjustment;
- ``'split'``: split-adjusted only, retroactively for every past split;
- ``NULL``: unknown (rows written before v3, or a provider that declares none).

``bars.adj_close`` is always split **and** dividend adjusted, ``NULL`` where the
provider has none. Never compare closes of two rows with different ``adjustment``;
the ``splits`` and ``dividends`` tables hold the events to convert between bases.
``bars.provisional`` is 1 for a bar of a session that was still open when it was
fetched; the first run after the close replaces it with 0.

Units (schema v4). Every price (``bars``, ``quotes``, ``dividends``) is in the major unit
of the ISO 4217 currency in the row's ``currency`` (``GBP``, never a provider's pence
``GBp``); ``NULL`` means unknown (a provider that names no currency, or a row written
before v4 whose unit no answer has told yet). ``instruments`` holds one row per flow
ticker; ``settings`` the values readers' views need (``base_currency``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import REAL, Dialect, Index, Integer, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import registry
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import DOUBLE_PRECISION, TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

__all__ = [
    "INSTRUMENT_TYPES",
    "LATEST_QUOTE_DDL",
    "TABLE_NAMES",
    "VIEWS_DDL",
    "BackfillChunkTable",
    "BarTable",
    "DividendTable",
    "FetchErrorTable",
    "FxRateTable",
    "InstrumentTable",
    "ProviderUsageTable",
    "QuoteTable",
    "RunTable",
    "SettingTable",
    "SplitTable",
    "StoreModel",
    "tables_ddl",
]

#: Every value ``instruments.type`` may hold.
INSTRUMENT_TYPES = ("equity", "etf", "fund", "index", "fx", "crypto", "future")


class Real(TypeDecorator[float]):
    """A price: SQLite's ``REAL`` (8 bytes), PostgreSQL's ``DOUBLE PRECISION`` (its ``REAL``
    has 4 bytes, about 7 digits: not enough for a price)."""

    impl = REAL
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``DOUBLE PRECISION`` on PostgreSQL, ``REAL`` elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DOUBLE_PRECISION())
        return dialect.type_descriptor(REAL())


class StoreModel(SQLModel, registry=registry()):
    """Base of the store's tables, with its own metadata so other modules' tables stay out."""


class BarTable(StoreModel, table=True):
    """``bars``: one OHLCV bar per (symbol, interval, ts)."""

    __tablename__ = "bars"

    symbol: str = Field(primary_key=True, sa_type=Text)
    interval: str = Field(primary_key=True, sa_type=Text)
    ts: str = Field(primary_key=True, sa_type=Text)
    open: float | None = Field(default=None, sa_type=Real)
    high: float | None = Field(default=None, sa_type=Real)
    low: float | None = Field(default=None, sa_type=Real)
    close: float = Field(sa_type=Real)
    adj_close: float | None = Field(default=None, sa_type=Real)
    volume: float | None = Field(default=None, sa_type=Real)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)
    # v3: added by ALTER TABLE, so they come last in the table's column order.
    provisional: int = Field(default=0, sa_type=Integer, sa_column_kwargs={"server_default": "0"})
    adjustment: str | None = Field(default=None, sa_type=Text)
    # v4: the ISO 4217 currency of the prices (added by ALTER TABLE as well).
    currency: str | None = Field(default=None, sa_type=Text)


class RunTable(StoreModel, table=True):
    """``runs``: one row per flow run, ``status`` one of ``store.runs.RUN_STATUSES``."""

    __tablename__ = "runs"
    # AUTOINCREMENT so an id is never reused after the newest run is deleted.
    __table_args__ = (
        Index("ix_runs_flow_started_at", "flow", "started_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    flow: str = Field(sa_type=Text)
    trigger: str = Field(sa_type=Text)
    started_at: str = Field(sa_type=Text)
    finished_at: str | None = Field(default=None, sa_type=Text)
    status: str = Field(sa_type=Text)
    tickers_total: int | None = Field(default=None, sa_type=Integer)
    tickers_ok: int | None = Field(default=None, sa_type=Integer)
    tickers_failed: int | None = Field(default=None, sa_type=Integer)
    rows_written: int | None = Field(default=None, sa_type=Integer)
    error: str | None = Field(default=None, sa_type=Text)
    # v5: added by ALTER TABLE (both backends).
    daemon: str | None = Field(default=None, sa_type=Text)
    fire_at: str | None = Field(default=None, sa_type=Text)


class FetchErrorTable(StoreModel, table=True):
    """``fetch_errors``: why one symbol failed in one run."""

    __tablename__ = "fetch_errors"

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    run_id: int | None = Field(default=None, foreign_key="runs.id", index=True, sa_type=Integer)
    symbol: str | None = Field(default=None, sa_type=Text)
    provider: str | None = Field(default=None, sa_type=Text)
    kind: str | None = Field(default=None, sa_type=Text)
    message: str | None = Field(default=None, sa_type=Text)
    at: str | None = Field(default=None, sa_type=Text)


class ProviderUsageTable(StoreModel, table=True):
    """``provider_usage``: requests sent per provider per quota day (``YYYY-MM-DD``)."""

    __tablename__ = "provider_usage"

    provider: str = Field(primary_key=True, sa_type=Text)
    day: str = Field(primary_key=True, sa_type=Text)
    requests: int = Field(default=0, sa_type=Integer)


class DividendTable(StoreModel, table=True):
    """``dividends``: a cash dividend of ``amount`` per share going ex on ``ex_date``."""

    __tablename__ = "dividends"

    symbol: str = Field(primary_key=True, sa_type=Text)
    ex_date: str = Field(primary_key=True, sa_type=Text)
    amount: float = Field(sa_type=Real)
    currency: str | None = Field(default=None, sa_type=Text)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)


class SplitTable(StoreModel, table=True):
    """``splits``: ``numerator``:``denominator`` on ``ex_date`` (4:1, one share became four)."""

    __tablename__ = "splits"

    symbol: str = Field(primary_key=True, sa_type=Text)
    ex_date: str = Field(primary_key=True, sa_type=Text)
    numerator: float = Field(sa_type=Real)
    denominator: float = Field(sa_type=Real)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)


class QuoteTable(StoreModel, table=True):
    """``quotes``: price snapshots over time, ``ts`` the provider's UTC instant."""

    __tablename__ = "quotes"

    symbol: str = Field(primary_key=True, sa_type=Text)
    ts: str = Field(primary_key=True, sa_type=Text)
    price: float = Field(sa_type=Real)
    currency: str | None = Field(default=None, sa_type=Text)
    previous_close: float | None = Field(default=None, sa_type=Real)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)


class FxRateTable(StoreModel, table=True):
    """``fx_rates``: ``rate`` units of ``quote`` per ``base`` on the publisher's ``day``."""

    __tablename__ = "fx_rates"

    base: str = Field(primary_key=True, sa_type=Text)
    quote: str = Field(primary_key=True, sa_type=Text)
    day: str = Field(primary_key=True, sa_type=Text)
    rate: float = Field(sa_type=Real)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)


class BackfillChunkTable(StoreModel, table=True):
    """``backfill_chunks``: one chunk of a backfill, ``[start, end]``, and how far it got."""

    __tablename__ = "backfill_chunks"

    flow: str = Field(primary_key=True, sa_type=Text)
    symbol: str = Field(primary_key=True, sa_type=Text)
    start: str = Field(primary_key=True, sa_type=Text)
    end: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    rows: int = Field(default=0, sa_type=Integer)
    updated_at: str = Field(sa_type=Text)


class InstrumentTable(StoreModel, table=True):
    """``instruments``: one row per flow ticker, what answers and the config say of it.

    ``currency`` is ISO 4217 (``GBP``), ``quoted_unit`` what the provider quotes in
    (``GBp``: pence), ``exchange`` an ISO 10383 MIC. ``not_found_runs`` counts the runs in
    a row that found no such symbol; past the configured number the ticker is
    ``delisted`` and asked again only at ``next_check``.
    """

    __tablename__ = "instruments"

    symbol: str = Field(primary_key=True, sa_type=Text)
    name: str | None = Field(default=None, sa_type=Text)
    type: str | None = Field(default=None, sa_type=Text)
    exchange: str | None = Field(default=None, sa_type=Text)
    exchange_timezone: str | None = Field(default=None, sa_type=Text)
    currency: str | None = Field(default=None, sa_type=Text)
    quoted_unit: str | None = Field(default=None, sa_type=Text)
    isin: str | None = Field(default=None, sa_type=Text)
    provider: str | None = Field(default=None, sa_type=Text)
    first_seen: str | None = Field(default=None, sa_type=Text)
    last_seen: str | None = Field(default=None, sa_type=Text)
    not_found_runs: int = Field(
        default=0, sa_type=Integer, sa_column_kwargs={"server_default": "0"}
    )
    delisted: int = Field(default=0, sa_type=Integer, sa_column_kwargs={"server_default": "0"})
    next_check: str | None = Field(default=None, sa_type=Text)
    updated_at: str = Field(sa_type=Text)


class SettingTable(StoreModel, table=True):
    """``settings``: configuration the reader views use, e.g. ``('base_currency', 'EUR')``."""

    __tablename__ = "settings"

    key: str = Field(primary_key=True, sa_type=Text)
    value: str = Field(sa_type=Text)
    updated_at: str = Field(sa_type=Text)


#: Reader views (v4). The ``latest_*`` views walk the distinct symbols of the bars primary
#: key and look up each one's newest day in it: 0.4 s for 2,000 symbols x 500 days, where
#: v1's ``latest_close`` (a MAX subquery per bar) took 7.8 s; one symbol takes < 1 ms.
#: ``closes_in_base`` converts each daily close into ``settings.base_currency`` with the
#: newest ``fx_rates`` row on or before the bar's day (the last known rate carries over
#: weekends and holidays): the direct pair, else the inverse pair, else a cross through a
#: currency both are quoted against on the same day (the ECB's EUR rates).
VIEWS_DDL = (
    """
    CREATE VIEW latest_close AS
    SELECT b.symbol, b.ts, b.close, b.adj_close, b.provider, b.currency
    FROM (SELECT DISTINCT symbol FROM bars) AS s
    JOIN bars AS b ON b.symbol = s.symbol AND b.interval = '1d'
      AND b.ts = (
        SELECT MAX(m.ts) FROM bars AS m WHERE m.symbol = s.symbol AND m.interval = '1d'
      )
    """,
    """
    CREATE VIEW closes_in_base AS
    SELECT c.symbol, c.ts, c.close, c.adj_close, c.currency, c.base_currency, c.fx_rate,
           c.close * c.fx_rate AS close_in_base, c.adj_close * c.fx_rate AS adj_close_in_base
    FROM (
      SELECT b.symbol, b.ts, b.close, b.adj_close, b.currency, s.value AS base_currency,
        CASE WHEN b.currency IS NULL OR s.value IS NULL THEN NULL
             WHEN b.currency = s.value THEN 1.0
             ELSE COALESCE(
               (SELECT r.rate FROM fx_rates AS r
                WHERE r.base = b.currency AND r.quote = s.value AND r.day <= b.ts
                ORDER BY r.day DESC LIMIT 1),
               (SELECT 1.0 / r.rate FROM fx_rates AS r
                WHERE r.base = s.value AND r.quote = b.currency AND r.day <= b.ts
                ORDER BY r.day DESC LIMIT 1),
               (SELECT t.rate / f.rate FROM fx_rates AS t
                JOIN fx_rates AS f ON f.base = t.base AND f.day = t.day AND f.quote = b.currency
                WHERE t.quote = s.value AND t.day <= b.ts
                ORDER BY t.day DESC LIMIT 1)
             )
        END AS fx_rate
      FROM bars AS b
      LEFT JOIN settings AS s ON s.key = 'base_currency'
      WHERE b.interval = '1d'
    ) AS c
    """,
    """
    CREATE VIEW latest_close_in_base AS
    SELECT c.symbol, c.ts, c.close, c.currency, c.base_currency, c.fx_rate, c.close_in_base
    FROM (SELECT DISTINCT symbol FROM bars) AS s
    JOIN closes_in_base AS c ON c.symbol = s.symbol
      AND c.ts = (
        SELECT MAX(m.ts) FROM bars AS m WHERE m.symbol = s.symbol AND m.interval = '1d'
      )
    """,
)


#: v3 view: the newest quote per symbol, answered from the quotes primary key.
LATEST_QUOTE_DDL = """
CREATE VIEW latest_quote AS
SELECT q.symbol, q.ts, q.price, q.currency, q.previous_close, q.provider
FROM quotes AS q
WHERE q.ts = (SELECT MAX(m.ts) FROM quotes AS m WHERE m.symbol = q.symbol)
"""


#: Every table, in the order ``tables_ddl`` creates them.
TABLE_NAMES = tuple(table.name for table in StoreModel.metadata.sorted_tables)

_DIALECTS = {"sqlite": sqlite.dialect, "postgresql": postgresql.dialect}


def tables_ddl(*names: str, dialect: str = "sqlite") -> list[str]:
    """``CREATE TABLE``/``CREATE INDEX`` statements for the tables ``names``, in FK order."""
    compiler = _DIALECTS[dialect]()
    statements: list[str] = []
    for table in StoreModel.metadata.sorted_tables:
        if table.name not in names:
            continue
        statements.append(str(CreateTable(table).compile(dialect=compiler)))
        statements.extend(
            str(CreateIndex(index).compile(dialect=compiler)) for index in table.indexes
        )
    return statements
