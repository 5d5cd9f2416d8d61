"""``finappd export-snapshot``: a consistent copy of the live database, for tools that
want a file of their own.

``VACUUM INTO`` reads the database in one read transaction (so the copy is one
consistent moment, even while the daemon writes) into a temporary file next to the
target; ``PRAGMA integrity_check`` must say ``ok``; the file is fsynced and renamed
over the target, so a reader of the target sees the old snapshot or the new one,
never half of one. The copy uses the rollback journal, not WAL: a reader needs no
``-shm``/``-wal`` files and no write access to its directory.

From PostgreSQL (``store.url``) the copy is a new SQLite file of the same schema version
(the same tables and views: ``finappd.store.schema``), filled from one read-only
``REPEATABLE READ`` transaction, so it too is one consistent moment, and finished the same way.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finappd.config import StoreSettings
from finappd.errors import StoreError
from finappd.store.backend import open_readonly
from finappd.store.schema import migrate

if TYPE_CHECKING:
    from finappd.store.pg import PgStore

__all__ = ["Snapshot", "export_pg_snapshot", "export_snapshot", "export_sqlite_snapshot"]

#: Rows fetched from PostgreSQL per round trip.
_PG_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where a snapshot went, how big it is, and how long it took."""

    path: Path
    bytes: int
    seconds: float


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_snapshot(settings: StoreSettings, target: Path) -> Snapshot:
    """Copy the configured store consistently to the SQLite file ``target``; raise StoreError."""
    if settings.url is None:
        return export_sqlite_snapshot(
            settings.resolved_path(), target, busy_timeout=settings.busy_timeout.total_seconds()
        )
    from finappd.store.pg import PgStore

    store = open_readonly(settings)
    try:
        if not isinstance(store, PgStore):
            raise TypeError(f"store.url opened {store!r}, not a PgStore")
        return export_pg_snapshot(store, target)
    finally:
        store.close()


def export_sqlite_snapshot(database: Path, target: Path, *, busy_timeout: float = 10.0) -> Snapshot:
    """Copy ``database`` consistently to ``target`` (atomically replaced); raise StoreError."""
    if not database.exists():
        raise StoreError(f"export-snapshot: no database at {database}")
    if target.absolute().resolve() == database.resolve():
        raise StoreError(f"export-snapshot: {target.absolute()} is the live database itself")

    def fill(temp: Path) -> None:
        source = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
        try:
            # PRAGMA takes no parameters; the value is a number we computed.
            source.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000):d}")
            source.execute("VACUUM INTO ?", (str(temp),))
        finally:
            source.close()

    return _export(str(database), target, fill)


def _export(source: str, target: Path, fill: Callable[[Path], None]) -> Snapshot:
    """``fill`` a temporary file beside ``target``, check it and rename it over ``target``."""
    started = time.monotonic()
    target, temp = _temp_for(target)
    try:
        fill(temp)
        _finish(temp, target)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"export-snapshot of {source} to {target} failed: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return Snapshot(target, target.stat().st_size, round(time.monotonic() - started, 3))


def _temp_for(target: Path) -> tuple[Path, Path]:
    """``target`` made absolute (its directory must exist) and a fresh temporary beside it."""
    target = target.absolute()
    if not target.parent.is_dir():
        raise StoreError(f"export-snapshot: directory {target.parent} does not exist")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    return target, temp


def _finish(temp: Path, target: Path) -> None:
    """Check ``temp`` (integrity, rollback journal), fsync it and rename it over ``target``."""
    copy = sqlite3.connect(temp, isolation_level=None)
    try:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        mode = copy.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    finally:
        copy.close()
    if problems != ["ok"]:
        raise StoreError(f"export-snapshot: the copy failed integrity_check: {problems[:5]}")
    if mode != "delete":
        raise StoreError(f"export-snapshot: the copy kept journal_mode {mode!r}")
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)
    _fsync_dir(target.parent)


def export_pg_snapshot(store: PgStore, target: Path) -> Snapshot:
    """Copy the PostgreSQL ``store`` (open, read-only is enough) into a SQLite file at
    ``target`` (atomically replaced); raise StoreError."""
    from finappd.store.tables import TABLE_NAMES

    def fill(temp: Path) -> None:
        copy = sqlite3.connect(temp, isolation_level=None)
        try:
            migrate(copy, str(temp))
            copy.execute("BEGIN")
            with store.snapshot_cursor(_PG_BATCH) as read:
                for table in TABLE_NAMES:
                    _copy_table(read, copy, table)
            copy.execute("COMMIT")
        finally:
            copy.close()

    return _export(store.where, target, fill)


def _copy_table(
    read: Callable[[str], Iterator[list[tuple[Any, ...]]]], copy: sqlite3.Connection, table: str
) -> None:
    """Every row of ``table``, batch by batch, into the same table of the SQLite copy."""
    for rows in read(table):
        marks = ", ".join("?" * len(rows[0]))
        copy.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 (our names)
