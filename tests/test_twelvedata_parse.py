"""Tests for the pure parts of finappd.providers.twelvedata: series, quote, symbols, classifier."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from finappd.providers.base import Response
from finappd.providers.twelvedata import (
    classify_twelvedata,
    parse_quote,
    parse_time_series,
    rates_of,
    twelvedata_symbol,
)
from finappd.providers.verdicts import Verdict
from finappd.records import Bar, FxRate, Quote

NOW = datetime(2024, 3, 5, 14, 20, 15, tzinfo=UTC)

#: PROVIDERS.md section 7's time_series example: strings everywhere, newest first.
AAPL: dict[str, Any] = {
    "meta": {
        "symbol": "AAPL",
        "interval": "1day",
        "currency": "USD",
        "exchange_timezone": "America/New_York",
        "exchange": "NASDAQ",
        "mic_code": "XNGS",
        "type": "Common Stock",
    },
    "values": [
        {
            "datetime": "2024-01-03",
            "open": "184.22000",
            "high": "185.88000",
            "low": "183.43000",
            "close": "184.25000",
            "volume": "58414500",
        },
        {
            "datetime": "2024-01-02",
            "open": "187.15000",
            "high": "188.44000",
            "low": "183.89000",
            "close": "185.64000",
            "volume": "82488700",
        },
    ],
    "status": "ok",
}

EURUSD: dict[str, Any] = {
    "meta": {"symbol": "EUR/USD", "interval": "1day", "currency_base": "Euro",
             "currency_quote": "US Dollar", "type": "Physical Currency"},
    "values": [
        {"datetime": "2024-01-03", "open": "1.09420", "high": "1.09500",
         "low": "1.08920", "close": "1.09190"},
        {"datetime": "2024-01-02", "open": "1.10400", "high": "1.10450",
         "low": "1.09400", "close": "1.09420"},
    ],
    "status": "ok",
}  # fmt: skip

QUOTE: dict[str, Any] = {
    "symbol": "AAPL",
    "name": "Apple Inc",
    "exchange": "NASDAQ",
    "mic_code": "XNGS",
    "currency": "USD",
    "datetime": "2024-01-03",
    "timestamp": 1704258000,
    "last_quote_at": 1704315600,
    "open": "184.22000",
    "high": "185.88000",
    "low": "183.43000",
    "close": "184.25000",
    "volume": "58414500",
    "previous_close": "185.64000",
    "change": "-1.39000",
    "percent_change": "-0.74876",
    "is_market_open": False,
}


def response(status: int, body: Any, retry_after: str | None = None) -> Response:
    """A Response as BaseProvider builds it (``body`` JSON-encoded unless a string)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(status, "https://api.twelvedata.com/x", "application/json", retry_after, text)


def error(code: int, message: str) -> dict[str, Any]:
    """Twelve Data's error body."""
    return {"code": code, "message": message, "status": "error"}


def test_string_values_become_float_bars_oldest_first() -> None:
    """Newest-first string rows become ascending float bars; adj_close is None (split-only)."""
    bars = parse_time_series(AAPL, "AAPL", date(2024, 1, 1), date(2024, 1, 3))
    assert bars == [
        Bar("AAPL", date(2024, 1, 2), 187.15, 188.44, 183.89, 185.64, None, 82488700.0),
        Bar("AAPL", date(2024, 1, 3), 184.22, 185.88, 183.43, 184.25, None, 58414500.0),
    ]


def test_duplicates_are_merged_and_the_range_is_filtered() -> None:
    """A repeated datetime gives one bar (the later row's), and rows outside start..end go."""
    payload = json.loads(json.dumps(AAPL))
    payload["values"].append({**payload["values"][0], "close": "184.30000"})
    payload["values"].insert(0, {**payload["values"][0], "datetime": "2024-01-04"})
    bars = parse_time_series(payload, "AAPL", date(2024, 1, 2), date(2024, 1, 3))
    assert [(b.ts, b.close) for b in bars] == [
        (date(2024, 1, 2), 185.64),
        (date(2024, 1, 3), 184.3),
    ]


def test_fx_series_without_volume_gives_rates() -> None:
    """An FX series has no volume; its closes are the pair's daily rates."""
    bars = parse_time_series(EURUSD, "EUR/USD", date(2024, 1, 2), date(2024, 1, 3))
    assert all(b.volume is None for b in bars)
    assert rates_of(bars, "EUR", "USD") == [
        FxRate("EUR", "USD", date(2024, 1, 2), 1.0942),
        FxRate("EUR", "USD", date(2024, 1, 3), 1.0919),
    ]


def test_empty_or_missing_values_give_no_bars() -> None:
    """An ok body without rows gives no bars."""
    assert (
        parse_time_series({"meta": {}, "status": "ok"}, "X", date(2024, 1, 1), date(2024, 1, 9))
        == []
    )


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"values": {}},
        {"values": [{"close": "1"}]},
        {"values": [{"datetime": "x", "close": "1"}]},
    ],
)
def test_malformed_series_raise(payload: object) -> None:
    """Non-object bodies, non-array values, rows without a valid datetime raise."""
    with pytest.raises((TypeError, KeyError, ValueError)):
        parse_time_series(payload, "AAPL", date(2024, 1, 1), date(2024, 1, 9))


def test_quote_uses_close_and_last_quote_at() -> None:
    """/quote's close is the price at last_quote_at (UTC), with currency and previous close."""
    assert parse_quote(QUOTE, "AAPL") == Quote(
        "AAPL", datetime(2024, 1, 3, 21, 0, tzinfo=UTC), 184.25, "USD", 185.64
    )


def test_quote_without_last_quote_at_uses_timestamp() -> None:
    """Without last_quote_at the bar's timestamp is the quote time."""
    payload = {k: v for k, v in QUOTE.items() if k != "last_quote_at"}
    assert parse_quote(payload, "AAPL").ts == datetime(2024, 1, 3, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("symbol", "mapped"),
    [
        ("AAPL", "AAPL"),
        ("BRK-B", "BRK.B"),
        ("brk.b", "BRK.B"),
        ("EURUSD=X", "EUR/USD"),
        ("JPY=X", "USD/JPY"),
        ("BTC-USD", "BTC/USD"),
        ("ETH-EUR", "ETH/EUR"),
        ("EUR/USD", "EUR/USD"),
    ],
)
def test_symbol_mapping(symbol: str, mapped: str) -> None:
    """Share classes take a dot, Yahoo FX and crypto tickers become slash pairs."""
    assert twelvedata_symbol(symbol) == mapped


MINUTE = (
    "You have run out of API credits for the current minute. 9 API credits were used, with "
    "the current limit being 8. Wait for the next minute or consider switching to a higher "
    "tier plan at https://twelvedata.com/pricing"
)
DAY = (
    "You have run out of API credits for the day. 801 API credits were used, with the "
    "current limit being 800. Wait for the next day or consider switching to a higher tier "
    "plan at https://twelvedata.com/pricing"
)
UNTIL_MIDNIGHT = 9 * 3600 + 39 * 60 + 45.0


@pytest.mark.parametrize(
    ("status", "body", "verdict", "retry_after"),
    [
        (200, AAPL, Verdict.OK, None),
        (200, QUOTE, Verdict.OK, None),
        (200, error(429, MINUTE), Verdict.RATE_LIMITED, 45.0),
        (429, error(429, MINUTE), Verdict.RATE_LIMITED, 45.0),
        (200, error(429, DAY), Verdict.QUOTA_EXHAUSTED, UNTIL_MIDNIGHT),
        (429, error(429, DAY), Verdict.QUOTA_EXHAUSTED, UNTIL_MIDNIGHT),
        (200, error(401, "Invalid API key. Please check your key."), Verdict.AUTH, None),
        (401, error(401, "**apikey** parameter is incorrect or not specified."), Verdict.AUTH,
         None),
        (200, error(400, "**symbol** not found: ZZZZ. Please specify it correctly according "
                         "to API Documentation."), Verdict.NOT_FOUND, None),
        (404, error(404, "**symbol** not found: ZZZZ. Please specify it correctly."),
         Verdict.NOT_FOUND, None),
        (200, error(403, "**symbol** EUR is not available with your plan. You may select the "
                         "appropriate plan at https://twelvedata.com/pricing"),
         Verdict.PLAN_GATED, None),
        (404, error(404, "**symbol** XNAS:ABC is not available with your plan."),
         Verdict.PLAN_GATED, None),
        (200, error(400, "No data is available on the specified dates. Try setting different "
                         "start/end dates."), Verdict.EMPTY, None),
        (200, error(500, "Internal server error"), Verdict.TRANSIENT, None),
        (200, error(400, "**interval** is not supported"), Verdict.BAD, None),
        (502, "<html>Bad Gateway</html>", Verdict.TRANSIENT, None),
        (200, "", Verdict.TRANSIENT, None),
        (429, "Too Many Requests", Verdict.RATE_LIMITED, None),
    ],
)  # fmt: skip
def test_classifier_table(
    status: int, body: Any, verdict: Verdict, retry_after: float | None
) -> None:
    """Every error shape of PROVIDERS.md section 7, with HTTP 200 or the code as status."""
    classified = classify_twelvedata(response(status, body), NOW)
    assert (classified.verdict, classified.retry_after) == (verdict, retry_after)


def test_retry_after_header_wins_for_the_minute_limit() -> None:
    """A Retry-After header replaces the wait until the next minute."""
    classified = classify_twelvedata(response(429, error(429, MINUTE), retry_after="7"), NOW)
    assert classified.retry_after == 7.0


def test_reason_quotes_the_message() -> None:
    """A verdict's reason carries the code and Twelve Data's message."""
    reason = classify_twelvedata(response(200, error(401, "Invalid API key")), NOW).reason
    assert reason == "code 401: Invalid API key"
