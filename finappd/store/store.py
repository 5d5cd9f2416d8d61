"""The SQLite store: one connection, WAL, explicit transactions, one upsert batch per call.

Every write method runs in one ``BEGIN IMMEDIATE`` transaction, so its rows land whole
or not at all, and a second writer (another process) waits up to ``busy_timeout``
instead of failing. The connection may be used from a thread other than the one that
opened it, but only from one thread at a time: in the daemon, ``Writer``'s thread.

A read-write store holds a shared ``flock`` on ``<db>.lock`` while open, which the
kernel drops when the process dies, even by ``kill -9``. A run left ``running`` is a
crash's leftover only when no other process holds that lock: ``finappd run-once``
started by hand beside the daemon must not mark the daemon's live run ``interrupted``.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

from finappd.errors import StoreError
from finappd.records import Bar
from finappd.store.schema import SCHEMA_VERSION, migrate, read_version
from finappd.store.tables import RUN_STATUSES

__all__ = ["RunRow", "Store"]

_UPSERT_BARS_INTO = """
INSERT INTO bars (
    symbol, interval, ts, open, high, low, close, adj_close, volume, provider, fetched_at,
    provisional, adjustment
) VALUES """
_UPSERT_BARS_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_BARS_ON_CONFLICT = """
ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    adj_close = excluded.adj_close, volume = excluded.volume,
    provider = excluded.provider, fetched_at = excluded.fetched_at,
    provisional = excluded.provisional, adjustment = excluded.adjustment
"""
#: The single-row upsert (what ``bench/upsert.py`` runs raw, with ``executemany``).
_UPSERT_BARS = _UPSERT_BARS_INTO + _UPSERT_BARS_ROW + _UPSERT_BARS_ON_CONFLICT
_BAR_PARAMS = 13
#: Most rows one upsert statement carries (13 parameters each).
_UPSERT_CHUNK = 256


@cache
def _upsert_bars_sql(rows: int) -> str:
    """The upsert of ``rows`` rows in one multi-row ``VALUES`` statement."""
    return _UPSERT_BARS_INTO + ", ".join([_UPSERT_BARS_ROW] * rows) + _UPSERT_BARS_ON_CONFLICT


# Newest first; within each flow only the newest ``limit`` runs.
_LAST_RUNS = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY flow ORDER BY started_at DESC, id DESC) AS n
    FROM runs
)
WHERE n <= ?
ORDER BY started_at DESC, id DESC
"""

_RUN = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error
FROM runs WHERE id = ?
"""

_ADD_USAGE = """
INSERT INTO provider_usage (provider, day, requests) VALUES (?, ?, ?)
ON CONFLICT (provider, day) DO UPDATE SET requests = requests + excluded.requests
"""

# Day and month-to-day totals; ``day`` is ISO text, so the month is a string range.
_USAGE = """
SELECT COALESCE(SUM(CASE WHEN day = ? THEN requests END), 0), COALESCE(SUM(requests), 0)
FROM provider_usage WHERE provider = ? AND day BETWEEN ? AND ?
"""

# The newest run per flow whose data landed (ok or partial).
_LAST_GOOD_RUNS = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY flow ORDER BY started_at DESC, id DESC) AS n
    FROM runs WHERE status IN ('ok', 'partial')
)
WHERE n = 1
"""

#: A WAL file past this size after a commit is checkpointed and truncated, so that readers
#: who are always reading cannot make it grow without bound (checkpoint starvation).
WAL_LIMIT = 16 * 2**20
#: How long (ms) that checkpoint waits for readers: the writer must not stall behind a query.
_WAL_WAIT_MS = 250
#: Checkpoint passes per try, and seconds before a try that readers kept busy is repeated.
_WAL_PASSES = 3
_WAL_RETRY_S = 1.0

_PRAGMAS = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "user_version")


def _utc_text(moment: datetime) -> str:
    """ISO-8601 UTC text of a tz-aware datetime; naive ones are refused, not guessed."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the store only takes tz-aware times")
    return moment.astimezone(UTC).isoformat()


def _parse_utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of ``runs``, with its times parsed to tz-aware datetimes."""

    id: int
    flow: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    tickers_total: int | None
    tickers_ok: int | None
    tickers_failed: int | None
    rows_written: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRow:
        """Build from a ``SELECT`` of the runs columns in table order."""
        started_at = datetime.fromisoformat(row[3])
        return cls(row[0], row[1], row[2], started_at, _parse_utc(row[4]), *row[5:])


class Store:
    """The finappd SQLite database: open, migrate, write runs, bars and errors, read status."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 10.0,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.readonly = False
        self.schema_version: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock: IO[bytes] | None = None
        self._wal_retry_at = 0.0  # time.monotonic() before which no checkpoint is tried

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self.readonly else "open"
        return f"<Store {state} path={str(self.path)!r} schema_version={self.schema_version}>"

    def __enter__(self) -> Self:
        if self._conn is None:
            self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self, *, readonly: bool = False) -> Self:
        """Connect; read-write creates, sets WAL and migrates, read-only never writes."""
        if self._conn is not None:
            raise StoreError(f"store {self.path} is already open")
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"open of {self.path} failed: {exc}") from exc
        try:
            self.schema_version = self._prepare(conn, readonly=readonly)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"open of {self.path} failed: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn, self.readonly = conn, readonly
        if not readonly:
            self._lock = self._hold_lock()
        return self

    def _prepare(self, conn: sqlite3.Connection, *, readonly: bool) -> int:
        """Set the PRAGMAs, then migrate (read-write) or check the version (read-only)."""
        # PRAGMAs take no parameters; both values are validated numbers or literals.
        conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000):d}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            version = read_version(conn)
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, this finappd reads "
                    f"{SCHEMA_VERSION}; start the daemon once to migrate it"
                )
            return version
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{self.path} refused WAL mode (journal_mode is {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        migrate(conn, str(self.path))
        return SCHEMA_VERSION

    def close(self) -> None:
        """Run ``PRAGMA optimize`` (read-write only) and close; closing twice is harmless."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # releases the flock
        try:
            if not self.readonly:
                conn.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            raise StoreError(f"close of {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _guard(self, operation: str) -> Iterator[sqlite3.Connection]:
        """Yield the connection; re-raise any ``sqlite3.Error`` as ``StoreError``."""
        if self._conn is None:
            raise StoreError(f"{operation} on {self.path}: the store is not open")
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise StoreError(f"{operation} on {self.path} failed: {exc}") from exc

    @contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` on error; joins an open transaction."""
        with self._guard(operation) as conn:
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (e.g. after SQLITE_FULL).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._bound_wal(conn)

    def _bound_wal(self, conn: sqlite3.Connection) -> None:
        """After a commit, checkpoint and truncate a WAL file grown past ``WAL_LIMIT``.

        SQLite's own (passive) checkpoint can only rewind the WAL at a moment when no
        reader is using it; a reader querying in a loop may never leave such a moment.
        ``TRUNCATE`` waits (briefly) for the readers' current transactions instead.
        """
        try:
            size = self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:
            return
        if size < WAL_LIMIT or time.monotonic() < self._wal_retry_at:
            return
        busy = 1
        try:
            conn.execute(f"PRAGMA busy_timeout = {_WAL_WAIT_MS:d}")
            # The first pass copies what the oldest reader's snapshot allows; readers that
            # began meanwhile no longer need the WAL, so a second pass usually completes.
            for _ in range(_WAL_PASSES):
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    break
        except sqlite3.Error:
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000):d}")
        if busy:  # a reader's snapshot still needed the WAL: try again a little later
            self._wal_retry_at = time.monotonic() + _WAL_RETRY_S

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one transaction: all of them land, or none."""
        with self._write("transaction"):
            yield

    def pragmas(self) -> dict[str, str | int]:
        """The connection's journal_mode, synchronous, busy_timeout, foreign_keys, user_version."""
        with self._guard("pragmas") as conn:
            return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in _PRAGMAS}

    def _hold_lock(self) -> IO[bytes] | None:
        """Take a shared flock on ``<db>.lock`` for as long as the store is open."""
        try:
            lock = self.path.with_name(self.path.name + ".lock").open("ab")
        except OSError:
            return None  # e.g. a read-only directory: nothing can be written there anyway
        fcntl.flock(lock, fcntl.LOCK_SH)
        return lock

    def _alone(self) -> bool:
        """Whether no other process has this store open read-write (upgrades the lock)."""
        if self._lock is None:
            return True  # cannot tell; behave as before locks existed
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A refused upgrade drops the shared lock (flock(2)): take it again.
            fcntl.flock(self._lock, fcntl.LOCK_SH)
            return False
        return True

    def mark_interrupted(self, now: datetime) -> int:
        """Mark runs a crashed process left ``running`` as ``interrupted``; return how many.

        Nothing is marked while another process has the store open: its runs are alive.
        """
        if not self._alone():
            return 0
        try:
            with self._write("mark_interrupted") as conn:
                cursor = conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? "
                    "WHERE status = 'running'",
                    (_utc_text(now),),
                )
        finally:
            if self._lock is not None:
                fcntl.flock(self._lock, fcntl.LOCK_SH)
        return cursor.rowcount

    def start_run(self, flow: str, trigger: str, tickers_total: int, now: datetime) -> int:
        """Insert a ``running`` run and return its id."""
        with self._write(f"start_run of {flow}") as conn:
            run_id: int = conn.execute(
                'INSERT INTO runs (flow, "trigger", started_at, status, tickers_total) '
                "VALUES (?, ?, ?, 'running', ?) RETURNING id",
                (flow, trigger, _utc_text(now), tickers_total),
            ).fetchone()[0]
        return run_id

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        tickers_ok: int,
        tickers_failed: int,
        rows_written: int,
        error: str | None,
        now: datetime,
    ) -> None:
        """Record a run's outcome; ``status`` is one of ``RUN_STATUSES`` except ``running``."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"a run cannot finish with status {status!r}")
        with self._write(f"finish_run of run {run_id}") as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, tickers_ok = ?, tickers_failed = ?, "
                "rows_written = ?, error = ? WHERE id = ?",
                (status, _utc_text(now), tickers_ok, tickers_failed, rows_written, error, run_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"finish_run on {self.path}: no run with id {run_id}")

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
        ``finappd.store.tables``); each bar's ``provisional`` flag is stored as 0/1.

        Multi-row ``VALUES`` rather than ``executemany``: sqlite3 releases and retakes
        the GIL around every statement step, i.e. per row with ``executemany``, and on
        the writer thread each retake has to wait for the busy event loop. One step
        per chunk needs a few retakes per batch instead, and is also ~20 % faster on
        its own (bench/upsert.py).
        """
        fetched = _utc_text(fetched_at)
        params: list[object] = []
        for b in bars:
            params += (b.symbol, b.interval, b.ts_text(), b.open, b.high, b.low, b.close)
            params += (b.adj_close, b.volume, provider, fetched, int(b.provisional), adjustment)
        count = len(bars)
        with self._write(f"write_bars of {count} rows from {provider}") as conn:
            done = 0
            while done < count:
                # Power-of-two chunks: at most 9 distinct statements, all kept in
                # sqlite3's statement cache instead of compiled afresh per size.
                size = 1 << (min(count - done, _UPSERT_CHUNK).bit_length() - 1)
                conn.execute(
                    _upsert_bars_sql(size),
                    params[done * _BAR_PARAMS : (done + size) * _BAR_PARAMS],
                )
                done += size
        return count

    def record_error(
        self, run_id: int, symbol: str, provider: str, kind: str, message: str, now: datetime
    ) -> None:
        """Record why ``symbol`` failed in run ``run_id``."""
        with self._write(f"record_error for {symbol}") as conn:
            conn.execute(
                "INSERT INTO fetch_errors (run_id, symbol, provider, kind, message, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, symbol, provider, kind, message, _utc_text(now)),
            )

    def add_usage(self, provider: str, counts: Mapping[str, int]) -> None:
        """Add requests per quota day (``YYYY-MM-DD`` → n) to ``provider``'s usage, at once."""
        rows = [(provider, day, n) for day, n in counts.items()]
        with self._write(f"add_usage of {provider}") as conn:
            conn.executemany(_ADD_USAGE, rows)

    def usage(self, provider: str, day: str) -> tuple[int, int]:
        """Requests of ``provider`` on quota day ``day`` and in its month up to that day."""
        with self._guard(f"usage of {provider}") as conn:
            row = conn.execute(_USAGE, (day, provider, f"{day[:8]}01", day)).fetchone()
        return int(row[0]), int(row[1])

    def last_runs(self, limit: int = 10) -> list[RunRow]:
        """The newest ``limit`` runs of each flow, newest first."""
        with self._guard("last_runs") as conn:
            return [RunRow.from_row(row) for row in conn.execute(_LAST_RUNS, (limit,))]

    def run(self, run_id: int) -> RunRow | None:
        """The run with this id, or ``None``."""
        with self._guard(f"run {run_id}") as conn:
            row = conn.execute(_RUN, (run_id,)).fetchone()
        return None if row is None else RunRow.from_row(row)

    def bar_counts(self) -> dict[str, int]:
        """Number of bars stored per symbol, all intervals together."""
        with self._guard("bar_counts") as conn:
            rows = conn.execute("SELECT symbol, COUNT(*) FROM bars GROUP BY symbol ORDER BY symbol")
            return dict(rows.fetchall())

    def errors_for_run(self, run_id: int) -> list[tuple[str, str, str, str]]:
        """``(symbol, provider, kind, message)`` of each error of run ``run_id``, oldest first."""
        with self._guard(f"errors_for_run {run_id}") as conn:
            rows = conn.execute(
                "SELECT symbol, provider, kind, message FROM fetch_errors WHERE run_id = ? "
                "ORDER BY id",
                (run_id,),
            )
            return rows.fetchall()

    def last_good_runs(self) -> dict[str, RunRow]:
        """The newest run of each flow that ended ``ok`` or ``partial`` (data landed)."""
        with self._guard("last_good_runs") as conn:
            rows = conn.execute(_LAST_GOOD_RUNS).fetchall()
        return {row[1]: RunRow.from_row(row) for row in rows}

    def failure_streaks(self, flow: str, runs: int = 5) -> list[tuple[str, int, str, str]]:
        """Symbols that failed in ``flow``'s newest finished runs in a row (at most ``runs``).

        Each is ``(symbol, streak, kind, message)``, kind and message of the newest
        failure, longest streak first. Run-level kinds (``cancelled``, ``deadline``,
        ``store``) say nothing about the symbol and are left out.
        """
        with self._guard(f"failure_streaks of {flow}") as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM runs WHERE flow = ? AND status IN ('ok', 'partial', 'failed') "
                    "ORDER BY started_at DESC, id DESC LIMIT ?",
                    (flow, runs),
                )
            ]
            marks = ", ".join("?" * len(ids))
            errors = conn.execute(
                f"SELECT run_id, symbol, kind, message FROM fetch_errors "  # noqa: S608 (only ?s)
                f"WHERE run_id IN ({marks}) AND kind NOT IN ('cancelled', 'deadline', 'store') "
                "ORDER BY id",
                ids,
            ).fetchall()
        failed: dict[str, set[int]] = {}
        newest: dict[str, tuple[str, str]] = {}
        for run_id, symbol, kind, message in errors:  # oldest first: the last one wins
            failed.setdefault(symbol, set()).add(run_id)
            newest[symbol] = (kind or "", message or "")
        streaks: list[tuple[str, int, str, str]] = []
        for symbol, run_ids in failed.items():
            streak = next((i for i, run_id in enumerate(ids) if run_id not in run_ids), len(ids))
            if streak:
                streaks.append((symbol, streak, *newest[symbol]))
        return sorted(streaks, key=lambda s: (-s[1], s[0]))
