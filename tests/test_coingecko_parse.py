"""Tests for the pure parts of finappd.providers.coingecko: ids, windows, closes, classifier."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from finappd.providers.base import Response
from finappd.providers.coingecko import (
    classify_coingecko,
    coin_of,
    parse_market_chart,
    parse_simple_price,
    range_window,
)
from finappd.providers.verdicts import Verdict
from finappd.records import Bar, Quote

NOW = datetime(2024, 3, 10, 14, 23, 5, tzinfo=UTC)


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch milliseconds of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def chart(points: list[tuple[int, float]]) -> dict[str, Any]:
    """A market_chart body with the given price samples and volumes of 1000 times the price."""
    return {
        "prices": [[t, p] for t, p in points],
        "market_caps": [[t, p * 1e7] for t, p in points],
        "total_volumes": [[t, p * 1000] for t, p in points],
    }


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def response(status: int, body: Any, retry_after: str | None = None) -> Response:
    """A Response as BaseProvider builds it (``body`` JSON-encoded unless a string)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(status, "https://api.coingecko.com/x", "application/json", retry_after, text)


@pytest.mark.parametrize(
    ("symbol", "coin"),
    [
        ("BTC-USD", ("bitcoin", "usd")),
        ("ETH-EUR", ("ethereum", "eur")),
        ("btc-usd", ("bitcoin", "usd")),
        ("AVAX-USD", ("avalanche-2", "usd")),
        ("bitcoin", ("bitcoin", "usd")),
        ("bitcoin/eur", ("bitcoin", "eur")),
        ("matic-network/usd", ("matic-network", "usd")),
        ("PEPE-USD", None),
        ("AAPL", None),
        ("BRK-B", None),
    ],
)
def test_coin_ids_are_declared_not_guessed(symbol: str, coin: tuple[str, str] | None) -> None:
    """Known tickers map to coin ids, id forms pass through, anything else is unknown."""
    assert coin_of(symbol) == coin


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        # A short range is widened back to 91 days before the day after `end`.
        (date(2024, 3, 4), date(2024, 3, 8), utc(2023, 12, 9, 1), utc(2024, 3, 9, 1)),
        # A long range keeps its own start (the day after, an hour early).
        (date(2023, 6, 1), date(2024, 3, 8), utc(2023, 6, 1, 23), utc(2024, 3, 9, 1)),
        # Near the 365-day cap the widening stops at the cap (hourly samples then).
        (date(2023, 5, 1), date(2023, 5, 5), utc(2023, 3, 12, 14, 23, 5),
         utc(2023, 5, 6, 1)),
        # Month end and leap day: the close of Feb 29 is sampled at 00:00 on Mar 1.
        (date(2024, 2, 29), date(2024, 2, 29), utc(2023, 12, 1, 1), utc(2024, 3, 1, 1)),
    ],
)  # fmt: skip
def test_range_window(start: date, end: date, first: datetime, last: datetime) -> None:
    """from/to cover the day after start..the day after end, widened to 91 days within the cap."""
    assert range_window(start, end, NOW) == (
        int(first.timestamp()),
        int(last.timestamp()),
    )


def test_midnight_sample_is_the_previous_days_close() -> None:
    """Daily samples at 00:00 UTC close the previous UTC day; the live last sample is dropped."""
    body = chart(
        [
            (ms(2024, 3, 4), 100.0),
            (ms(2024, 3, 5), 101.0),
            (ms(2024, 3, 6), 102.0),
            (ms(2024, 3, 6, 14, 23), 103.5),  # the price at request time
        ]
    )
    bars = parse_market_chart(body, "BTC-USD", date(2024, 3, 1), date(2024, 3, 31))
    assert bars == [
        Bar("BTC-USD", date(2024, 3, 3), None, None, None, 100.0, None, 100000.0),
        Bar("BTC-USD", date(2024, 3, 4), None, None, None, 101.0, None, 101000.0),
        Bar("BTC-USD", date(2024, 3, 5), None, None, None, 102.0, None, 102000.0),
    ]


def test_last_sample_on_midnight_is_kept() -> None:
    """A last sample exactly on midnight is a close, not the live price."""
    body = chart([(ms(2024, 3, 5), 101.0), (ms(2024, 3, 6), 102.0)])
    bars = parse_market_chart(body, "BTC-USD", date(2024, 3, 1), date(2024, 3, 31))
    assert [b.ts for b in bars] == [date(2024, 3, 4), date(2024, 3, 5)]


def test_hourly_samples_pick_the_one_nearest_midnight() -> None:
    """With hourly samples, the one nearest 00:00 UTC (within 30 min) closes the day before."""
    body = chart(
        [
            (ms(2024, 3, 4, 22, 58), 1.0),
            (ms(2024, 3, 4, 23, 58), 2.0),  # 2 min before midnight: the close of Mar 4
            (ms(2024, 3, 5, 0, 58), 3.0),
            (ms(2024, 3, 5, 12, 0), 4.0),
            (ms(2024, 3, 6, 0, 20), 5.0),  # 20 min after midnight: the close of Mar 5
            (ms(2024, 3, 6, 1, 20), 6.0),
            (ms(2024, 3, 6, 1, 25), 7.0),  # live price
        ]
    )
    bars = parse_market_chart(body, "ETH-USD", date(2024, 3, 1), date(2024, 3, 31))
    assert [(b.ts, b.close) for b in bars] == [(date(2024, 3, 4), 2.0), (date(2024, 3, 5), 5.0)]


def test_closes_outside_the_range_are_dropped() -> None:
    """Samples from the widened window outside start..end give no bars."""
    points = [(ms(2024, 1, 1) + i * 86_400_000, float(i)) for i in range(70)]
    bars = parse_market_chart(chart(points), "BTC-USD", date(2024, 3, 4), date(2024, 3, 5))
    assert [(b.ts, b.close) for b in bars] == [(date(2024, 3, 4), 64.0), (date(2024, 3, 5), 65.0)]


def test_empty_series_gives_no_bars() -> None:
    """A range with no samples gives no bars."""
    body: dict[str, list[Any]] = {"prices": [], "market_caps": [], "total_volumes": []}
    assert parse_market_chart(body, "BTC-USD", date(2024, 3, 1), date(2024, 3, 31)) == []


@pytest.mark.parametrize("body", [[], {"prices": {}}, {"prices": [["x", 1.0]]}])
def test_malformed_chart_raises(body: object) -> None:
    """Non-object bodies, non-array prices and non-numeric stamps raise TypeError."""
    with pytest.raises(TypeError):
        parse_market_chart(body, "BTC-USD", date(2024, 3, 1), date(2024, 3, 31))


SIMPLE = {
    "bitcoin": {"usd": 83749, "eur": 74795, "last_updated_at": 1791367550},
    "ethereum": {"usd": 2451.77, "eur": 2190.1, "last_updated_at": 1791367550},
}


def test_simple_price_gives_a_utc_quote() -> None:
    """simple/price gives the price in the vs currency at last_updated_at (UTC)."""
    quote = parse_simple_price(SIMPLE, "ethereum", "eur", "ETH-EUR")
    assert quote == Quote("ETH-EUR", datetime.fromtimestamp(1791367550, UTC), 2190.1, "EUR")


@pytest.mark.parametrize(("coin", "vs"), [("dogecoin", "usd"), ("bitcoin", "chf")])
def test_simple_price_absent_coin_or_currency_is_none(coin: str, vs: str) -> None:
    """A coin or currency missing from the object means no quote."""
    assert parse_simple_price(SIMPLE, coin, vs, "X") is None


RATE = {
    "status": {
        "error_code": 429,
        "error_message": "You've exceeded the Rate Limit. Please visit "
        "https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher "
        "rate limits.",
    }
}
RANGE = {
    "error": {
        "status": {
            "timestamp": "2024-03-10T14:23:05.123+00:00",
            "error_code": 10012,
            "error_message": "Your request exceeds the allowed time range. Public API users "
            "are limited to querying historical data within the past 365 days. Upgrade to a "
            "paid plan to enjoy full historical data access: https://www.coingecko.com/en/api/pricing.",
        }
    }
}


def status_error(code: int, message: str) -> dict[str, Any]:
    """CoinGecko's ``{"status": {...}}`` error body."""
    return {"status": {"error_code": code, "error_message": message}}


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, SIMPLE, Verdict.OK),
        (200, chart([(ms(2024, 3, 5), 1.0)]), Verdict.OK),
        (200, {}, Verdict.NOT_FOUND),
        (404, {"error": "coin not found"}, Verdict.NOT_FOUND),
        (429, RATE, Verdict.RATE_LIMITED),
        (401, RANGE, Verdict.PLAN_GATED),
        (401, status_error(10005, "This request is limited Pro API subscribers."),
         Verdict.PLAN_GATED),
        (401, status_error(10002, "API Key Missing"), Verdict.AUTH),
        (401, status_error(10010, "Invalid API Key: use pro-api.coingecko.com"), Verdict.AUTH),
        (401, status_error(10011, "Invalid API Key: use api.coingecko.com"), Verdict.AUTH),
        (403, "<html>Access denied (1020)</html>", Verdict.AUTH),
        (503, "<html>Service Unavailable</html>", Verdict.TRANSIENT),
        (200, "", Verdict.TRANSIENT),
        (200, "<html>maintenance</html>", Verdict.TRANSIENT),
        (400, {"error": "invalid vs_currency"}, Verdict.BAD),
    ],
)  # fmt: skip
def test_classifier_table(status: int, body: Any, verdict: Verdict) -> None:
    """Every error shape of PROVIDERS.md section 8 gets its verdict."""
    assert classify_coingecko(response(status, body), NOW).verdict == verdict


def test_rate_limit_honours_retry_after() -> None:
    """A 429's Retry-After header becomes the verdict's wait; without one there is none."""
    assert classify_coingecko(response(429, RATE, retry_after="30"), NOW).retry_after == 30.0
    assert classify_coingecko(response(429, RATE), NOW).retry_after is None


def test_reason_names_the_error_code() -> None:
    """The plan-gated reason carries CoinGecko's code and message."""
    reason = classify_coingecko(response(401, RANGE), NOW).reason
    assert reason.startswith("HTTP 401 error 10012: Your request exceeds the allowed time range")


def test_history_cap_is_365_days() -> None:
    """The widening never asks for more than 364 days of history."""
    first, _ = range_window(date(2023, 4, 1), date(2023, 4, 2), NOW)
    assert datetime.fromtimestamp(first, UTC) >= NOW - timedelta(days=365)
