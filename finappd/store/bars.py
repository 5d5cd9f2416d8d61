"""Bars: the multi-row upsert of daily bars and the per-symbol count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import cache, lru_cache

from finappd.records import Bar
from finappd.store._mixin import Connection, StorePart, execute_rows
from finappd.store.runs import utc_text

__all__ = ["BAR_COLUMNS", "BAR_PARAMS", "UPSERT_BARS_ON_CONFLICT", "BarsMixin"]

#: The columns ``write_bars`` writes, in the order of its parameters.
BAR_COLUMNS = (
    "symbol, interval, ts, open, high, low, close, adj_close, volume, provider, fetched_at, "
    "provisional, adjustment, currency"
)
_UPSERT_BARS_INTO = f"INSERT INTO bars ({BAR_COLUMNS}) VALUES "  # noqa: S608 (constants)
_UPSERT_BARS_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: What an upsert of a bar that is there already updates (both backends).
UPSERT_BARS_ON_CONFLICT = """
ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    adj_close = excluded.adj_close, volume = excluded.volume,
    provider = excluded.provider, fetched_at = excluded.fetched_at,
    provisional = excluded.provisional, adjustment = excluded.adjustment,
    currency = excluded.currency
"""
#: The single-row upsert (what ``bench/upsert.py`` runs raw, with ``executemany``).
_UPSERT_BARS = _UPSERT_BARS_INTO + _UPSERT_BARS_ROW + UPSERT_BARS_ON_CONFLICT
#: Parameters per row of ``BAR_COLUMNS``.
BAR_PARAMS = 14
#: Most rows one upsert statement carries (14 parameters each).
_UPSERT_CHUNK = 256


@lru_cache(maxsize=4096)
def _day_text(day: date) -> str:
    return day.isoformat()


@cache
def _upsert_bars_sql(rows: int) -> str:
    """The upsert of ``rows`` rows in one multi-row ``VALUES`` statement."""
    return _UPSERT_BARS_INTO + ", ".join([_UPSERT_BARS_ROW] * rows) + UPSERT_BARS_ON_CONFLICT


class BarsMixin(StorePart):
    """``Store``'s bars table: upsert in chunks, count per symbol."""

    def write_bars(
        self,
        bars: Sequence[Bar],
        *,
        provider: str,
        fetched_at: datetime,
        adjustment: str | None = None,
    ) -> int:
        """Upsert ``bars`` in one transaction, up to 256 rows per statement; return rows written.

        ``adjustment`` is the basis of the bars' OHLC (``bars.adjustment``, see
        ``finappd.store.tables``); each bar's ``provisional`` flag is stored as 0/1 and
        its ``currency`` as given: bars must already be in a major unit
        (``InstrumentBook.settle`` puts a run's bars there).

        Multi-row ``VALUES`` rather than ``executemany`` (``execute_rows``): a few GIL
        retakes per batch instead of one per row, and ~20 % faster on its own
        (bench/upsert.py).
        """
        fetched = utc_text(fetched_at)
        params: list[object] = []
        for b in bars:
            ts = b.ts
            # A daily bar's ``ts_text`` is its date's isoformat, the same few days for
            # every ticker of a batch: cached, as formatting a date costs more than a row.
            day = _day_text(ts) if type(ts) is date else b.ts_text()
            params += (
                b.symbol, b.interval, day, b.open, b.high, b.low, b.close, b.adj_close,
                b.volume, provider, fetched, int(b.provisional), adjustment, b.currency,
            )  # fmt: skip
        count = len(bars)
        with self._write(f"write_bars of {count} rows from {provider}") as conn:
            self._upsert_bar_params(conn, params, count)
        return count

    def _upsert_bar_params(self, conn: Connection, params: list[object], count: int) -> None:
        """Upsert ``count`` rows whose 14 parameters each follow one another in ``params``."""
        execute_rows(conn, _upsert_bars_sql, params, BAR_PARAMS, _UPSERT_CHUNK)

    def bar_counts(self) -> dict[str, int]:
        """Number of bars stored per symbol, all intervals together."""
        with self._guard("bar_counts") as conn:
            rows = conn.execute("SELECT symbol, COUNT(*) FROM bars GROUP BY symbol ORDER BY symbol")
            return dict(rows.fetchall())
