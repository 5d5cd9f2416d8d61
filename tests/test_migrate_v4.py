"""A database of the previous release (schema v3) migrates to v4: every row kept, minor units
converted exactly once, at migration where the unit is on record, else at the first answer."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from finappd.instruments import InstrumentBook
from finappd.records import Bar
from finappd.store import SCHEMA_VERSION, Store, schema

V3_SQL = Path(__file__).parent / "fixtures" / "schema" / "v3.sql"
FETCHED = "2025-03-10T21:00:00+00:00"
NOW = datetime(2025, 3, 12, 21, 0, tzinfo=UTC)
TABLES = (
    "bars",
    "runs",
    "fetch_errors",
    "provider_usage",
    "dividends",
    "splits",
    "quotes",
    "fx_rates",
    "backfill_chunks",
)


def _v3_database(path: Path) -> None:
    """The previous release's schema, built by its (frozen) steps, with rows in every table."""
    conn = sqlite3.connect(path, isolation_level=None)
    for step in schema.MIGRATIONS[:3]:
        step(conn)
    conn.execute("PRAGMA user_version = 3")
    bars = [
        # VOD.L from Yahoo in pence (a quote and a dividend of Yahoo's say GBp).
        ("VOD.L", "2025-03-07", 71.0, 72.5, 70.5, 72.0, 68.2, "yahoo"),
        ("VOD.L", "2025-03-10", 72.0, 73.0, 71.5, 72.4, 68.6, "yahoo"),
        # The same listing from Stooq: no quote says its unit, so it waits for an answer.
        ("VOD.L", "2025-03-06", 70.0, 71.0, 69.0, 70.9, None, "stooq"),
        # NPN.JO from Yahoo in cents, nothing on record about the unit.
        ("NPN.JO", "2025-03-10", 310000.0, 312000.0, 309000.0, 311000.0, 311000.0, "yahoo"),
        # AAPL: its quote says USD.
        ("AAPL", "2025-03-10", 227.0, 230.0, 226.0, 229.0, 229.0, "yahoo"),
    ]
    conn.executemany(
        "INSERT INTO bars (symbol, interval, ts, open, high, low, close, adj_close, volume, "
        "provider, fetched_at, provisional, adjustment) "
        "VALUES (?, '1d', ?, ?, ?, ?, ?, ?, 1000, ?, ?, 0, 'split')",
        [(*row, FETCHED) for row in bars],
    )
    conn.execute(
        "INSERT INTO bars (symbol, interval, ts, close, provider, fetched_at) "
        "VALUES ('VOD.L', '5m', '2025-03-10T15:00:00+00:00', 72.3, 'yahoo', ?)",
        (FETCHED,),
    )
    conn.executemany(
        "INSERT INTO quotes (symbol, ts, price, currency, previous_close, provider, fetched_at) "
        "VALUES (?, ?, ?, ?, ?, 'yahoo', ?)",
        [
            ("VOD.L", "2025-03-10T16:30:00+00:00", 72.4, "GBp", 72.0, FETCHED),
            ("AAPL", "2025-03-10T21:00:00+00:00", 229.0, "USD", 227.0, FETCHED),
        ],
    )
    conn.execute(
        "INSERT INTO dividends VALUES ('VOD.L', '2024-11-21', 2.25, 'GBp', 'yahoo', ?)", (FETCHED,)
    )
    conn.execute("INSERT INTO splits VALUES ('AAPL', '2020-08-31', 4, 1, 'yahoo', ?)", (FETCHED,))
    conn.execute(
        "INSERT INTO fx_rates VALUES ('GBP', 'USD', '2025-03-10', 1.29, 'frankfurter', ?)",
        (FETCHED,),
    )
    conn.execute(
        "INSERT INTO runs (flow, trigger, started_at, finished_at, status) "
        "VALUES ('eod', 'schedule', ?, ?, 'ok')",
        (FETCHED, FETCHED),
    )
    conn.execute(
        "INSERT INTO fetch_errors (run_id, symbol, provider, kind, message, at) "
        "VALUES (1, 'ZZZ', 'yahoo', 'not_found', 'gone', ?)",
        (FETCHED,),
    )
    conn.execute("INSERT INTO provider_usage VALUES ('yahoo', '2025-03-10', 42)")
    conn.execute(
        "INSERT INTO backfill_chunks VALUES ('eod', 'AAPL', '2015-01-01', '2024-12-31', "
        "'done', 2500, ?)",
        (FETCHED,),
    )
    conn.close()


def pounds(*pence: float) -> tuple[float, ...]:
    """``pence`` divided by 100 once, as the migration must (``x / 100``, correctly rounded)."""
    return tuple(p / 100 for p in pence)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _counts(path: Path) -> dict[str, int]:
    counts = {t: _rows(path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in TABLES}  # noqa: S608
    return {t: int(str(n)) for t, n in counts.items()}


def _bars(path: Path, symbol: str) -> list[tuple[object, ...]]:
    sql = "SELECT ts, provider, open, high, low, close, adj_close, currency FROM bars "
    sql += f"WHERE symbol = '{symbol}' AND interval = '1d' ORDER BY ts"
    return _rows(path, sql)


@pytest.fixture
def v3(tmp_path: Path) -> Path:
    path = tmp_path / "v3.sqlite3"
    _v3_database(path)
    return path


def test_frozen_steps_build_the_previous_release_schema(v3: Path) -> None:
    """MIGRATIONS[:3] still build exactly the schema v3 shipped (dumped from that release)."""
    dump = _rows(v3, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
    assert ";\n".join(str(r[0]).strip() for r in dump) + ";\n" == V3_SQL.read_text()


def test_every_row_is_kept_and_minor_units_converted_once(v3: Path) -> None:
    """After v4 every table has its rows; Yahoo's pence are pounds, with currency, once."""
    before = _counts(v3)
    with Store(v3) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
    assert _counts(v3) == before
    # Opening again migrates nothing: nothing is divided twice.
    with Store(v3):
        pass
    assert _bars(v3, "VOD.L") == [
        ("2025-03-06", "stooq", 70.0, 71.0, 69.0, 70.9, None, None),
        ("2025-03-07", "yahoo", *pounds(71.0, 72.5, 70.5, 72.0, 68.2), "GBP"),
        ("2025-03-10", "yahoo", *pounds(72.0, 73.0, 71.5, 72.4, 68.6), "GBP"),
    ]
    assert _bars(v3, "AAPL") == [("2025-03-10", "yahoo", 227.0, 230.0, 226.0, 229.0, 229.0, "USD")]
    assert _rows(v3, "SELECT price, currency, previous_close FROM quotes ORDER BY symbol") == [
        (229.0, "USD", 227.0),
        (72.4 / 100, "GBP", 72.0 / 100),
    ]
    assert _rows(v3, "SELECT amount, currency FROM dividends") == [(2.25 / 100, "GBP")]
    # The intraday bar of a converted provider is converted with it.
    assert _rows(v3, "SELECT close, currency FROM bars WHERE interval = '5m'") == [
        (72.3 / 100, "GBP")
    ]
    assert _rows(
        v3,
        "SELECT symbol, currency, quoted_unit, provider, first_seen, last_seen, not_found_runs, "
        "delisted FROM instruments ORDER BY symbol",
    ) == [
        ("AAPL", "USD", "USD", "yahoo", FETCHED, FETCHED, 0, 0),
        ("NPN.JO", None, None, "yahoo", FETCHED, FETCHED, 0, 0),
        ("VOD.L", "GBP", "GBp", "yahoo", FETCHED, FETCHED, 0, 0),
    ]
    assert _rows(v3, "SELECT symbol, close, currency FROM latest_close ORDER BY symbol") == [
        ("AAPL", 229.0, "USD"),
        ("NPN.JO", 311000.0, None),
        ("VOD.L", 72.4 / 100, "GBP"),
    ]


def test_unitless_rows_are_converted_by_the_first_answer_naming_the_unit(v3: Path) -> None:
    """NPN.JO's pre-v4 cents become rand when Yahoo next answers ZAc, and never again."""
    book = InstrumentBook()
    answer = [
        Bar("NPN.JO", date(2025, 3, 11), None, None, None, 312500.0, None, None, currency="ZAc")
    ]
    with Store(v3) as store:
        for _ in range(2):
            with store.transaction():
                stored = book.settle(store, "NPN.JO", "yahoo", answer, NOW)
            store.write_bars(stored, provider="yahoo", fetched_at=NOW)
    assert _bars(v3, "NPN.JO") == [
        ("2025-03-10", "yahoo", 3100.0, 3120.0, 3090.0, 3110.0, 3110.0, "ZAR"),  # ÷ 100 once
        ("2025-03-11", "yahoo", None, None, None, 3125.0, None, "ZAR"),
    ]
    assert _rows(v3, "SELECT currency, quoted_unit FROM instruments WHERE symbol = 'NPN.JO'") == [
        ("ZAR", "ZAc")
    ]
