"""Writes and reads of the market-data tables: dividends, splits, quotes, fx_rates, backfill.

Quote prices and dividend amounts are written in the major unit of their currency
(``GBp`` pence become ``GBP``, ``finappd.units``).

Each function takes the :class:`~finappd.store.Store` and runs in its own ``BEGIN
IMMEDIATE`` transaction, or joins the one already open (a flow's batch transaction, so a
ticker's bars, actions and chunk status land together). Like every store call they run
on the writer thread only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from finappd.records import Dividend, FxRate, Quote, Split
from finappd.store._mixin import Connection
from finappd.store.store import Store
from finappd.units import dividend_in, quote_in

__all__ = [
    "ChunkRow",
    "chunk_rows",
    "ensure_chunks",
    "first_bar_day",
    "known_splits",
    "mark_chunk",
    "write_dividends",
    "write_fx_rates",
    "write_quotes",
    "write_splits",
]

#: The values ``backfill_chunks.status`` may hold.
CHUNK_STATUSES = ("pending", "done", "failed")


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@contextmanager
def _conn(store: Store, operation: str) -> Iterator[Connection]:
    # Store._write is the store's one transaction primitive (join-or-begin, StoreError on
    # failure); these tables live in their own module to keep store.py one concept.
    with store._write(operation) as conn:
        yield conn


def _upsert(
    store: Store, table: str, sql: str, rows: Sequence[tuple[object, ...]], fetched_at: datetime
) -> int:
    """Run ``sql`` once per row, ``fetched_at`` appended, in one transaction; return rows."""
    if rows:
        fetched = _text(fetched_at)
        with _conn(store, f"write_{table} of {len(rows)} rows") as conn:
            conn.executemany(sql, [(*row, fetched) for row in rows])
    return len(rows)


def write_dividends(
    store: Store, dividends: Sequence[Dividend], *, provider: str, fetched_at: datetime
) -> int:
    """Upsert dividends by (symbol, ex_date), amounts in major units; return rows written."""
    major = [dividend_in(d) for d in dividends]
    rows = [(d.symbol, d.ex_date.isoformat(), d.amount, d.currency, provider) for d in major]
    return _upsert(
        store,
        "dividends",
        "INSERT INTO dividends (symbol, ex_date, amount, currency, provider, fetched_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, ex_date) DO UPDATE SET "
        "amount = excluded.amount, currency = excluded.currency, "
        "provider = excluded.provider, fetched_at = excluded.fetched_at",
        rows,
        fetched_at,
    )


def known_splits(store: Store, symbol: str) -> set[date]:
    """Ex-dates of the splits of ``symbol`` already stored."""
    with _conn(store, f"known_splits of {symbol}") as conn:
        rows = conn.execute("SELECT ex_date FROM splits WHERE symbol = ?", (symbol,))
        return {date.fromisoformat(r[0]) for r in rows}


def write_splits(
    store: Store, splits: Sequence[Split], *, provider: str, fetched_at: datetime
) -> int:
    """Upsert splits by (symbol, ex_date); return rows written."""
    rows = [(s.symbol, s.ex_date.isoformat(), s.numerator, s.denominator, provider) for s in splits]
    return _upsert(
        store,
        "splits",
        "INSERT INTO splits (symbol, ex_date, numerator, denominator, provider, "
        "fetched_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, ex_date) DO UPDATE "
        "SET numerator = excluded.numerator, denominator = excluded.denominator, "
        "provider = excluded.provider, fetched_at = excluded.fetched_at",
        rows,
        fetched_at,
    )


def first_bar_day(store: Store, symbol: str, provider: str) -> date | None:
    """The oldest daily bar of ``symbol`` stored from ``provider``, or None."""
    with _conn(store, f"first_bar_day of {symbol}") as conn:
        row = conn.execute(
            "SELECT MIN(ts) FROM bars WHERE symbol = ? AND interval = '1d' AND provider = ?",
            (symbol, provider),
        ).fetchone()
    return None if row[0] is None else date.fromisoformat(row[0][:10])


def write_quotes(
    store: Store, quotes: Sequence[Quote], *, provider: str, fetched_at: datetime
) -> int:
    """Append quote snapshots in major units (a repeat of (symbol, ts) is updated); return rows."""
    major = [quote_in(q) for q in quotes]
    rows = [(q.symbol, _text(q.ts), q.price, q.currency, q.previous_close, provider) for q in major]
    return _upsert(
        store,
        "quotes",
        "INSERT INTO quotes (symbol, ts, price, currency, previous_close, provider, "
        "fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, ts) DO UPDATE "
        "SET price = excluded.price, currency = excluded.currency, "
        "previous_close = excluded.previous_close, provider = excluded.provider, "
        "fetched_at = excluded.fetched_at",
        rows,
        fetched_at,
    )


def write_fx_rates(
    store: Store, rates: Sequence[FxRate], *, provider: str, fetched_at: datetime
) -> int:
    """Upsert FX rates by (base, quote, day); return rows written."""
    rows = [(r.base, r.quote, r.day.isoformat(), r.rate, provider) for r in rates]
    return _upsert(
        store,
        "fx_rates",
        "INSERT INTO fx_rates (base, quote, day, rate, provider, fetched_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (base, quote, day) DO UPDATE SET "
        "rate = excluded.rate, provider = excluded.provider, "
        "fetched_at = excluded.fetched_at",
        rows,
        fetched_at,
    )


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One row of ``backfill_chunks``."""

    symbol: str
    start: date
    end: date
    status: str
    rows: int


def ensure_chunks(
    store: Store, flow: str, chunks: Sequence[tuple[str, date, date]], now: datetime
) -> None:
    """Insert ``(symbol, start, end)`` chunks of ``flow`` as pending unless already there."""
    with _conn(store, f"ensure_chunks of {flow}") as conn:
        conn.executemany(
            'INSERT INTO backfill_chunks (flow, symbol, start, "end", status, rows, updated_at) '
            "VALUES (?, ?, ?, ?, 'pending', 0, ?) ON CONFLICT (flow, symbol, start) DO NOTHING",
            [(flow, s, a.isoformat(), b.isoformat(), _text(now)) for s, a, b in chunks],
        )


def chunk_rows(store: Store, flow: str) -> list[ChunkRow]:
    """Every chunk of ``flow``'s backfills, by symbol and start."""
    with _conn(store, f"chunk_rows of {flow}") as conn:
        rows = conn.execute(
            'SELECT symbol, start, "end", status, rows FROM backfill_chunks WHERE flow = ? '
            "ORDER BY symbol, start",
            (flow,),
        ).fetchall()
    return [
        ChunkRow(r[0], date.fromisoformat(r[1]), date.fromisoformat(r[2]), r[3], r[4]) for r in rows
    ]


def mark_chunk(
    store: Store,
    flow: str,
    symbol: str,
    start: date,
    *,
    status: str,
    rows: int,
    now: datetime,
) -> None:
    """Set one chunk's status (``pending``/``done``/``failed``) and row count."""
    if status not in CHUNK_STATUSES:
        raise ValueError(f"a chunk cannot have status {status!r}")
    with _conn(store, f"mark_chunk of {flow}/{symbol}") as conn:
        conn.execute(
            "UPDATE backfill_chunks SET status = ?, rows = ?, updated_at = ? "
            "WHERE flow = ? AND symbol = ? AND start = ?",
            (status, rows, _text(now), flow, symbol, start.isoformat()),
        )
