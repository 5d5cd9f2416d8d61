"""Upsert: rows/s of finappd's store path vs raw ``sqlite3.executemany`` of the same statement.

100k daily bars (10k symbols x 10 days) upserted into a table already holding the
first 5 days of every symbol, so half the rows are new and half are updates; the
same file settings for every path (WAL, ``synchronous=NORMAL``, finappd's schema).

- ``raw``: one ``executemany`` of prebuilt positional tuples in one transaction (the floor);
- ``write_bars``: ``Store.write_bars`` once with all 100k ``Bar`` records;
- ``run-writer``: what a run's writer does with results: ``_write_results`` over batches of
  100 tickers (each batch one call on the writer thread), from ``TickerResult`` records.

With ``--pg-url`` (a PostgreSQL superuser's URL: each timing gets a new database) the
same three paths run on PostgreSQL, against psycopg's ``executemany`` of the same
single-row upsert in one transaction (pipelined by psycopg 3) as the raw baseline.

    python bench/upsert.py              # 100k rows, best of 3
    python bench/upsert.py --quick      # 2k rows, once
    python bench/upsert.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from finappd.flows.run import TickerResult, _write_results
from finappd.records import Bar
from finappd.store import Store
from finappd.store.bars import _UPSERT_BARS
from finappd.store.pg import PgStore

DAYS = 10
BATCH = 100  # tickers per writer call: about what a 50-worker run's queue holds
FETCHED_AT = datetime(2026, 1, 2, 22, 0, tzinfo=UTC)


def make_bars(symbols: int) -> list[list[Bar]]:
    """``DAYS`` bars for each of ``symbols`` symbols, grouped by symbol."""
    first = date(2025, 6, 2)
    return [
        [
            Bar(f"S{s:05d}", first + timedelta(days=d), 10.0 + d, 11 + d, 9.0, 10.5 + d, 10.4, 1e6)
            for d in range(DAYS)
        ]
        for s in range(symbols)
    ]


def positional(bars: list[list[Bar]], provider: str = "bench") -> list[tuple[object, ...]]:
    """The positional parameter tuples of ``bars`` for ``_UPSERT_BARS``."""
    fetched = FETCHED_AT.isoformat()
    return [
        (
            b.symbol,
            b.interval,
            b.ts_text(),
            b.open,
            b.high,
            b.low,
            b.close,
            b.adj_close,
            b.volume,
            provider,
            fetched,
            int(b.provisional),
            None,
            b.currency,
        )
        for group in bars
        for b in group
    ]


def _raw_sqlite(path: Path) -> sqlite3.Connection:
    """A plain connection to ``path`` in autocommit, WAL, ``synchronous = NORMAL`` as finappd's."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class SqliteTarget:
    """A fresh SQLite file per timing, with finappd's schema and the first half loaded."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextmanager
    def prepared(self, bars: list[list[Bar]]) -> Iterator[Path]:
        """A new database holding the first half of every symbol's bars."""
        path = self.workdir / f"{uuid.uuid4().hex}.sqlite3"
        Store(path).open().close()
        conn = _raw_sqlite(path)
        conn.execute("BEGIN")
        conn.executemany(_UPSERT_BARS, positional([group[: DAYS // 2] for group in bars], "old"))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        yield path

    def store(self, where: Path) -> Store:
        """finappd's store over the prepared database."""
        return Store(where)

    def time_raw(self, where: Path, rows: list[tuple[object, ...]]) -> float:
        """Seconds for one positional ``executemany`` of every row in one transaction."""
        conn = _raw_sqlite(where)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_UPSERT_BARS, rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed


class PgTarget:
    """A new PostgreSQL database per timing on the server of ``admin_url``."""

    name = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    @contextmanager
    def prepared(self, bars: list[list[Bar]]) -> Iterator[str]:
        """A new database holding the first half of every symbol's bars; dropped afterwards."""
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{self.admin_url.rsplit('/', 1)[0]}/{name}"
        try:
            PgStore(url).open().close()
            old = positional([group[: DAYS // 2] for group in bars], "old")
            with psycopg.connect(url, connect_timeout=10) as conn:
                conn.cursor().executemany(_UPSERT_BARS.replace("?", "%s"), old)
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                conn.execute("VACUUM ANALYZE bars")  # as the SQLite file's checkpoint: settled
            yield url
        finally:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    def store(self, where: str) -> Store:
        """finappd's store over the prepared database."""
        return PgStore(where)

    def time_raw(self, where: str, rows: list[tuple[object, ...]]) -> float:
        """Seconds for psycopg's ``executemany`` of every row in one transaction."""
        import psycopg

        with psycopg.connect(where, connect_timeout=10) as conn:
            started = time.perf_counter()
            conn.cursor().executemany(_UPSERT_BARS.replace("?", "%s"), rows)
            conn.commit()
            return time.perf_counter() - started


Target = SqliteTarget | PgTarget


def time_raw(target: Target, where: Any, bars: list[list[Bar]]) -> float:
    """Seconds for the raw baseline of ``target``."""
    return target.time_raw(where, positional(bars))


def time_write_bars(target: Target, where: Any, bars: list[list[Bar]]) -> float:
    """Seconds for ``Store.write_bars`` of every bar in one call."""
    flat = [b for group in bars for b in group]
    with target.store(where) as store:
        started = time.perf_counter()
        store.write_bars(flat, provider="bench", fetched_at=FETCHED_AT)
        return time.perf_counter() - started


def time_run_writer(target: Target, where: Any, bars: list[list[Bar]]) -> float:
    """Seconds for ``_write_results`` over batches of ``BATCH`` tickers, as a run writes."""
    results = [TickerResult(group[0].symbol, "bench", bars=group) for group in bars]
    with target.store(where) as store:
        run_id = store.start_run("bench", "manual", len(results), FETCHED_AT)
        started = time.perf_counter()
        for i in range(0, len(results), BATCH):
            _write_results(store, run_id, results[i : i + BATCH])
        return time.perf_counter() - started


def best(
    timer: Callable[[Target, Any, list[list[Bar]]], float],
    target: Target,
    bars: list[list[Bar]],
    repeat: int,
) -> float:
    """The fastest of ``repeat`` timings, each on a freshly prepared database."""
    times = []
    for _ in range(repeat):
        with target.prepared(bars) as where:
            times.append(timer(target, where, bars))
    return min(times)


def report(target: Target, bars: list[list[Bar]], repeat: int) -> None:
    """One line per path on ``target``, each with its ratio to the raw baseline."""
    total = sum(len(g) for g in bars)
    label = "" if target.name == "sqlite" else f"backend={target.name} "
    raw = best(time_raw, target, bars, repeat)
    print(
        f"upsert {label}path=raw rows={total} s={raw:.3f} rows_per_s={total / raw:.0f} ratio=1.000"
    )
    for name, timer in (("write_bars", time_write_bars), ("run-writer", time_run_writer)):
        took = best(timer, target, bars, repeat)
        print(
            f"upsert {label}path={name} rows={total} s={took:.3f} rows_per_s={total / took:.0f} "
            f"ratio={raw / took:.3f}",
            flush=True,
        )


def main() -> int:
    """Run the upsert benchmark and print one line per path (and backend)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows upserted (x10 bars)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="2k rows, once")
    parser.add_argument("--pg-url", help="also on PostgreSQL: a superuser's URL of a server")
    args = parser.parse_args()
    rows, repeat = (2000, 1) if args.quick else (args.rows, args.repeat)
    bars = make_bars(rows // DAYS)
    total = sum(len(g) for g in bars)
    print(
        f"# upsert: {total} rows, half new, half updates; WAL, synchronous=NORMAL; "
        f"best of {repeat}; load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp:
        report(SqliteTarget(Path(tmp)), bars, repeat)
    if args.pg_url:
        report(PgTarget(args.pg_url), bars, repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
