"""``finappd export-snapshot``: a consistent copy of the live database, for tools that
want a file of their own.

``VACUUM INTO`` reads the database in one read transaction (so the copy is one
consistent moment, even while the daemon writes) into a temporary file next to the
target; ``PRAGMA integrity_check`` must say ``ok``; the file is fsynced and renamed
over the target, so a reader of the target sees the old snapshot or the new one,
never half of one. The copy uses the rollback journal, not WAL: a reader needs no
``-shm``/``-wal`` files and no write access to its directory.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from finappd.errors import StoreError

__all__ = ["Snapshot", "export_snapshot"]


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


def export_snapshot(database: Path, target: Path, *, busy_timeout: float = 10.0) -> Snapshot:
    """Copy ``database`` consistently to ``target`` (atomically replaced); raise StoreError."""
    started = time.monotonic()
    if not database.exists():
        raise StoreError(f"export-snapshot: no database at {database}")
    target = target.absolute()
    if target.resolve() == database.resolve():
        raise StoreError(f"export-snapshot: {target} is the live database itself")
    if not target.parent.is_dir():
        raise StoreError(f"export-snapshot: directory {target.parent} does not exist")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
        try:
            # PRAGMA takes no parameters; the value is a number we computed.
            source.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000):d}")
            source.execute("VACUUM INTO ?", (str(temp),))
        finally:
            source.close()
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
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"export-snapshot of {database} to {target} failed: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return Snapshot(target, target.stat().st_size, round(time.monotonic() - started, 3))
