"""Reads and writes of ``instruments`` and ``settings``, and the one-time conversion of v3 bars.

Like :mod:`finappd.store.market`, each function takes the :class:`~finappd.store.Store`,
runs on the writer thread, and joins the transaction already open (a flow's batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cache
from operator import attrgetter

from finappd.store._mixin import Connection, execute_rows
from finappd.store.store import Store
from finappd.units import Unit

__all__ = [
    "Instrument",
    "NotFound",
    "Streak",
    "convert_unitless_bars",
    "delisted_until",
    "last_closes",
    "not_found_streaks",
    "read_instruments",
    "record_described",
    "record_found",
    "record_not_found",
    "record_seen",
    "write_setting",
]


@dataclass(frozen=True, slots=True)
class Instrument:
    """The descriptive columns of one ``instruments`` row (see ``InstrumentTable``)."""

    symbol: str
    name: str | None = None
    type: str | None = None
    exchange: str | None = None
    exchange_timezone: str | None = None
    currency: str | None = None
    quoted_unit: str | None = None
    isin: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class NotFound:
    """A ticker's not-found streak after one more "no such symbol"."""

    runs: int
    delisted: bool
    next_check: datetime | None


_COLUMNS = tuple(f.name for f in fields(Instrument))
#: An instrument's values of ``_COLUMNS``, in order, as a tuple (one C call per row).
_row: Callable[[Instrument], tuple[str | None, ...]] = attrgetter(*_COLUMNS)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@contextmanager
def _conn(store: Store, operation: str) -> Iterator[Connection]:
    # Store._write is the store's one transaction primitive (join-or-begin, StoreError).
    with store._write(operation) as conn:
        store.writes += 1  # every write to instruments passes here
        yield conn


@contextmanager
def _read(store: Store, operation: str) -> Iterator[Connection]:
    # Reads need no write lock, so they work on a read-only store (``finappd status``).
    with store._guard(operation) as conn:
        yield conn


#: Most symbols one ``IN (...)`` list carries (SQLite allows 32766 parameters).
_CHUNK = 500


def _chunks(symbols: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def read_instruments(store: Store, symbols: Iterable[str] | None = None) -> dict[str, Instrument]:
    """The stored instruments (all of them, or those of ``symbols``), by symbol."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM instruments"  # noqa: S608 (column constants)
    with _read(store, "read_instruments") as conn:
        if symbols is None:
            rows = conn.execute(sql).fetchall()
        else:
            rows = []
            for chunk in _chunks(symbols):
                where = f" WHERE symbol IN ({', '.join('?' * len(chunk))})"
                rows += conn.execute(sql + where, chunk).fetchall()
    return {row[0]: Instrument(*row) for row in rows}


def last_closes(store: Store, symbols: Iterable[str]) -> dict[str, float]:
    """Each of ``symbols``' newest daily close stored with a currency (a major unit)."""
    found: dict[str, float] = {}
    with _read(store, "last_closes") as conn:
        for chunk in _chunks(symbols):
            rows = conn.execute(
                "SELECT i.symbol, (SELECT b.close FROM bars AS b WHERE b.symbol = i.symbol "  # noqa: S608 (only ?s)
                "AND b.interval = '1d' AND b.currency IS NOT NULL ORDER BY b.ts DESC LIMIT 1) "
                f"FROM instruments AS i WHERE i.symbol IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((symbol, float(close)) for symbol, close in rows if close is not None)
    return found


def record_seen(store: Store, symbols: Sequence[str], now: datetime) -> None:
    """Instruments of ``symbols``, unchanged, seen again at ``now``: one statement per chunk."""
    at = _text(now)
    with _conn(store, f"record_seen of {len(symbols)} instruments") as conn:
        for chunk in _chunks(symbols):
            conn.execute(
                "UPDATE instruments SET last_seen = ?, updated_at = ?, not_found_runs = 0, "  # noqa: S608
                "delisted = 0, next_check = NULL "
                f"WHERE symbol IN ({', '.join('?' * len(chunk))})",
                (at, at, *chunk),
            )


def record_found(store: Store, instruments: Sequence[Instrument], now: datetime) -> None:
    """Upsert ``instruments`` as seen at ``now``: last_seen moves, not-found streaks end."""
    at = _text(now)
    params = [value for i in instruments for value in (*_row(i), at, at, at)]
    with _conn(store, f"record_found of {len(instruments)} instruments") as conn:
        execute_rows(conn, _record_found_sql, params, _FOUND_PARAMS, _CHUNK)


#: Parameters per row of :func:`record_found`'s upsert.
_FOUND_PARAMS = len(_COLUMNS) + 3


@cache
def _record_found_sql(rows: int) -> str:
    """:func:`record_found`'s upsert of ``rows`` rows in one multi-row ``VALUES``."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    row = f"({', '.join('?' * len(_COLUMNS))}, ?, ?, 0, 0, NULL, ?)"
    return (
        f"INSERT INTO instruments ({', '.join(_COLUMNS)}, first_seen, last_seen, "  # noqa: S608
        "not_found_runs, delisted, next_check, updated_at) "
        f"VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT (symbol) DO UPDATE SET {updates}, "
        "first_seen = COALESCE(instruments.first_seen, excluded.first_seen), "
        "last_seen = excluded.last_seen, not_found_runs = 0, delisted = 0, "
        "next_check = NULL, updated_at = excluded.updated_at"
    )


def record_described(store: Store, instruments: Sequence[Instrument], now: datetime) -> None:
    """Upsert the descriptive columns of ``instruments`` (the config's); seen times untouched."""
    at = _text(now)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    with _conn(store, f"record_described of {len(instruments)} instruments") as conn:
        conn.executemany(
            f"INSERT INTO instruments ({', '.join(_COLUMNS)}, not_found_runs, delisted, "  # noqa: S608
            f"updated_at) VALUES ({', '.join('?' * len(_COLUMNS))}, 0, 0, ?) "
            f"ON CONFLICT (symbol) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
            [(*_row(i), at) for i in instruments],
        )


def record_not_found(
    store: Store,
    symbol: str,
    provider: str,
    now: datetime,
    *,
    after_runs: int,
    recheck_every_s: float,
) -> NotFound:
    """Count one more run that found no ``symbol``; from ``after_runs`` on it is delisted.

    A delisted ticker's ``next_check`` is ``now + recheck_every_s``: until then runs skip it.
    """
    at = _text(now)
    with _conn(store, f"record_not_found of {symbol}") as conn:
        conn.execute(
            "INSERT INTO instruments (symbol, provider, not_found_runs, delisted, updated_at) "
            "VALUES (?, ?, 0, 0, ?) ON CONFLICT (symbol) DO NOTHING",
            (symbol, provider, at),
        )
        runs: int = conn.execute(
            "UPDATE instruments SET not_found_runs = not_found_runs + 1, updated_at = ? "
            "WHERE symbol = ? RETURNING not_found_runs",
            (at, symbol),
        ).fetchone()[0]
        if runs < after_runs:
            return NotFound(runs, False, None)
        next_check = datetime.fromtimestamp(now.timestamp() + recheck_every_s, UTC)
        conn.execute(
            "UPDATE instruments SET delisted = 1, next_check = ? WHERE symbol = ?",
            (_text(next_check), symbol),
        )
    return NotFound(runs, True, next_check)


def delisted_until(store: Store, symbols: Iterable[str], now: datetime) -> dict[str, str]:
    """Of ``symbols``, the delisted ones not due for a re-check at ``now``: symbol -> next_check."""
    wanted = set(symbols)
    with _read(store, "delisted_until") as conn:
        rows = conn.execute(
            "SELECT symbol, next_check FROM instruments WHERE delisted = 1 AND next_check > ?",
            (_text(now),),
        ).fetchall()
    return {symbol: next_check for symbol, next_check in rows if symbol in wanted}


@dataclass(frozen=True, slots=True)
class Streak:
    """A ticker in a not-found streak, as ``finappd status`` shows it."""

    symbol: str
    not_found_runs: int
    delisted: bool
    next_check: str | None
    last_seen: str | None


def not_found_streaks(store: Store) -> list[Streak]:
    """Tickers whose newest runs found no such symbol, delisted first, then by symbol."""
    with _read(store, "not_found_streaks") as conn:
        rows = conn.execute(
            "SELECT symbol, not_found_runs, delisted, next_check, last_seen FROM instruments "
            "WHERE not_found_runs > 0 ORDER BY delisted DESC, symbol"
        ).fetchall()
    return [Streak(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]


def unitless_bars(store: Store, symbols: Iterable[str]) -> set[tuple[str, str]]:
    """The ``(symbol, provider)`` pairs of ``symbols`` with bars written before v4 (no unit)."""
    found: set[tuple[str, str]] = set()
    with _read(store, "unitless_bars") as conn:
        for chunk in _chunks(symbols):
            rows = conn.execute(
                "SELECT DISTINCT symbol, provider FROM bars "  # noqa: S608 (only ?s)
                f"WHERE currency IS NULL AND symbol IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((symbol, provider) for symbol, provider in rows)
    return found


def convert_unitless_bars(store: Store, symbol: str, provider: str, unit: Unit) -> int:
    """Bars of ``symbol`` from ``provider`` written before v4 with no unit: now in ``unit``.

    Their prices are divided into the major unit and get ``unit.currency``, so they are
    converted exactly once (the ``currency IS NULL`` guard); returns how many.
    """
    per = float(unit.per_major)
    with _conn(store, f"convert_unitless_bars of {symbol}") as conn:
        cursor = conn.execute(
            "UPDATE bars SET open = open / ?, high = high / ?, low = low / ?, close = close / ?, "
            "adj_close = adj_close / ?, currency = ? "
            "WHERE symbol = ? AND provider = ? AND currency IS NULL",
            (per, per, per, per, per, unit.currency, symbol, provider),
        )
    return cursor.rowcount


def write_setting(store: Store, key: str, value: str | None, now: datetime) -> None:
    """Set (or, with None, remove) one ``settings`` row, e.g. ``base_currency``."""
    with _conn(store, f"write_setting {key}") as conn:
        if value is None:
            conn.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, _text(now)),
            )
