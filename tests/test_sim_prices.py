"""Tests of the simulator's synthetic prices and exchange rules (finappd.sim.prices, .exchanges)."""

from __future__ import annotations

from datetime import date, time

import pytest

from finappd.sim import synthetic_bars
from finappd.sim.exchanges import exchange_of


def test_prices_are_deterministic_and_range_independent() -> None:
    """The same symbol gives the same bars, and overlapping ranges agree day by day."""
    wide = synthetic_bars("AAPL", date(2023, 1, 1), date(2024, 12, 31))
    assert wide == synthetic_bars("AAPL", date(2023, 1, 1), date(2024, 12, 31))
    narrow = synthetic_bars("AAPL", date(2024, 3, 4), date(2024, 3, 15))
    by_day = {bar.day: bar for bar in wide}
    assert narrow
    assert all(by_day[bar.day] == bar for bar in narrow)
    assert synthetic_bars("MSFT", date(2024, 3, 4), date(2024, 3, 15)) != narrow
    assert synthetic_bars("AAPL", date(2024, 3, 4), date(2024, 3, 15), seed=1) != narrow


@pytest.mark.parametrize("symbol", ["AAPL", "BRK-B", "^GSPC", "7203.T", "BTC-USD", "EURUSD=X"])
def test_bars_respect_ohlc_invariants(symbol: str) -> None:
    """Every bar has positive prices, high above and low below open and close."""
    bars = synthetic_bars(symbol, date(1990, 1, 1), date(2026, 1, 1))
    assert len(bars) > 9000
    for bar in bars:
        assert 0 < bar.low <= min(bar.open, bar.close)
        assert bar.high >= max(bar.open, bar.close)
        assert bar.adj_close > 0
        assert bar.volume >= 0
    closes = [bar.close for bar in bars]
    assert min(closes) > 0.5
    assert max(closes) < 20_000


def test_trading_days_skip_weekends_except_crypto() -> None:
    """Equities trade Mon-Fri; crypto trades every calendar day."""
    week = (date(2024, 1, 1), date(2024, 1, 7))
    assert [bar.day.weekday() for bar in synthetic_bars("AAPL", *week)] == [0, 1, 2, 3, 4]
    assert len(synthetic_bars("BTC-USD", *week)) == 7


def test_start_prices_are_plausible() -> None:
    """Across many symbols the price level sits in a plausible band around 10..500."""
    closes = [
        synthetic_bars(f"S{i}", date(2015, 1, 2), date(2015, 1, 2))[0].close for i in range(300)
    ]
    assert min(closes) > 3
    assert max(closes) < 1500


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("AAPL", ("America/New_York", time(9, 30), False)),
        ("^GSPC", ("America/New_York", time(9, 30), False)),
        ("7203.T", ("Asia/Tokyo", time(9, 0), False)),
        ("VOD.L", ("Europe/London", time(8, 0), False)),
        ("BHP.AX", ("Australia/Sydney", time(10, 0), False)),
        ("XSP.TO", ("America/Toronto", time(9, 30), False)),
        ("BTC-USD", ("UTC", time(0, 0), True)),
        ("EURUSD=X", ("Europe/London", time(0, 0), False)),
    ],
)
def test_exchange_of_reads_the_suffix(symbol: str, expected: tuple[str, time, bool]) -> None:
    """The exchange timezone, open and weekend trading follow Yahoo's symbol suffix."""
    assert exchange_of(symbol) == expected
