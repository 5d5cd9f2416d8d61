"""The public SQLite schema: SQLModel table classes, the reader views, and their DDL.

Readers use plain SQL; these classes only define the tables (no ORM sessions are
used for writing). Times are ISO-8601 UTC text; daily ``bars.ts`` is ``YYYY-MM-DD``.
"""

from __future__ import annotations

from sqlalchemy import REAL, Index, Integer, Text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import registry
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import Field, SQLModel

__all__ = [
    "RUN_STATUSES",
    "VIEWS_DDL",
    "BarTable",
    "FetchErrorTable",
    "ProviderUsageTable",
    "RunTable",
    "StoreModel",
    "tables_ddl",
]

#: Every value ``runs.status`` may hold; ``running`` until the run finishes.
RUN_STATUSES = ("running", "ok", "partial", "failed", "interrupted", "cancelled")


class StoreModel(SQLModel, registry=registry()):
    """Base of the store's tables, with its own metadata so other modules' tables stay out."""


class BarTable(StoreModel, table=True):
    """``bars``: one OHLCV bar per (symbol, interval, ts)."""

    __tablename__ = "bars"

    symbol: str = Field(primary_key=True, sa_type=Text)
    interval: str = Field(primary_key=True, sa_type=Text)
    ts: str = Field(primary_key=True, sa_type=Text)
    open: float | None = Field(default=None, sa_type=REAL)
    high: float | None = Field(default=None, sa_type=REAL)
    low: float | None = Field(default=None, sa_type=REAL)
    close: float = Field(sa_type=REAL)
    adj_close: float | None = Field(default=None, sa_type=REAL)
    volume: float | None = Field(default=None, sa_type=REAL)
    provider: str = Field(sa_type=Text)
    fetched_at: str = Field(sa_type=Text)


class RunTable(StoreModel, table=True):
    """``runs``: one row per flow run, ``status`` one of ``RUN_STATUSES``."""

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


#: Reader views. ``latest_close``'s subquery is answered from the bars primary key.
VIEWS_DDL = (
    """
    CREATE VIEW latest_close AS
    SELECT b.symbol, b.ts, b.close, b.adj_close, b.provider
    FROM bars AS b
    WHERE b.interval = '1d'
      AND b.ts = (
        SELECT MAX(m.ts) FROM bars AS m WHERE m.symbol = b.symbol AND m.interval = '1d'
      )
    """,
)


def tables_ddl(*names: str) -> list[str]:
    """``CREATE TABLE``/``CREATE INDEX`` statements for the tables ``names``, in FK order."""
    dialect = sqlite.dialect()
    statements: list[str] = []
    for table in StoreModel.metadata.sorted_tables:
        if table.name not in names:
            continue
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements.extend(
            str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes
        )
    return statements
