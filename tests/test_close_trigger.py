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
