"""Tests for finappd.providers.limits: defaults vs config, quotas from rates, sliding windows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from finappd.config import ProviderSettings, Rate, load_settings
from finappd.errors import ConfigError
from finappd.providers.limits import Limits, RateWindows, effective_limits
from tests.test_provider_support import FakeClock

TWELVE = Limits(max_concurrency=1, rates=("8/minute", "800/day"))


@pytest.mark.parametrize(
    ("config", "concurrency", "windows", "daily", "monthly"),
    [
        ({}, 1, ["8/minute"], 800, None),
        ({"max_concurrency": 3}, 3, ["8/minute"], 800, None),
        ({"rate": "5/second"}, 1, ["5/second"], None, None),
        ({"rate": None}, 1, [], None, None),
        ({"rates": []}, 1, [], None, None),
        (
            {"rates": ["30/second", "60/minute", "50/hour"]},
            1,
            ["30/second", "60/minute", "50/hour"],
            None,
            None,
        ),
        ({"daily_quota": 25}, 1, ["8/minute"], 25, None),
        ({"daily_quota": 1000}, 1, ["8/minute"], 800, None),  # the lowest budget wins
        ({"rates": ["8/minute", "10000/month"]}, 1, ["8/minute"], None, 10000),
        ({"monthly_quota": 500, "rates": ["900/day"]}, 1, [], 900, 500),
    ],
)
def test_effective_limits_take_config_over_defaults(
    config: dict[str, Any],
    concurrency: int,
    windows: list[str],
    daily: int | None,
    monthly: int | None,
) -> None:
    """Each limit the config sets replaces the provider's; N/day and N/month become quotas."""
    limits = effective_limits(TWELVE, ProviderSettings.model_validate(config))
    assert limits.max_concurrency == concurrency
    assert [str(r) for r in limits.windows()] == windows
    assert (limits.daily(), limits.monthly()) == (daily, monthly)


def test_quota_timezone_comes_from_config_else_the_provider() -> None:
    """quota_reset_tz overrides the provider's quota_tz, which defaults to UTC."""
    declared = Limits(quota_tz="America/New_York")
    assert effective_limits(declared, ProviderSettings()).quota_tz == "America/New_York"
    overridden = ProviderSettings(quota_reset_tz="Europe/Warsaw")
    assert effective_limits(declared, overridden).quota_tz == "Europe/Warsaw"
    assert Limits().quota_tz == "UTC"


def test_describe_is_what_check_config_shows() -> None:
    """describe() names concurrency, windows, quotas and the reset time."""
    assert TWELVE.describe() == {
        "max_concurrency": 1,
        "rates": ["8/minute"],
        "daily_quota": 800,
        "monthly_quota": None,
        "quota_reset": "00:00 UTC",
    }


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("8/minute", "8/minute"),
        ("30/s", "30/second"),
        ("50/hour", "50/hour"),
        ("800/day", "800/day"),
        ("10000/month", "10000/month"),
        ("5/10s", "5/10s"),
    ],
)
def test_rates_print_in_their_unit(text: str, shown: str) -> None:
    """A rate prints as count/unit when its window is a whole unit."""
    assert str(Rate.model_validate(text)) == shown


def test_a_window_between_an_hour_and_a_day_is_refused(tmp_path: Any) -> None:
    """'5/2h' is neither an in-memory window nor a quota: one config error naming the key."""
    path = tmp_path / "f.toml"
    path.write_text('[providers.yahoo]\nrate = "5/2h"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "providers.yahoo.rate"
    assert "one day or one month" in info.value.problem


def test_rate_and_rates_together_are_refused(tmp_path: Any) -> None:
    """Setting both the shorthand and the list is ambiguous and refused."""
    path = tmp_path / "f.toml"
    path.write_text('[providers.yahoo]\nrate = "5/s"\nrates = ["8/minute"]\n')
    with pytest.raises(ConfigError, match="not both"):
        load_settings(path)


async def test_window_admits_a_burst_then_waits_for_the_oldest() -> None:
    """3 per 0.2 s: three go at once, the fourth only when the first leaves the window."""
    clock = FakeClock()
    windows = RateWindows([Rate(count=3, period=0.2)], headroom=1.0, clock=clock, sleep=clock.sleep)
    started = clock()
    sent = []
    for _ in range(6):
        await windows.acquire()
        sent.append(clock() - started)
    assert max(sent[:3]) < 0.05
    assert sent[3] >= 0.19
    assert sent[5] < 0.35
    assert windows.waits >= 1


async def test_no_window_ever_holds_more_than_its_count() -> None:
    """24 concurrent callers over two windows: every sliding window stays within its count."""
    rates = [Rate(count=4, period=0.1), Rate(count=10, period=0.5)]
    clock = FakeClock()
    windows = RateWindows(rates, headroom=1.0, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def call() -> None:
        await windows.acquire()
        sent.append(clock())

    await asyncio.gather(*(call() for _ in range(24)))
    sent.sort()
    for rate in rates:
        for i, at in enumerate(sent):
            inside = [t for t in sent[i:] if t < at + rate.period - 1e-3]
            assert len(inside) <= rate.count, (str(rate), i)


async def test_no_windows_never_wait() -> None:
    """A provider without rate windows is never held back by them."""
    windows = RateWindows([])
    started = time.monotonic()
    await asyncio.gather(*(windows.acquire() for _ in range(1000)))
    assert time.monotonic() - started < 0.5
    assert repr(windows) == "<RateWindows unlimited waits=0>"
