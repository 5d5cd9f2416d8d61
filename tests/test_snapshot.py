"""`finappd export-snapshot`: a consistent, checked, atomically renamed copy of a live DB."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from finappd.cli import main
from finappd.errors import StoreError
from finappd.records import Bar
from finappd.snapshot import export_sqlite_snapshot
from finappd.store import Store

BARS_PER_SYMBOL = 20


def bars(symbol: str) -> list[Bar]:
    """One symbol's batch: always written together, in one transaction."""
    start = date(2025, 1, 1)
    return [
        Bar(symbol, start + timedelta(days=i), 1.0, 2.0, 0.5, 1.5, 1.5, 100.0)
        for i in range(BARS_PER_SYMBOL)
    ]


def read(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` from ``path``, opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows: list[tuple[object, ...]] = conn.execute(sql).fetchall()
    finally:
        conn.close()
    return rows


def test_snapshots_taken_during_writes_are_consistent(tmp_path: Path) -> None:
    """Snapshots taken while a writer commits hold only whole transactions and pass checks."""
    db, target = tmp_path / "live.sqlite3", tmp_path / "out" / "snap.sqlite3"
    target.parent.mkdir()
    stop = threading.Event()
    written = 0

    def write() -> None:
        nonlocal written
        with Store(db) as store:
            while not stop.is_set():
                store.write_bars(
                    bars(f"S{written:05d}"), provider="sim", fetched_at=datetime.now(UTC)
                )
                written += 1

    Store(db).open().close()  # create and migrate before the writer races the snapshots
    writer = threading.Thread(target=write)
    writer.start()
    try:
        sizes = []
        for _ in range(5):
            snapshot = export_sqlite_snapshot(db, target)
            assert snapshot.path == target
            sizes.append(snapshot.bytes)
            counts = read(target, "SELECT symbol, COUNT(*) FROM bars GROUP BY symbol")
            assert {n for _, n in counts} <= {BARS_PER_SYMBOL}
            assert read(target, "PRAGMA integrity_check") == [("ok",)]
            assert read(target, "PRAGMA journal_mode") == [("delete",)]
    finally:
        stop.set()
        writer.join()
    assert written > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["snap.sqlite3"]


def test_snapshot_replaces_the_target_atomically(tmp_path: Path) -> None:
    """A reader holding the old snapshot keeps it; new readers see the new one."""
    db, target = tmp_path / "live.sqlite3", tmp_path / "snap.sqlite3"
    with Store(db) as store:
        store.write_bars(bars("OLD"), provider="sim", fetched_at=datetime.now(UTC))
        export_sqlite_snapshot(db, target)
        old_reader = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        store.write_bars(bars("NEW"), provider="sim", fetched_at=datetime.now(UTC))
        export_sqlite_snapshot(db, target)
    try:
        assert old_reader.execute("SELECT DISTINCT symbol FROM bars").fetchall() == [("OLD",)]
    finally:
        old_reader.close()
    assert read(target, "SELECT DISTINCT symbol FROM bars ORDER BY 1") == [("NEW",), ("OLD",)]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing-dir/snap.sqlite3", "does not exist"),
        ("live.sqlite3", "is the live database itself"),
    ],
)
def test_bad_targets_are_refused(tmp_path: Path, target: str, message: str) -> None:
    """A target in a missing directory, or the live database itself, is a StoreError."""
    db = tmp_path / "live.sqlite3"
    Store(db).open().close()
    with pytest.raises(StoreError, match=message):
        export_sqlite_snapshot(db, tmp_path / target)


def test_cli_prints_the_snapshot_and_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export-snapshot PATH` prints JSON and exits 0; without a database it exits 1."""
    config = tmp_path / "finappd.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "live.sqlite3"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "export-snapshot", str(tmp_path / "s.db")]) == 1
    assert "no database" in capsys.readouterr().err
    Store(tmp_path / "live.sqlite3").open().close()
    assert main(["--config", str(config), "export-snapshot", str(tmp_path / "s.db")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["snapshot"] == str(tmp_path / "s.db")
    assert out["integrity_check"] == "ok"
    assert out["bytes"] == (tmp_path / "s.db").stat().st_size
