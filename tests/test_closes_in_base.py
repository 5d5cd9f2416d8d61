"""The closes_in_base view: direct, inverse and crossed rates, carried over days without one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from finappd.records import Bar, FxRate
from finappd.store import Store
from finappd.store.instruments import write_setting
from finappd.store.market import write_fx_rates

NOW = datetime(2025, 3, 12, 21, tzinfo=UTC)


def _close(symbol: str, day: int, close: float, currency: str | None) -> Bar:
    return Bar(symbol, date(2025, 3, day), None, None, None, close, None, None, currency=currency)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Closes in GBP (Fri, Mon), JPY, CHF, USD and an unknown unit; FX in three shapes."""
    path = tmp_path / "v.sqlite3"
    with Store(path) as store:
        store.write_bars(
            [
                _close("VOD.L", 7, 0.72, "GBP"),  # Friday: the GBP/USD of that day
                _close("VOD.L", 10, 0.73, "GBP"),  # Monday: no rate yet, Friday's carries
                _close("7203.T", 10, 2800.0, "JPY"),  # only USD/JPY is stored: inverse
                _close("NESN.SW", 10, 80.0, "CHF"),  # only EUR/CHF and EUR/USD: crossed
                _close("AAPL", 10, 229.0, "USD"),
                _close("OLD", 10, 5.0, None),
            ],
            provider="yahoo",
            fetched_at=NOW,
        )
        rates = [
            FxRate("GBP", "USD", date(2025, 3, 7), 1.29),
            FxRate("USD", "JPY", date(2025, 3, 7), 148.0),
            FxRate("EUR", "CHF", date(2025, 3, 10), 0.95),
            FxRate("EUR", "USD", date(2025, 3, 10), 1.08),
        ]
        write_fx_rates(store, rates, provider="frankfurter", fetched_at=NOW)
        write_setting(store, "base_currency", "USD", NOW)
    return path


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_each_close_converts_with_the_last_known_rate(db: Path) -> None:
    """GBP direct (Monday takes Friday's), JPY by the inverse, CHF crossed through EUR."""
    rows = _rows(
        db,
        "SELECT symbol, ts, fx_rate, close_in_base, base_currency FROM closes_in_base "
        "ORDER BY symbol, ts",
    )
    assert rows == [
        ("7203.T", "2025-03-10", pytest.approx(1 / 148.0), pytest.approx(2800.0 / 148.0), "USD"),
        ("AAPL", "2025-03-10", 1.0, 229.0, "USD"),
        (
            "NESN.SW",
            "2025-03-10",
            pytest.approx(1.08 / 0.95),
            pytest.approx(80 * 1.08 / 0.95),
            "USD",
        ),
        ("OLD", "2025-03-10", None, None, "USD"),
        ("VOD.L", "2025-03-07", 1.29, pytest.approx(0.72 * 1.29), "USD"),
        ("VOD.L", "2025-03-10", 1.29, pytest.approx(0.73 * 1.29), "USD"),
    ]
    latest = _rows(db, "SELECT symbol, ts FROM latest_close_in_base WHERE symbol = 'VOD.L'")
    assert latest == [("VOD.L", "2025-03-10")]


def test_without_a_base_currency_nothing_converts(db: Path) -> None:
    """No base_currency in settings: every row is there, with NULL conversions."""
    with Store(db) as store:
        write_setting(store, "base_currency", None, NOW)
    rows = _rows(db, "SELECT COUNT(*), COUNT(fx_rate), COUNT(base_currency) FROM closes_in_base")
    assert rows == [(6, 0, 0)]
