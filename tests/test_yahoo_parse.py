"""Tests for the pure parts of finappd.providers.yahoo: chart parsing and trading dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from finappd.providers.yahoo import chart_window, parse_chart, trading_date
from finappd.records import Bar

Row = tuple[int, float | None, float | None, float | None, float | None, float | None, float | None]


def at(tz: str, year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Epoch seconds of a wall-clock time in ``tz``."""
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp())


def chart(symbol: str, tz: str, rows: list[Row], *, adjclose: bool = True) -> dict[str, Any]:
    """A chart payload shaped like Yahoo's (beanprice's fixtures) from (ts, o, h, l, c, v, adj)."""
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) or [()] * 7
    indicators: dict[str, Any] = {
        "quote": [
            {
                "open": list(columns[1]),
                "high": list(columns[2]),
                "low": list(columns[3]),
                "close": list(columns[4]),
                "volume": list(columns[5]),
            }
        ]
    }
    if adjclose:
        indicators["adjclose"] = [{"adjclose": list(columns[6])}]
    result: dict[str, Any] = {
        "meta": {
            "currency": "USD",
            "symbol": symbol,
            "exchangeTimezoneName": tz,
            "dataGranularity": "1d",
        },
        "indicators": indicators if rows else {"quote": [{}]},
    }
    if rows:
        result["timestamp"] = list(columns[0])
    return {"chart": {"result": [result], "error": None}}


def chart_error(code: str, description: str) -> dict[str, Any]:
    """A chart error payload."""
    return {"chart": {"result": None, "error": {"code": code, "description": description}}}


XSP_TO = chart(
    "XSP.TO",
    "America/Toronto",
    [
        (1509111000, 29.36, 29.51, 29.34, 29.48, 160800, 29.236),
        (1509370200, 29.43, 29.49, 29.35, 29.41, 118700, 29.167),
    ],
)


def result_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The first chart result of a payload."""
    result: dict[str, Any] = payload["chart"]["result"][0]
    return result


def test_sydney_bar_opening_on_previous_utc_day() -> None:
    """A BHP.AX bar stamped 23:00 UTC on the 3rd is the Sydney trading day of the 4th."""
    rows: list[Row] = [(at("UTC", 2024, 3, 3, 23, 0), 45.0, 45.5, 44.8, 45.2, 5e6, 45.2)]
    result = result_of(chart("BHP.AX", "Australia/Sydney", rows))
    bars = parse_chart(result, "BHP.AX", date(2024, 3, 4), date(2024, 3, 4))
    assert [b.ts for b in bars] == [date(2024, 3, 4)]


def test_auckland_bar_is_not_dated_in_utc() -> None:
    """An AIR.NZ bar stamped 21:00 UTC on the 3rd (10:00 NZDT) is the trading day of the 4th."""
    rows: list[Row] = [(at("Pacific/Auckland", 2024, 3, 4, 10, 0), 0.6, 0.6, 0.6, 0.6, 1e5, 0.6)]
    result = result_of(chart("AIR.NZ", "Pacific/Auckland", rows))
    bars = parse_chart(result, "AIR.NZ", date(2024, 3, 3), date(2024, 3, 4))
    assert [b.ts for b in bars] == [date(2024, 3, 4)]


def test_new_york_across_dst_change() -> None:
    """^GSPC bars before (14:30 UTC) and after (13:30 UTC) the March DST change keep their dates."""
    rows: list[Row] = [
        (at("America/New_York", 2024, 3, 8, 9, 30), 5130.0, 5189.0, 5117.0, 5123.7, 4e9, 5123.7),
        (at("America/New_York", 2024, 3, 11, 9, 30), 5111.0, 5124.0, 5091.0, 5117.9, 4e9, 5117.9),
    ]
    result = result_of(chart("^GSPC", "America/New_York", rows))
    bars = parse_chart(result, "^GSPC", date(2024, 3, 8), date(2024, 3, 11))
    assert [b.ts for b in bars] == [date(2024, 3, 8), date(2024, 3, 11)]


def test_nulls_skip_the_bar_or_become_none() -> None:
    """A null close skips the bar; other nulls become None fields."""
    rows: list[Row] = [
        (at("America/New_York", 2024, 3, 4, 9, 30), None, None, None, 10.0, None, None),
        (at("America/New_York", 2024, 3, 5, 9, 30), None, None, None, None, None, None),
    ]
    result = result_of(chart("FBIIX", "America/New_York", rows))
    bars = parse_chart(result, "FBIIX", date(2024, 3, 1), date(2024, 3, 8))
    assert bars == [Bar("FBIIX", date(2024, 3, 4), None, None, None, 10.0, None, None)]


def test_missing_timestamp_means_no_bars() -> None:
    """A result with meta but no timestamp array is an empty list, not an error."""
    result = result_of(chart("AAPL", "America/New_York", []))
    assert parse_chart(result, "AAPL", date(2024, 3, 9), date(2024, 3, 10)) == []


def test_adjclose_is_optional() -> None:
    """Without an adjclose indicator, bars carry adj_close None."""
    rows: list[Row] = [(at("America/New_York", 2024, 3, 4, 9, 30), 1.0, 2.0, 0.5, 1.5, 10, None)]
    result = result_of(chart("AAPL", "America/New_York", rows, adjclose=False))
    bars = parse_chart(result, "AAPL", date(2024, 3, 4), date(2024, 3, 4))
    assert [(b.close, b.adj_close) for b in bars] == [(1.5, None)]


def test_duplicate_day_keeps_the_later_row() -> None:
    """Two rows on one local date (a Yahoo quirk) give one bar, from the later row."""
    rows: list[Row] = [
        (at("America/New_York", 2024, 3, 4, 9, 30), 1.0, 2.0, 0.5, 1.5, 10, 1.5),
        (at("America/New_York", 2024, 3, 4, 15, 59), 1.0, 2.0, 0.5, 1.6, 12, 1.6),
    ]
    result = result_of(chart("AAPL", "America/New_York", rows))
    bars = parse_chart(result, "AAPL", date(2024, 3, 4), date(2024, 3, 4))
    assert [(b.close, b.volume) for b in bars] == [(1.6, 12.0)]


def _columns_chart(**columns: list[Any]) -> dict[str, Any]:
    """A New York chart result of three sessions with the given columns as sent."""
    stamps = [at("America/New_York", 2024, 3, d, 9, 30) for d in (4, 5, 6)]
    quote = {"open": [1.0] * 3, "high": [2.0] * 3, "low": [0.5] * 3, "close": [1.5] * 3}
    quote["volume"] = [10, 11, 12]
    adjclose = columns.pop("adjclose", [1.4] * 3)
    quote.update(columns)
    return {
        "meta": {"currency": "USD", "exchangeTimezoneName": "America/New_York"},
        "timestamp": stamps,
        "indicators": {"quote": [quote], "adjclose": [{"adjclose": adjclose}]},
    }


def _parsed(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    bars = parse_chart(result, "AAPL", date(2024, 3, 1), date(2024, 3, 8))
    return [(b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume) for b in bars]


def test_columns_read_as_floats_whatever_json_number_they_were() -> None:
    """Integers (volumes, whole prices) read as floats, nulls as None, a short column's
    missing values as None, a long column's extra values are ignored."""
    result = _columns_chart(
        open=[1, None, 3.5], high=[2.0, 2.0], low=[0.5, 0.5, 0.5, 0.5], adjclose=[]
    )
    rows = _parsed(result)
    assert rows == [
        (date(2024, 3, 4), 1.0, 2.0, 0.5, 1.5, None, 10.0),
        (date(2024, 3, 5), None, 2.0, 0.5, 1.5, None, 11.0),
        (date(2024, 3, 6), 3.5, None, 0.5, 1.5, None, 12.0),
    ]
    assert all(type(value) is float for row in rows for value in row[1:] if value is not None)


def test_a_column_with_a_non_number_is_read_value_by_value() -> None:
    """A bool or string in a row that is skipped (null close) is never looked at; the same
    column otherwise reads as a clean one; in a row that is kept it is malformed."""
    skipped = _columns_chart(open=[1.0, True, "x"], close=[1.5, None, None])
    clean = _columns_chart(open=[1.0, None, None], close=[1.5, None, None])
    assert _parsed(skipped) == _parsed(clean) == [(date(2024, 3, 4), 1.0, 2.0, 0.5, 1.5, 1.4, 10.0)]
    with pytest.raises(TypeError, match="expected a number, got True"):
        _parsed(_columns_chart(volume=[10, True, 12]))
    with pytest.raises(TypeError, match="expected a number, got 'x'"):
        _parsed(_columns_chart(close=[1.5, "x", 1.5]))


@pytest.mark.parametrize(
    ("stamp", "tz", "expected"),
    [
        (1509111000, "America/Toronto", date(2017, 10, 27)),
        (at("UTC", 2024, 3, 4, 0, 0), "Asia/Tokyo", date(2024, 3, 4)),
        (at("UTC", 2024, 3, 3, 23, 0), "Australia/Sydney", date(2024, 3, 4)),
        (at("UTC", 2024, 3, 8, 14, 30), "America/New_York", date(2024, 3, 8)),
        (at("UTC", 2024, 3, 11, 13, 30), "America/New_York", date(2024, 3, 11)),
        (at("UTC", 2024, 3, 9, 0, 0), "UTC", date(2024, 3, 9)),
        (at("UTC", 2024, 3, 3, 21, 0), "Pacific/Auckland", date(2024, 3, 4)),
        (at("UTC", 2024, 3, 5, 0, 30), "America/New_York", date(2024, 3, 4)),
        (at("America/Sao_Paulo", 2018, 11, 4, 23, 0), "America/Sao_Paulo", date(2018, 11, 5)),
    ],
)
def test_trading_date(stamp: int, tz: str, expected: date) -> None:
    """The trading date is the exchange-local date; a 23:00 'midnight' bar moves forward."""
    assert trading_date(stamp, ZoneInfo(tz)) == expected


def test_chart_window_has_a_day_of_margin_before_start() -> None:
    """period1 is 00:00 UTC the day before start, period2 00:00 UTC the day after end."""
    period1, period2 = chart_window(date(2024, 3, 4), date(2024, 3, 5))
    assert datetime.fromtimestamp(period1, UTC) == datetime(2024, 3, 3, tzinfo=UTC)
    assert datetime.fromtimestamp(period2, UTC) == datetime(2024, 3, 6, tzinfo=UTC)
