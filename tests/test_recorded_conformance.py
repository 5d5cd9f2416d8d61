"""Every provider's parser against answers recorded by others (tests/fixtures/recorded).

Each recorded answer is served, HTTP mocked, to the provider's public method named by its
sidecar's ``[[expected]]`` table (``daily_bars``, ``quote``, ``actions``, ``fx_rates``), or
to its classifier (``classify``) or a pure parse function (``parse_*``) where no public
method reaches the answer alone. The expected dates, prices, volumes, currencies and error
kinds were written by hand from the payload, so the parser is checked against the answer,
never against itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime
from typing import Any

import pytest

from finappd import errors
from finappd.providers import (
    AlphaVantageProvider,
    BaseProvider,
    CoinGeckoProvider,
    FinnhubProvider,
    FrankfurterProvider,
    PolygonProvider,
    StooqProvider,
    TiingoProvider,
    TwelveDataProvider,
    YahooProvider,
)
from finappd.providers._http import Response
from finappd.providers.polygon import parse_dividends
from finappd.records import Bar, Dividend, FxRate, Quote, Split
from tests.recorded import PROVIDERS, REQUIRED_FIELDS, Recorded, load, load_all
from tests.test_provider_support import mock_http, provider_factory

BASE = "http://127.0.0.1:9/rec"
ANY_URL = re.compile(r"^http://127\.0\.0\.1:9/rec.*$")
KEY = "test-key"
MIN_PER_PROVIDER = 5
MIN_TOTAL = 45
NONE = "-"  # how a sidecar writes "no value" (TOML has no null)
KINDS: dict[str, tuple[type[BaseProvider], dict[str, Any]]] = {
    "yahoo": (YahooProvider, {"kind": "yahoo"}),
    "stooq": (StooqProvider, {"api_key": KEY}),
    "alphavantage": (AlphaVantageProvider, {"api_key": KEY}),
    "finnhub": (FinnhubProvider, {"api_key": KEY}),
    "polygon": (PolygonProvider, {"api_key": KEY}),
    "tiingo": (TiingoProvider, {"api_key": KEY}),
    "twelvedata": (TwelveDataProvider, {"api_key": KEY}),
    "coingecko": (CoinGeckoProvider, {"api_key": KEY}),
    "frankfurter": (FrankfurterProvider, {}),
}
#: Pure parse functions a sidecar may name, for answers no public method reaches alone.
PURE: dict[str, Callable[[Mapping[str, Any], str], list[Dividend]]] = {
    "parse_dividends": parse_dividends,
}
CASES = [
    pytest.param(answer, index, id=f"{answer.id}#{index}")
    for answer in load_all()
    for index in range(len(answer.expected))
]


def _value(cell: Any) -> Any:
    return None if cell == NONE else cell


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _bar_rows(bars: list[Bar]) -> dict[str, list[Any]]:
    return {str(b.ts): [b.open, b.high, b.low, b.close, b.adj_close, b.volume] for b in bars}


def _expected_bars(rows: list[list[Any]]) -> dict[str, list[Any]]:
    return {row[0]: [_value(cell) for cell in row[1:]] for row in rows}


def check_bars(bars: list[Bar], expected: Mapping[str, Any], symbol: str) -> None:
    """``bars`` hold exactly the expected rows (all of them, or ``count`` and a sample)."""
    got = _bar_rows(bars)
    want = _expected_bars(expected.get("bars", []))
    assert all(bar.symbol == symbol for bar in bars)
    assert [b.ts for b in bars] == sorted(b.ts for b in bars), "bars are ascending"
    if "count" in expected:
        assert len(bars) == expected["count"], sorted(got)
        assert {day: got.get(day) for day in want} == want
    else:
        assert got == want


def check_quote(quote: Quote, expected: Mapping[str, Any], symbol: str) -> None:
    """The quote's price, time and (where expected) currency and previous close."""
    assert quote.symbol == symbol
    assert quote.price == expected["price"]
    assert quote.ts == datetime.fromisoformat(expected["ts"])
    if "currency" in expected:
        assert quote.currency == expected["currency"]
    if "previous_close" in expected:
        assert quote.previous_close == _value(expected["previous_close"])


def _dividend_rows(dividends: list[Dividend]) -> list[list[Any]]:
    return [[str(d.ex_date), d.amount, d.currency] for d in dividends]


def check_dividends(dividends: list[Dividend], expected: Mapping[str, Any]) -> None:
    """Every expected dividend is there (all of them unless ``count`` says how many)."""
    got = _dividend_rows(dividends)
    want = [[row[0], row[1], _value(row[2])] for row in expected.get("dividends", [])]
    if "count" in expected:
        assert len(got) == expected["count"]
        assert all(row in got for row in want), got
    else:
        assert sorted(got) == sorted(want)


def check_splits(splits: list[Split], expected: Mapping[str, Any]) -> None:
    """Exactly the expected splits: ``[ex_date, numerator, denominator]``."""
    got = [[str(s.ex_date), s.numerator, s.denominator] for s in splits]
    assert sorted(got) == sorted(expected.get("splits", []))


def check_rates(rates: list[FxRate], expected: Mapping[str, Any]) -> None:
    """Exactly the expected ``[day, base, quote, rate]`` rows (or ``count`` and a sample)."""
    got = [[str(r.day), r.base, r.quote, r.rate] for r in rates]
    want = expected.get("rates", [])
    if "count" in expected:
        assert len(got) == expected["count"]
        assert all(row in got for row in want), got
    else:
        assert sorted(got) == sorted(want)


@pytest.fixture
async def make() -> AsyncIterator[Callable[[str], BaseProvider]]:
    """Providers of each kind pointed at BASE, one retry, no rate windows."""
    factories: dict[str, Callable[..., BaseProvider]] = {}
    contexts = []
    for kind, (cls, options) in KINDS.items():
        context = provider_factory(cls, kind, retries=1, base_url=BASE, rates=[], **options)
        factories[kind] = await context.__aenter__()
        contexts.append(context)
    try:
        yield lambda kind: factories[kind]()
    finally:
        for context in contexts:
            await context.__aexit__(None, None, None)


async def _call(provider: BaseProvider, expected: Mapping[str, Any]) -> Any:
    call = expected["call"]
    symbol = expected.get("symbol", "")
    if call == "quote":
        return await provider.quote(symbol)
    if call == "fx_rates":
        quotes = expected["quotes"]
        return await provider.fx_rates(
            expected["base"], quotes, _day(expected["start"]), _day(expected["end"])
        )
    start, end = _day(expected["start"]), _day(expected["end"])
    if call == "daily_bars":
        return await provider.daily_bars(symbol, start, end)
    if call == "actions":
        return await provider.actions(symbol, start, end)
    raise AssertionError(f"unknown call {call!r}")


def _check(result: Any, expected: Mapping[str, Any]) -> None:
    call, symbol = expected["call"], expected.get("symbol", "")
    if call == "daily_bars":
        check_bars(result, expected, symbol)
    elif call == "quote":
        check_quote(result, expected, symbol)
    elif call == "actions":
        dividends, splits = result
        check_dividends(dividends, expected)
        check_splits(splits, expected)
    elif call == "fx_rates":
        check_rates(result, expected)
    else:
        check_dividends(result, expected)


def _response(answer: Recorded, url: str, status: int) -> Response:
    return Response(
        status=status,
        url=url,
        content_type=answer.content_type,
        retry_after=None,
        text=answer.body,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_has_recorded_answers_with_provenance(provider: str) -> None:
    """At least five answers per provider, each saying where it was published and how."""
    answers = load(provider)
    assert len(answers) >= MIN_PER_PROVIDER, [a.name for a in answers]
    for answer in answers:
        missing = [f for f in REQUIRED_FIELDS if f not in answer.provenance]
        assert not missing, f"{answer.id}: sidecar lacks {missing}"
        assert answer.expected, f"{answer.id}: no [[expected]] table"


def test_the_suite_holds_enough_answers() -> None:
    """The conformance suite holds at least 45 recorded answers, errors among them."""
    answers = load_all()
    assert len(answers) >= MIN_TOTAL
    outcomes = {e["outcome"] for a in answers for e in a.expected}
    assert outcomes - {"ok"}, "error answers are part of the suite"


@pytest.mark.parametrize(("answer", "index"), CASES)
async def test_recorded_answer(
    make: Callable[[str], BaseProvider], answer: Recorded, index: int
) -> None:
    """The provider makes of the recorded answer what its sidecar says, by hand, it holds."""
    expected = answer.expected[index]
    provider = make(answer.provider)
    if "verdict" in expected:
        url = expected.get("url") or f"{BASE}/recorded"
        status = int(expected.get("status", answer.status))
        verdict = provider.classify(_response(answer, url, status)).verdict
        assert verdict == expected["verdict"]
    if expected["call"] == "classify":
        return
    if expected["call"] in PURE:
        result = PURE[expected["call"]](json.loads(answer.body), expected["symbol"])
        _check(result, expected)
        return
    outcome = expected["outcome"]
    with mock_http() as mocked:
        mocked.get(
            ANY_URL,
            status=answer.status,
            body=answer.body,
            content_type=answer.content_type,
            repeat=True,
        )
        if outcome == "ok":
            _check(await _call(provider, expected), expected)
        else:
            with pytest.raises(getattr(errors, outcome)):
                await _call(provider, expected)
