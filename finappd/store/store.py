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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

import structlog

from finappd.errors import StoreError
from finappd.store._mixin import Connection, Dialect
from finappd.store.bars import BarsMixin
from finappd.store.runs import RunRow, RunsMixin, utc_text
from finappd.store.schema import SCHEMA_VERSION, migrate, read_version
from finappd.store.usage import UsageMixin

log = structlog.get_logger(__name__)

__all__ = ["RunRow", "Store"]

#: A WAL file past this size after a commit is checkpointed and truncated, so that readers
#: who are always reading cannot make it grow without bound (checkpoint starvation).
WAL_LIMIT = 16 * 2**20
#: How long (ms) that checkpoint waits for readers: the writer must not stall behind a query.
_WAL_WAIT_MS = 250
#: Checkpoint passes per try, and seconds before a try that readers kept busy is repeated.
_WAL_PASSES = 3
_WAL_RETRY_S = 1.0

_PRAGMAS = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "user_version")


def first_line(exc: BaseException) -> str:
    """A driver error's message, first line only (PostgreSQL's detail lines say no more)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Store(RunsMixin, BarsMixin, UsageMixin):
    """The finappd SQLite database: open, migrate, write runs, bars and errors, read status."""

    dialect: Dialect = "sqlite"

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
        self.where = str(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.readonly = False
        self.schema_version: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock: IO[bytes] | None = None
        self._wal_retry_at = 0.0  # time.monotonic() before which no checkpoint is tried
        self.writes = 0

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self.readonly else "open"
        return f"<Store {state} path={str(self.path)!r} schema_version={self.schema_version}>"

    def __enter__(self) -> Self:
        if self._connection() is None:
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
            # Only statistics for the query planner: a second writer holding the lock
            # must not turn a clean shutdown into an error.
            log.warning("store.optimize_skipped", path=str(self.path), error=str(exc))
        finally:
            conn.close()

    #: How a write transaction begins: SQLite takes the write lock at once.
    _BEGIN = "BEGIN IMMEDIATE"

    def _connection(self) -> Connection | None:
        """The open connection, or None."""
        return self._conn

    def _driver_error(self) -> type[Exception]:
        """The database driver's base exception, re-raised as ``StoreError``."""
        return sqlite3.Error

    @contextmanager
    def _guard(self, operation: str) -> Iterator[Connection]:
        """Yield the connection; re-raise the driver's errors as ``StoreError``."""
        conn = self._connection()
        if conn is None:
            raise StoreError(f"{operation} on {self.where}: the store is not open")
        try:
            yield conn
        except self._driver_error() as exc:
            raise StoreError(f"{operation} on {self.where} failed: {first_line(exc)}") from exc

    @contextmanager
    def _write(self, operation: str) -> Iterator[Connection]:
        """``BEGIN`` … ``COMMIT``, ``ROLLBACK`` on error; joins an open transaction."""
        with self._guard(operation) as conn:
            if conn.in_transaction:
                yield conn
                return
            conn.execute(self._BEGIN)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self.writes += 1  # what was written is undone: copies of it are stale
                # SQLite may already have rolled back (e.g. after SQLITE_FULL).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._after_commit(conn)

    def _after_commit(self, conn: Connection) -> None:
        """What follows each commit: SQLite bounds its WAL."""
        self._bound_wal(conn)

    def _bound_wal(self, conn: Connection) -> None:
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

    def data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version``: it moves whenever another connection commits.

        With :attr:`writes` it tells whether rows read earlier are still what is stored
        (``InstrumentBook`` keeps a run's instruments so): None where it cannot tell.
        """
        with self._guard("data_version") as conn:
            version: int = conn.execute("PRAGMA data_version").fetchone()[0]
            return version

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

    def _end_alone(self) -> None:
        """Undo :meth:`_alone`'s upgrade: back to the shared lock every open store holds."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_SH)

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
                    (utc_text(now),),
                )
        finally:
            self._end_alone()
        return cursor.rowcount
