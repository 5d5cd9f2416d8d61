"""Tests of the simulator's Yahoo chart responses as pure functions (finappd.sim.yahoo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from finappd.sim import SimConfig
from finappd.sim.yahoo import chart_response

NOW = datetime(2026, 1, 15, 23, 0, tzinfo=UTC).timestamp()


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch seconds of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("symbol", "day", "expected_utc", "tz_abbr"),
    [
        ("7203.T", date(2024, 1, 5), datetime(2024, 1, 5, 0, 0, tzinfo=UTC), "JST"),
        ("AAPL", date(2024, 3, 8), datetime(2024, 3, 8, 14, 30, tzinfo=UTC), "EST"),
        ("AAPL", date(2024, 3, 11), datetime(2024, 3, 11, 13, 30, tzinfo=UTC), "EDT"),
        ("AAPL", date(2024, 11, 1), datetime(2024, 11, 1, 13, 30, tzinfo=UTC), "EDT"),
        ("AAPL", date(2024, 11, 4), datetime(2024, 11, 4, 14, 30, tzinfo=UTC), "EST"),
        ("VOD.L", date(2024, 7, 5), datetime(2024, 7, 5, 7, 0, tzinfo=UTC), "BST"),
        ("VOD.L", date(2024, 1, 5), datetime(2024, 1, 5, 8, 0, tzinfo=UTC), "GMT"),
        ("BHP.AX", date(2024, 1, 5), datetime(2024, 1, 4, 23, 0, tzinfo=UTC), "AEDT"),
        ("XSP.TO", date(2017, 10, 27), datetime(2017, 10, 27, 13, 30, tzinfo=UTC), "EDT"),
        ("BTC-USD", date(2024, 1, 6), datetime(2024, 1, 6, 0, 0, tzinfo=UTC), "UTC"),
        ("EURUSD=X", date(2024, 7, 5), datetime(2024, 7, 4, 23, 0, tzinfo=UTC), "BST"),
    ],
)
def test_daily_timestamp_is_the_exchange_local_session_open(
    symbol: str, day: date, expected_utc: datetime, tz_abbr: str
) -> None:
    """A daily bar is stamped at the session open in exchange time, across DST changes."""
    start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1)
    period1 = int(start.timestamp())
    status, body = chart_response(
        symbol, {"period1": str(period1), "period2": str(period1 + 3 * 86400 - 1)}, SimConfig(), NOW
    )
    assert status == 200
    result = body["chart"]["result"][0]
    stamps = result["timestamp"]
    assert int(expected_utc.timestamp()) in stamps
    # The single bar of exactly that session comes back with the right tz meta.
    stamp = int(expected_utc.timestamp())
    status, body = chart_response(
        symbol, {"period1": str(stamp), "period2": str(stamp + 1)}, SimConfig(), NOW
    )
    meta = body["chart"]["result"][0]["meta"]
    assert body["chart"]["result"][0]["timestamp"] == [stamp]
    assert meta["timezone"] == tz_abbr
    assert meta["regularMarketTime"] == stamp


def test_range_is_half_open_and_clipped_at_now() -> None:
    """Bars whose open equals period2 are excluded, and no bar lies in the future."""
    open_ = epoch(2024, 1, 5, 14, 30)
    query = {"period1": str(open_ - 86400 * 3), "period2": str(open_)}
    _, body = chart_response("AAPL", query, SimConfig(), NOW)
    assert open_ not in body["chart"]["result"][0]["timestamp"]
    future = {"period1": str(epoch(2026, 1, 12)), "period2": str(epoch(2026, 3, 1))}
    _, body = chart_response("AAPL", future, SimConfig(), NOW)
    assert max(body["chart"]["result"][0]["timestamp"]) <= NOW


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 422, "Unprocessable Entity"),
        ({"period1": "soon", "period2": "1704758400"}, 400, "Bad Request"),
        ({"period1": "1704758400", "period2": "1704067200"}, 400, "Bad Request"),
        (
            {"period1": "1704067200", "period2": "1704758400", "interval": "5m"},
            422,
            "Unprocessable Entity",
        ),
        ({"range": "7y"}, 422, "Unprocessable Entity"),
    ],
)
def test_bad_parameters_get_yahoo_error_bodies(
    query: dict[str, str], status: int, code: str
) -> None:
    """Missing or invalid parameters are refused with Yahoo's error envelope."""
    got_status, body = chart_response("AAPL", query, SimConfig(), NOW)
    assert got_status == status
    assert body["chart"]["result"] is None
    assert body["chart"]["error"]["code"] == code


def test_range_parameter_returns_recent_bars() -> None:
    """``range=5d`` returns the last trading days up to now."""
    status, body = chart_response("AAPL", {"range": "5d", "interval": "1d"}, SimConfig(), NOW)
    assert status == 200
    stamps = body["chart"]["result"][0]["timestamp"]
    assert 3 <= len(stamps) <= 5
    assert NOW - 6 * 86400 < stamps[0] < stamps[-1] <= NOW
