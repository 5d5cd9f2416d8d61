"""Tests for the pure parts of finappd.providers.tiingo: rows, actions, symbols, classifier."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from finappd.providers.base import Response
from finappd.providers.tiingo import (
    classify_tiingo,
    parse_actions,
    parse_daily,
    row_date,
    split_ratio,
    tiingo_symbol,
)
from finappd.providers.verdicts import Verdict
from finappd.records import Bar, Dividend, Split

NOW = datetime(2024, 3, 5, 14, 20, 0, tzinfo=UTC)


def row(day: str, price: float, **extra: Any) -> dict[str, Any]:
    """One daily-prices row shaped like Tiingo's (tiingo-python fixture fields)."""
    values: dict[str, Any] = {
        "date": f"{day}T00:00:00.000Z",
        "open": price - 1,
        "high": price + 2,
        "low": price - 3,
        "close": price,
        "volume": 1327870,
        "adjOpen": price - 1,
        "adjHigh": price + 2,
        "adjLow": price - 3,
        "adjClose": price * 0.9,
        "adjVolume": 1327870,
        "divCash": 0.0,
        "splitFactor": 1.0,
    }
    values.update(extra)
    return values


#: From tiingo-python's tests/fixtures/ticker_price_with_date.yaml (PROVIDERS.md section 6).
GOOGL_2015 = [
    {
        "date": "2015-01-02T00:00:00.000Z",
        "open": 532.6,
        "high": 535.8,
        "low": 527.88,
        "close": 529.55,
        "volume": 1327870,
        "adjOpen": 532.6,
        "adjHigh": 535.8,
        "adjLow": 527.88,
        "adjClose": 529.55,
        "adjVolume": 1327870,
        "divCash": 0.0,
        "splitFactor": 1.0,
    },
    {
        "date": "2015-01-05T00:00:00.000Z",
        "open": 527.15,
        "high": 527.9899,
        "low": 517.75,
        "close": 519.46,
        "volume": 2059119,
        "adjOpen": 527.15,
        "adjHigh": 527.9899,
        "adjLow": 517.75,
        "adjClose": 519.46,
        "adjVolume": 2059119,
        "divCash": 0.0,
        "splitFactor": 1.0,
    },
]


def response(
    status: int, body: str, content_type: str = "application/json", retry_after: str | None = None
) -> Response:
    """A Response as BaseProvider builds it."""
    return Response(status, "https://api.tiingo.com/x", content_type, retry_after, body)


def test_fixture_rows_become_raw_bars_with_adj_close() -> None:
    """The fixture's two rows give raw OHLCV bars dated by the date part, adjClose alongside."""
    bars = parse_daily(GOOGL_2015, "GOOGL", date(2015, 1, 1), date(2015, 1, 5))
    assert bars == [
        Bar("GOOGL", date(2015, 1, 2), 532.6, 535.8, 527.88, 529.55, 529.55, 1327870.0),
        Bar("GOOGL", date(2015, 1, 5), 527.15, 527.9899, 517.75, 519.46, 519.46, 2059119.0),
    ]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2015-01-02T00:00:00.000Z", date(2015, 1, 2)),  # midnight UTC: not moved to Jan 1 (ET)
        ("2024-03-10T00:00:00.000Z", date(2024, 3, 10)),  # US DST starts that day
        ("2024-02-29T00:00:00+00:00", date(2024, 2, 29)),  # leap day, offset spelling
        ("2023-12-31T00:00:00.000Z", date(2023, 12, 31)),  # year end
    ],
)
def test_row_date_is_the_date_part_unconverted(text: str, day: date) -> None:
    """A row's trading date is the date part of its midnight-UTC stamp, never shifted to ET."""
    assert row_date(text) == day


def test_rows_are_filtered_sorted_and_deduplicated() -> None:
    """Rows outside the range are dropped, order is ascending, a repeated date keeps the later."""
    rows = [row("2024-03-06", 12.0), row("2024-03-01", 9.0), row("2024-03-04", 10.0)]
    rows.append(row("2024-03-04", 11.0))
    bars = parse_daily(rows, "AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert [(b.ts, b.close) for b in bars] == [(date(2024, 3, 4), 11.0)]


def test_null_close_is_skipped_and_null_fields_are_none() -> None:
    """A row without a close is skipped; a null volume is None."""
    rows = [row("2024-03-04", 10.0, volume=None), row("2024-03-05", 1.0, close=None)]
    bars = parse_daily(rows, "AAPL", date(2024, 3, 4), date(2024, 3, 5))
    assert [(b.ts, b.volume) for b in bars] == [(date(2024, 3, 4), None)]


@pytest.mark.parametrize(
    "payload",
    [{"detail": "x"}, [1, 2], [{"close": 1.0}], [row("2024-03-04", 1.0, close="10")]],
)
def test_malformed_payloads_raise(payload: object) -> None:
    """A non-array, non-object rows, a missing date or a string price raise a parse error."""
    with pytest.raises((TypeError, KeyError)):
        parse_daily(payload, "AAPL", date(2024, 3, 1), date(2024, 3, 31))


def test_actions_from_div_cash_and_split_factor() -> None:
    """divCash ≠ 0 is a dividend, splitFactor ≠ 1 a split, both on that row's date."""
    rows = [
        row("2020-08-07", 444.45, divCash=0.82),
        row("2020-08-31", 129.04, splitFactor=4.0),
        row("2020-09-01", 134.18),
        row("2020-09-02", 10.0, splitFactor=0.1),
    ]
    dividends, splits = parse_actions(rows, "AAPL", date(2020, 8, 1), date(2020, 9, 30))
    assert dividends == [Dividend("AAPL", date(2020, 8, 7), 0.82, "USD")]
    assert splits == [
        Split("AAPL", date(2020, 8, 31), 4.0, 1.0),
        Split("AAPL", date(2020, 9, 2), 1.0, 10.0),
    ]


@pytest.mark.parametrize(
    ("factor", "ratio"),
    [(4.0, (4.0, 1.0)), (0.5, (1.0, 2.0)), (1.5, (3.0, 2.0)), (1 / 3, (1.0, 3.0))],
)
def test_split_ratio(factor: float, ratio: tuple[float, float]) -> None:
    """A split factor becomes the smallest numerator:denominator."""
    assert split_ratio(factor) == ratio


@pytest.mark.parametrize(
    ("symbol", "mapped"),
    [("AAPL", "aapl"), ("BRK-B", "brk-b"), ("BRK.B", "brk-b"), (" msft ", "msft")],
)
def test_symbols_are_lowercase_with_dash(symbol: str, mapped: str) -> None:
    """Tickers are lowercased and share classes use a dash."""
    assert tiingo_symbol(symbol) == mapped


HOURLY = "Error: You have run over your hourly request allocation."
DAILY = "Error: You have run over your daily request allocation."
MONTHLY = (
    "You have run over your 500 symbol look up for this month. Please upgrade at "
    "https://api.tiingo.com/pricing to have your limits increased."
)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "verdict", "retry_after"),
    [
        (200, json.dumps(GOOGL_2015), "application/json", Verdict.OK, None),
        (200, "[]", "application/json", Verdict.EMPTY, None),
        (404, '{"detail":"Error: Ticker \'ZZZZ\' not found"}', "application/json",
         Verdict.NOT_FOUND, None),
        (200, "Error: Ticker 'ZZZZ' not found", "text/plain", Verdict.NOT_FOUND, None),
        (401, '{"detail":"Invalid token."}', "application/json", Verdict.AUTH, None),
        (403, "None", "text/plain", Verdict.AUTH, None),
        (429, json.dumps({"detail": HOURLY}), "application/json", Verdict.RATE_LIMITED, 2400.0),
        (200, HOURLY, "text/plain", Verdict.RATE_LIMITED, 2400.0),
        (200, DAILY, "text/plain", Verdict.QUOTA_EXHAUSTED, None),
        (429, json.dumps({"detail": DAILY}), "application/json", Verdict.QUOTA_EXHAUSTED,
         None),
        (200, MONTHLY, "text/plain", Verdict.QUOTA_EXHAUSTED, None),
        (429, json.dumps({"detail": MONTHLY}), "application/json", Verdict.QUOTA_EXHAUSTED,
         None),
        (429, "Too Many Requests", "text/plain", Verdict.RATE_LIMITED, None),
        (200, "<html><body>Down for maintenance</body></html>", "text/html",
         Verdict.TRANSIENT, None),
        (200, "", "application/json", Verdict.TRANSIENT, None),
        (502, "Bad Gateway", "text/plain", Verdict.TRANSIENT, None),
        (400, '{"detail":"Error: startDate is after endDate"}', "application/json",
         Verdict.BAD, None),
        (200, '{"something": "else"}', "application/json", Verdict.BAD, None),
    ],
)  # fmt: skip
def test_classifier_table(
    status: int, body: str, content_type: str, verdict: Verdict, retry_after: float | None
) -> None:
    """Every error shape of PROVIDERS.md section 6 gets its verdict and its wait."""
    classified = classify_tiingo(response(status, body, content_type), NOW)
    assert (classified.verdict, classified.retry_after) == (verdict, retry_after)


def test_retry_after_header_wins_for_hourly_limit() -> None:
    """A Retry-After header on the hourly 429 replaces the wait until the next hour."""
    body = json.dumps({"detail": HOURLY})
    classified = classify_tiingo(response(429, body, retry_after="120"), NOW)
    assert (classified.verdict, classified.retry_after) == (Verdict.RATE_LIMITED, 120.0)


def test_reasons_carry_the_message_not_the_url() -> None:
    """A verdict's reason quotes Tiingo's message and never the request URL."""
    classified = classify_tiingo(response(404, '{"detail":"Error: Ticker \'X\' not found"}'), NOW)
    assert "Ticker 'X' not found" in classified.reason
    assert "api.tiingo.com" not in classified.reason
