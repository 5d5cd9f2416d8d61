"""Units: provider codes to ISO 4217 major units (finappd.units); quality rule 8, unit changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from finappd.quality import settle_unit
from finappd.records import Bar, Dividend, Quote
from finappd.units import Unit, bar_in, dividend_in, quote_in, unit_of

PENCE = Unit("GBp", "GBP", 100)
POUNDS = Unit("GBP", "GBP")


@pytest.mark.parametrize(
    ("code", "currency", "per_major"),
    [
        ("GBp", "GBP", 100),
        ("GBX", "GBP", 100),
        ("GBx", "GBP", 100),
        ("GBP", "GBP", 1),
        ("ZAc", "ZAR", 100),
        ("ZAC", "ZAR", 100),
        ("ZAR", "ZAR", 1),
        ("ILA", "ILS", 100),
        ("ILS", "ILS", 1),
        ("KWF", "KWD", 1000),
        ("JPY", "JPY", 1),
        (" EUR ", "EUR", 1),
    ],
)
def test_unit_of_maps_provider_codes_case_exactly(code: str, currency: str, per_major: int) -> None:
    """GBp is pence and GBP pounds: codes are matched exactly, minor units know their divisor."""
    unit = unit_of(code)
    assert unit is not None
    assert (unit.currency, unit.per_major) == (currency, per_major)


@pytest.mark.parametrize("code", [None, "", "pence", "gbp", "US", "EURO"])
def test_unit_of_refuses_what_is_not_a_currency(code: str | None) -> None:
    """Lower-case, empty, or not three letters: unknown, never guessed."""
    assert unit_of(code) is None


def test_bar_in_divides_every_price_but_not_volume() -> None:
    """A pence bar becomes a pounds bar: open/high/low/close/adj_close ÷ 100, volume as is."""
    bar = Bar("VOD.L", date(2025, 3, 10), 72.0, 73.0, None, 72.4, 68.6, 5e7, currency="GBp")
    converted = bar_in(bar, PENCE)
    assert (converted.open, converted.high, converted.low) == (72.0 / 100, 73.0 / 100, None)
    assert (converted.close, converted.adj_close, converted.volume) == (72.4 / 100, 68.6 / 100, 5e7)
    relabelled = bar_in(bar, POUNDS)
    assert (relabelled.close, relabelled.currency) == (72.4, "GBP")
    assert bar_in(relabelled, POUNDS) is relabelled


def test_quotes_and_dividends_in_minor_units_are_converted() -> None:
    """A GBp quote and a ZAc dividend come out in GBP and ZAR; a USD quote is untouched."""
    quote = Quote("VOD.L", datetime(2025, 3, 10, tzinfo=UTC), 72.4, "GBp", 72.0)
    assert quote_in(quote) == Quote(quote.symbol, quote.ts, 72.4 / 100, "GBP", 0.72)
    usd = Quote("AAPL", quote.ts, 229.0, "USD")
    assert quote_in(usd) == usd
    dividend = Dividend("NPN.JO", date(2025, 3, 1), 350.0, "ZAc")
    assert dividend_in(dividend) == Dividend("NPN.JO", date(2025, 3, 1), 3.5, "ZAR")


@pytest.mark.parametrize(
    ("answered", "stored", "closes", "last", "unit", "factor", "reason"),
    [
        # Nothing to compare with: the answer's unit.
        (PENCE, None, [72.0, 72.4], None, PENCE, 1.0, None),
        (None, PENCE, [72.0], 0.72, PENCE, 1.0, None),
        # Same unit as the stored series, prices agree.
        (PENCE, PENCE, [72.0, 72.4], 0.72, PENCE, 1.0, None),
        # Yahoo says GBP but the numbers are pence like the series: pence wins.
        (POUNDS, PENCE, [72.0, 72.4, 72.1], 0.72, PENCE, 1.0, "unit_changed"),
        # A real switch to pounds, numbers agree: the new unit, noted.
        (POUNDS, PENCE, [0.72, 0.724], 0.72, POUNDS, 1.0, "unit_changed"),
        # Same label, but 100x the stored series: rescaled to it.
        (POUNDS, POUNDS, [72.0, 72.4, 72.1], 0.72, POUNDS, 0.01, "unit_rescaled"),
        (PENCE, PENCE, [0.72, 0.724, 0.721], 0.72, PENCE, 100.0, "unit_rescaled"),
        (None, None, [72.0], 0.72, None, 1.0, None),
    ],
)
def test_settle_unit_never_leaves_a_series_100x_off(
    answered: Unit | None,
    stored: Unit | None,
    closes: list[float],
    last: float | None,
    unit: Unit | None,
    factor: float,
    reason: str | None,
) -> None:
    """Rule 8 picks the unit the prices are really in, judged against the stored close."""
    verdict = settle_unit(answered, stored, closes, last)
    assert (verdict.unit, verdict.factor) == (unit, factor)
    assert (verdict.reason or "").split(":")[0] == (reason or "")
    if verdict.effective is not None and last is not None:
        assert verdict.effective.to_major(closes[0]) == pytest.approx(last, rel=0.05)


def test_a_currency_change_is_not_judged_by_size() -> None:
    """From GBp to USD (a listing re-denominated): the answer's currency, not the closer number."""
    usd = Unit("USD", "USD")
    verdict = settle_unit(usd, PENCE, [0.9, 0.91], 0.72)
    assert verdict.unit == usd
    assert verdict.reason is not None
    assert verdict.reason.startswith("unit_changed")
    inr = Unit("INR", "INR")
    assert settle_unit(inr, usd, [85.0, 86.0], 1.0).factor == 1.0  # ~85x is the currency


def test_a_usd_series_100x_off_is_a_split_not_a_slip() -> None:
    """USD has no minor unit a provider quotes in: a 1:100 reverse split stays as answered."""
    usd = Unit("USD", "USD")
    assert settle_unit(usd, usd, [100.0, 101.0], 1.0).factor == 1.0
