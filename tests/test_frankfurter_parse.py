"""Tests for the pure parts of finappd.providers.frankfurter: pairs, rate bodies, classifier."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from finappd.providers.base import Response
from finappd.providers.frankfurter import classify_frankfurter, fx_pair, parse_rates
from finappd.providers.verdicts import Verdict
from finappd.records import FxRate

NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)

#: PROVIDERS.md section 9's range example: asked from Jan 1 (a holiday), snapped to Dec 29.
RANGE: dict[str, Any] = {
    "amount": 1.0,
    "base": "EUR",
    "start_date": "2023-12-29",
    "end_date": "2024-01-03",
    "rates": {
        "2023-12-29": {"USD": 1.105, "GBP": 0.86905},
        "2024-01-02": {"USD": 1.0956, "GBP": 0.86760},
        "2024-01-03": {"USD": 1.0919, "GBP": 0.86518},
    },
}
ONE_DATE: dict[str, Any] = {
    "amount": 1.0,
    "base": "EUR",
    "date": "2024-01-15",
    "rates": {"GBP": 0.8623, "USD": 1.0945},
}


def response(status: int, body: Any, content_type: str = "application/json") -> Response:
    """A Response as BaseProvider builds it (``body`` JSON-encoded unless a string)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(status, "https://api.frankfurter.dev/v1/x", content_type, None, text)


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("EUR/USD", ("EUR", "USD")),
        ("eur/gbp", ("EUR", "GBP")),
        ("EURUSD=X", ("EUR", "USD")),
        ("JPY=X", ("USD", "JPY")),  # Yahoo's JPY=X is yen per dollar
        ("GBPJPY", ("GBP", "JPY")),
    ],
)
def test_fx_pair_forms(symbol: str, pair: tuple[str, str]) -> None:
    """Slash pairs, Yahoo's =X tickers and bare six-letter pairs give (base, quote)."""
    assert fx_pair(symbol) == pair


@pytest.mark.parametrize("symbol", ["AAPL", "EUR/US", "EURO/USD", "BTC-USD", "E1R/USD"])
def test_fx_pair_rejects_non_pairs(symbol: str) -> None:
    """Anything but two three-letter codes is refused with the expected forms named."""
    with pytest.raises(ValueError, match="EUR/USD"):
        fx_pair(symbol)


def test_range_snapped_start_is_filtered() -> None:
    """Rates published before the asked start (the snapped start_date) are dropped."""
    rates = parse_rates(RANGE, "EUR", ["USD"], date(2024, 1, 1), date(2024, 1, 3))
    assert rates == [
        FxRate("EUR", "USD", date(2024, 1, 2), 1.0956),
        FxRate("EUR", "USD", date(2024, 1, 3), 1.0919),
    ]


def test_range_keeps_only_asked_quotes_in_date_then_quote_order() -> None:
    """Quotes not asked for are ignored; rows come by date, then quote."""
    rates = parse_rates(RANGE, "EUR", ["GBP", "USD"], date(2024, 1, 3), date(2024, 1, 3))
    assert [(r.day, r.quote) for r in rates] == [
        (date(2024, 1, 3), "GBP"),
        (date(2024, 1, 3), "USD"),
    ]


@pytest.mark.parametrize(
    ("asked", "count"),
    [
        (date(2024, 1, 15), 2),  # published that day
        (date(2024, 1, 16), 0),  # a body dated the 15th answers for the 16th: not that date
    ],
)
def test_one_date_body_keeps_the_publication_date(asked: date, count: int) -> None:
    """A one-date body is dated by its publication date, which must lie in the asked range."""
    rates = parse_rates(ONE_DATE, "EUR", ["USD", "GBP"], asked, asked)
    assert len(rates) == count
    assert all(r.day == date(2024, 1, 15) for r in rates)


def test_weekend_only_range_is_empty() -> None:
    """A Saturday..Sunday range snapped back to Friday gives no rates."""
    body = {"amount": 1.0, "base": "EUR", "start_date": "2024-01-12", "end_date": "2024-01-12",
            "rates": {"2024-01-12": {"USD": 1.0946}}}  # fmt: skip
    assert parse_rates(body, "EUR", ["USD"], date(2024, 1, 13), date(2024, 1, 14)) == []


@pytest.mark.parametrize(
    "body",
    [[], {"base": "EUR"}, {"rates": []}, {"rates": {"2024-01-02": 1.0}},
     {"rates": {"2024-01-02": {"USD": "1.0"}}}, {"rates": {"bad-date": {"USD": 1.0}}}],
)  # fmt: skip
def test_malformed_bodies_raise(body: object) -> None:
    """Bodies that are not Frankfurter's rate objects raise a parse error."""
    with pytest.raises((TypeError, KeyError, ValueError)):
        parse_rates(body, "EUR", ["USD"], date(2024, 1, 1), date(2024, 1, 31))


@pytest.mark.parametrize(
    ("status", "body", "content_type", "verdict"),
    [
        (200, RANGE, "application/json", Verdict.OK),
        (200, ONE_DATE, "application/json", Verdict.OK),
        (404, {"message": "not found"}, "application/json", Verdict.NOT_FOUND),
        (422, {"message": "bad currency pair"}, "application/json", Verdict.BAD),
        (422, {"message": "invalid amount"}, "application/json", Verdict.BAD),
        (503, {"message": "range too heavy, narrow the request"}, "application/json",
         Verdict.TRANSIENT),
        (502, "<html>Bad Gateway</html>", "text/html", Verdict.TRANSIENT),
        (200, "<html>Cloudflare</html>", "text/html", Verdict.TRANSIENT),
        (200, "", "application/json", Verdict.TRANSIENT),
        (429, "Too Many Requests", "text/plain", Verdict.RATE_LIMITED),
        (403, "<html>blocked</html>", "text/html", Verdict.TRANSIENT),
    ],
)  # fmt: skip
def test_classifier_table(status: int, body: Any, content_type: str, verdict: Verdict) -> None:
    """Every error shape of PROVIDERS.md section 9 gets its verdict."""
    assert classify_frankfurter(response(status, body, content_type), NOW).verdict == verdict


def test_reason_quotes_the_message() -> None:
    """The reason carries the status and Frankfurter's message."""
    reason = classify_frankfurter(response(422, {"message": "bad currency pair"}), NOW).reason
    assert reason == "HTTP 422: bad currency pair"
