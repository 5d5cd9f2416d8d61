"""Tests for ``at_close`` schedules: each exchange's close plus settle, on trading days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from finappd.calendar.trigger import CloseTrigger
from finappd.config import FlowSettings


def flow(**extra: object) -> FlowSettings:
    """A daily_bars flow scheduled ``at_close = "30m"``."""
    return FlowSettings.model_validate(
        {"name": "eod", "provider": "yahoo", "tickers": ["AAPL"], "at_close": "30m", **extra}
    )


@pytest.mark.parametrize(
    ("extra", "now", "fires"),
    [
        # Friday before the DST change, then Monday in EDT: 16:30 New York both times.
        ({}, datetime(2025, 3, 7, 12, tzinfo=UTC), ["2025-03-07T21:30", "2025-03-10T20:30"]),
        # Thanksgiving skipped, the half day fires at 13:30 New York.
        ({}, datetime(2025, 11, 26, 22, tzinfo=UTC), ["2025-11-28T18:30", "2025-12-01T21:30"]),
        # Two exchanges: London's close, then New York's, each at its own time.
        (
            {"tickers": ["VOD.L", "AAPL"]},
            datetime(2025, 3, 31, 12, tzinfo=UTC),
            ["2025-03-31T16:00", "2025-03-31T20:30"],
        ),
        ({"exchange": "XTKS"}, datetime(2025, 12, 30, 8, tzinfo=UTC), ["2026-01-05T07:00"]),
        # Paris's half day on Christmas Eve (14:05 CET), then Hong Kong's close after it.
        (
            {"tickers": ["MC.PA", "0700.HK"]},
            datetime(2025, 12, 24, 9, tzinfo=UTC),
            ["2025-12-24T13:35", "2025-12-29T08:30"],
        ),
        # An old short name is the MIC: New York's close.
        ({"exchange": "NYSE"}, datetime(2025, 3, 7, 12, tzinfo=UTC), ["2025-03-07T21:30"]),
        # No calendar knows this ticker's exchange: weekdays, closing at UTC midnight.
        (
            {"tickers": ["FOO.XY"]},
            datetime(2025, 3, 7, 12, tzinfo=UTC),
            ["2025-03-08T00:30", "2025-03-11T00:30"],
        ),
    ],
)
def test_at_close_fire_times(extra: dict[str, object], now: datetime, fires: list[str]) -> None:
    """The trigger's next fire times follow the calendar, half days and DST."""
    trigger = flow(**extra).trigger()
    assert isinstance(trigger, CloseTrigger)
    got: list[str] = []
    previous = None
    for _ in fires:
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        got.append(fire.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
        previous = now = fire
    assert got == fires


def test_schedule_must_be_exactly_one_kind() -> None:
    """at_close excludes every and cron, and the exchange must be a known calendar."""
    with pytest.raises(ValueError, match="exactly one of"):
        flow(every="1h")
    with pytest.raises(ValueError, match="unknown exchange"):
        flow(exchange="XXXX")


def test_the_flow_exchange_is_stored_as_its_mic_and_rules_every_ticker() -> None:
    """``exchange = "lse"`` is XLON for every ticker; without it each ticker has its own."""
    declared = flow(exchange="lse", tickers=["AAPL", "MC.PA"])
    assert declared.exchange == "XLON"
    assert {t: e.code for t, e in declared.exchanges().items()} == {"AAPL": "XLON", "MC.PA": "XLON"}
    pairs = FlowSettings.model_validate(
        {
            "name": "fx",
            "kind": "fx",
            "provider": "frankfurter",
            "tickers": ["EUR/USD"],
            "every": "1d",
        }
    )
    assert pairs.exchange_of("EUR/USD").code == "FX"
    own = flow(tickers=["AAPL", "MC.PA", "BTC-USD"])
    assert {t: e.code for t, e in own.exchanges().items()} == {
        "AAPL": "XNYS",
        "MC.PA": "XPAR",
        "BTC-USD": "CRYPTO",
    }
