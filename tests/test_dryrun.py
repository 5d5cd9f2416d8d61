"""Dry run: planned requests match a real run's, the estimate follows the limits, none is sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finappd.cli import main
from finappd.config import Settings
from finappd.flows.dryrun import dry_run, estimate_seconds, planned_tickers
from finappd.providers.limits import Limits
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from tests.conftest import MakeServer, one_flow


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requests", "rates", "max_concurrency", "num_workers", "expected"),
    [
        (0, ["5/minute"], 4, 8, 0.0),
        # One request: one latency.
        (1, [], 4, 8, 0.25),
        # Concurrency-bound: ceil(10 / 4) rounds of 0.25 s.
        (10, [], 4, 8, 0.75),
        # The flow's workers bound it below the provider's concurrency.
        (10, [], 4, 2, 1.25),
        # Exactly one window's worth: no wait for the windows.
        (5, ["5/minute"], 4, 8, 0.5),
        # The 6th..10th wait one window (with the 2% headroom), the 11th a second.
        (10, ["5/minute"], 4, 8, 61.45),
        (11, ["5/minute"], 4, 8, 122.65),
        # The tightest of several windows decides.
        (30, ["5/s", "20/minute"], 8, 8, 61.45),
    ],
)
def test_estimate_seconds(
    requests: int, rates: list[str], max_concurrency: int, num_workers: int, expected: float
) -> None:
    """The estimate is the later of the windows' admission of the last request and the lanes."""
    limits = Limits(max_concurrency=max_concurrency, rates=rates)
    assert estimate_seconds(requests, limits, num_workers) == expected


def flow_settings(tmp_path: Path, url: str, tickers: list[str], **flow: Any) -> Settings:
    """One Yahoo flow against the simulator with a 100-request daily quota."""
    provider = {"base_url": url, "rate": "10000/minute", "backoff": "1ms", "daily_quota": 100}
    flow = {"lookback_days": 10, "revision_days": 3, **flow}
    return one_flow(tmp_path / "d.sqlite3", "yahoo", provider, tickers, **flow)


def test_quotes_plan_only_open_markets(tmp_path: Path) -> None:
    """A quotes flow plans a request only for tickers whose market is in session."""
    settings = flow_settings(tmp_path, "http://127.0.0.1:9", ["AAPL", "VOD.L"], kind="quotes")
    flow = settings.flow("eod")
    assert planned_tickers(flow, utc(2025, 3, 10, 9), None) == ["VOD.L"]
    assert planned_tickers(flow, utc(2025, 3, 10, 15), None) == ["AAPL", "VOD.L"]
    assert planned_tickers(flow, utc(2025, 3, 9, 15), None) == []


async def test_dry_run_matches_a_real_run_and_sends_nothing(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With up-to-date and stale tickers, the dry run's count is the real run's, sending none."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    # AAPL and VOD.L get Friday's final bars; MSFT and 7203.T have nothing stored.
    async with Runtime(flow_settings(tmp_path, sim.url, ["AAPL", "VOD.L"])) as runtime:
        await runtime.run_flow("eod", "manual", now=utc(2025, 3, 7, 22))
    settings = flow_settings(tmp_path, sim.url, ["AAPL", "VOD.L", "MSFT", "7203.T"])
    # Monday 08:30 UTC: London is open (VOD.L stale), New York not yet (AAPL up to date).
    monday = utc(2025, 3, 10, 8, 30)
    sim.reset()
    async with Runtime(settings) as runtime:
        await runtime.writer.call(runtime.store.add_usage, "yahoo", {"2025-03-10": 98})
        plan = await dry_run(settings, "eod", runtime.store, runtime.writer, monday)
        assert sim.stats.requests == 0
        summary = await runtime.run_flow("eod", "manual", now=monday)
    assert summary.status == "ok"
    assert plan["requests"] == sim.stats.requests == 3
    [yahoo] = plan["providers"]
    assert (yahoo["requests"], yahoo["used_today"], yahoo["daily_quota"]) == (3, 98, 100)
    assert (yahoo["share_of_daily_quota"], yahoo["would_exceed_quota"]) == (0.03, True)
    assert plan["skipped"] == 1


def test_cli_dry_run_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run-once FLOW --dry-run`` prints the plan as JSON and exits 0 with no server at all."""
    config = tmp_path / "finappd.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "c.sqlite3"}"\n'
        '[providers.yahoo]\nbase_url = "http://127.0.0.1:9"\nrates = ["5/minute"]\n'
        '[[flows]]\nname = "eod"\nprovider = "yahoo"\nevery = "1h"\n'
        'tickers = ["AAPL", "MSFT"]\n'
    )
    assert main(["--config", str(config), "run-once", "eod", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (plan["dry_run"], plan["requests"]) == (True, 2)
    assert plan["providers"][0]["rates"] == ["5/minute"]
